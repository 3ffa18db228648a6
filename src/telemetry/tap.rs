//! The in-process view of the metrics that are exported. The meter provider has one reader, the
//! periodic one, so the SDK aggregates each measurement once; [`Tee`] sits in front of its
//! exporter and shows each collection to a [`MetricsTap`] before passing it on. `/view_metrics`
//! therefore reads exactly what the collector was sent, as of the last collection.
//!
//! The SDK's `MetricReader` trait, which an extra in-process reader would implement, is public only
//! behind an experimental feature; a `PushMetricExporter` wrapper needs nothing of the kind.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
};

/// What receives each collection: a conversion into the reader's own form.
type Sink = Arc<dyn Fn(&ResourceMetrics) + Send + Sync>;

/// Where the collections of the periodic reader are shown, once connected. Cheap to clone: the
/// clones share the connection.
#[derive(Clone, Default)]
pub struct MetricsTap {
    sink: Arc<RwLock<Option<Sink>>>,
}

impl std::fmt::Debug for MetricsTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsTap").finish_non_exhaustive()
    }
}

impl MetricsTap {
    /// A tap that nothing reads yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, each collection goes to `sink` (instead of an earlier one). The sink runs on
    /// the reader's own thread, never on a request's.
    pub fn connect(&self, sink: impl Fn(&ResourceMetrics) + Send + Sync + 'static) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(sink));
    }

    /// `exporter` with this tap in front of it.
    pub fn tee<E: PushMetricExporter>(&self, exporter: E) -> Tee<E> {
        Tee {
            inner: exporter,
            tap: self.clone(),
        }
    }

    fn show(&self, metrics: &ResourceMetrics) {
        // Cloned out so that the lock is not held while the sink converts the collection.
        let sink = self
            .sink
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(sink) = sink {
            sink(metrics);
        }
    }
}

/// An exporter that first shows each collection to a [`MetricsTap`], then exports it with
/// `inner`. The tap sees every collection, also those whose export fails.
#[derive(Debug)]
pub struct Tee<E> {
    inner: E,
    tap: MetricsTap,
}

impl<E: PushMetricExporter> PushMetricExporter for Tee<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.tap.show(metrics);
        self.inner.export(metrics).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    /// The exporter's own: cumulative, but for the OTLP exporter with
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta` or `lowmemory`, whose collections
    /// the reader of the tap adds up.
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The exporter of `OTEL_EXPORTER=none`: collections reach the tap and go no further.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl PushMetricExporter for Discard {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::{
        error::OTelSdkError,
        metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, data},
    };

    use super::*;
    use crate::telemetry::{
        deadline::Deadline,
        loss::{CountingMetricExporter, Losses},
    };

    /// Fails every export, as a dead collector does.
    #[derive(Debug)]
    struct Refused;

    impl PushMetricExporter for Refused {
        async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("connection refused".into()))
        }

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }

        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    /// The value of the counter `name` in `metrics`.
    fn counter(metrics: &ResourceMetrics, name: &str) -> Option<u64> {
        metrics
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .find(|metric| metric.name() == name)
            .and_then(|metric| match metric.data() {
                data::AggregatedMetrics::U64(data::MetricData::Sum(sum)) => {
                    Some(sum.data_points().map(|p| p.value()).sum())
                }
                _ => None,
            })
    }

    /// A sink that keeps the value of the counter `requests` of each collection it is shown.
    fn recording(tap: &MetricsTap) -> Arc<Mutex<Vec<Option<u64>>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        tap.connect(move |metrics| sink.lock().unwrap().push(counter(metrics, "requests")));
        seen
    }

    #[test]
    fn the_tap_is_shown_each_collection_that_the_exporter_gets() {
        let tap = MetricsTap::new();
        let seen = recording(&tap);
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(tap.tee(exporter.clone())).build())
            .build();
        let requests = provider.meter("test").u64_counter("requests").build();

        requests.add(2, &[]);
        provider.force_flush().unwrap();
        requests.add(3, &[]);
        provider.force_flush().unwrap();

        let exported: Vec<_> = exporter
            .get_finished_metrics()
            .unwrap()
            .iter()
            .map(|metrics| counter(metrics, "requests"))
            .collect();
        assert_eq!(exported, [Some(2), Some(5)], "cumulative totals");
        assert_eq!(*seen.lock().unwrap(), exported);
    }

    #[test]
    fn the_tap_is_shown_collections_whose_export_fails_and_the_failures_are_counted() {
        let tap = MetricsTap::new();
        let seen = recording(&tap);
        let losses = Arc::new(Losses::default());
        let exporter = tap.tee(CountingMetricExporter::new(
            Refused,
            losses.clone(),
            Deadline::new(Duration::from_secs(5)),
        ));
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .build();

        provider
            .meter("test")
            .u64_counter("requests")
            .build()
            .add(1, &[]);
        let flushed = provider.force_flush();

        assert!(flushed.is_err(), "the export failed");
        assert_eq!(*seen.lock().unwrap(), [Some(1)]);
        assert_eq!(
            losses.totals().failed_metric_exports,
            1,
            "one failed metric export"
        );
    }

    #[test]
    fn a_later_connection_replaces_the_earlier_one() {
        let tap = MetricsTap::new();
        let first = recording(&tap);
        let second = recording(&tap);
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(tap.tee(Discard)).build())
            .build();

        provider
            .meter("test")
            .u64_counter("requests")
            .build()
            .add(1, &[]);
        provider.force_flush().unwrap();

        assert!(first.lock().unwrap().is_empty());
        assert_eq!(*second.lock().unwrap(), [Some(1)]);
    }
}
