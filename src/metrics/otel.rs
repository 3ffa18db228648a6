//! The OpenTelemetry backend: the original's instruments and `http.server.request.duration`,
//! aggregated by the SDK and pushed by its periodic reader; `/view_metrics` reads the SDK's own
//! aggregation as that reader last collected and exported it, not a copy kept beside it (added
//! up, when the collections are deltas: see [`totals`]).

pub mod synthetic;
mod totals;

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, ObservableCounter, ObservableGauge},
};
use opentelemetry_sdk::metrics::{Aggregation, Instrument, InstrumentKind, Stream};

use totals::{PROCESSING, SERVER_DURATION, Totals};

use super::{
    BUCKETS, ClientRecord, Format, Forward, MetricsBackend, Outcome, RefusedRequests,
    RequestRecord, RouteMetrics, Snapshot,
    own::{CHAOS_GAUGES, LOSS_COUNTERS},
};
use crate::{
    chaos::ChaosSettings,
    conventions::URL_SCHEME,
    synthetic::Synthetic,
    telemetry::{Losses, MetricsTap},
};

/// The default of `EXPONENTIAL_HISTOGRAM_MAX_SIZE`, the SDK's.
const DEFAULT_MAX_BUCKETS: usize = 160;

/// The SDK's view of the backend's instruments: `http.server.request.duration` may hold
/// `server_series` series, the most that any traffic can create (`http::max_server_series`).
/// Past its default limit of 2,000 series per instrument the SDK would fold new ones into one
/// overflow series (`otel.metric.overflow=true`), which the Prometheus backend never does. The
/// other instruments keep the default: they have no attributes, hence one series, except
/// `http.client.request.duration`, whose series depend on the configured downstreams. With
/// `histograms` (`telemetry::histogram_aggregation`), every histogram is aggregated that way.
/// One view makes both changes: the SDK makes a stream for each view that matches.
pub fn view(
    server_series: usize,
    histograms: Option<Aggregation>,
) -> impl Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static {
    // The specification counts the overflow series within the limit, this SDK apart from it: one
    // more holds `server_series` either way.
    let limit = server_series.saturating_add(1);
    move |instrument| {
        let mut stream = Stream::builder();
        let mut changed = false;
        if instrument.name() == SERVER_DURATION {
            stream = stream.with_cardinality_limit(limit);
            changed = true;
        }
        if let (InstrumentKind::Histogram, Some(aggregation)) = (instrument.kind(), &histograms) {
            stream = stream.with_aggregation(aggregation.clone());
            changed = true;
        }
        changed.then(|| stream.build().ok()).flatten()
    }
}

/// OpenTelemetry backend; its instruments live in the meter provider owned by `Telemetry`.
pub struct OtelBackend {
    requests: Counter<u64>,
    successful: Counter<u64>,
    error_4xx: Counter<u64>,
    error_5xx: Counter<u64>,
    processing: Histogram<f64>,
    duration: Histogram<f64>,
    client_duration: Histogram<f64>,
    /// The SDK's last collection, converted when the periodic reader exported it.
    collected: Arc<Mutex<Arc<Snapshot>>>,
    /// The collections exported so far, added up.
    totals: Arc<Mutex<Totals>>,
    /// The chaos settings in force, read by the observable gauges at each collection.
    chaos: Arc<Mutex<ChaosSettings>>,
    /// Kept so the gauges live as long as the backend.
    chaos_gauges: Vec<ObservableGauge<f64>>,
    /// Kept like the gauges: reads the total of requests refused at the connection limit.
    refused: Option<ObservableCounter<u64>>,
    /// Kept so the loss counters live as long as the backend.
    _loss_counters: Vec<ObservableCounter<u64>>,
    /// Makes the meter providers of the synthetic series, when they are exported.
    synthetic_providers: Option<synthetic::ProviderBuilder>,
    /// The export of the synthetic series, once attached.
    synthetic_export: Mutex<Option<synthetic::SyntheticExport>>,
}

/// The loss counters on `meter`, read from `losses` at each collection.
fn loss_counters(meter: &Meter, losses: &Arc<Losses>) -> Vec<ObservableCounter<u64>> {
    LOSS_COUNTERS
        .iter()
        .map(|row| {
            let (losses, read) = (losses.clone(), row.read);
            meter
                .u64_observable_counter(row.otel)
                .with_unit(row.unit)
                .with_description(row.description)
                .with_callback(move |observer| observer.observe(read(&losses.totals()), &[]))
                .build()
        })
        .collect()
}

fn counter(meter: &Meter, name: &'static str, description: &'static str) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_unit("1")
        .with_description(description)
        .build()
}

impl OtelBackend {
    /// Creates the instruments on `meter`, and reads the collections that `tap` shows: it must be
    /// the tap of the same provider's reader. The running totals of `losses` are exported as
    /// counters.
    pub fn new(meter: &Meter, tap: MetricsTap, losses: Arc<Losses>) -> Self {
        let histogram = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(BUCKETS.to_vec())
                .build()
        };
        let mut backend = Self {
            requests: counter(
                meter,
                "http_requests",
                "Requests counted by the original's rule: home pages, /do_task and errors",
            ),
            successful: counter(
                meter,
                "http_successful_request",
                "Counted requests answered with a status below 400",
            ),
            error_4xx: counter(
                meter,
                "http_error_4xx",
                "Counted requests answered with a 4xx status, unknown paths included",
            ),
            error_5xx: counter(
                meter,
                "http_error_5xx",
                "Counted requests answered with a 5xx status, handler failures included",
            ),
            processing: histogram(PROCESSING, "Time spent serving a counted request"),
            duration: histogram(SERVER_DURATION, "Duration of HTTP server requests"),
            client_duration: histogram(
                "http.client.request.duration",
                "Duration of the HTTP calls /chain makes to its downstreams",
            ),
            collected: Arc::new(Mutex::new(Arc::new(not_collected()))),
            totals: Arc::new(Mutex::new(Totals::new(DEFAULT_MAX_BUCKETS))),
            chaos_gauges: Vec::new(),
            refused: None,
            chaos: Arc::new(Mutex::new(ChaosSettings::default())),
            _loss_counters: loss_counters(meter, &losses),
            synthetic_providers: None,
            synthetic_export: Mutex::new(None),
        };
        backend.chaos_gauges = CHAOS_GAUGES
            .iter()
            .map(|row| {
                let (chaos, read) = (backend.chaos.clone(), row.read);
                let builder = meter
                    .f64_observable_gauge(row.otel)
                    .with_description(row.description)
                    .with_callback(move |observer| {
                        let settings = *chaos.lock().unwrap_or_else(PoisonError::into_inner);
                        observer.observe(read(&settings), &[]);
                    });
                match row.unit {
                    "" => builder.build(),
                    unit => builder.with_unit(unit).build(),
                }
            })
            .collect();
        // Each counter exists from the start, at zero, as on /metrics with the Prometheus backend:
        // a dashboard or an alert on http_error_5xx must not wait for the first 5xx.
        for counter in [
            &backend.requests,
            &backend.successful,
            &backend.error_4xx,
            &backend.error_5xx,
        ] {
            counter.add(0, &[]);
        }
        let (collected, totals) = (backend.collected.clone(), backend.totals.clone());
        // Converted on the reader's thread, once per collection; a page read only clones it.
        tap.connect(move |metrics| {
            let mut snapshot = {
                let mut totals = totals.lock().unwrap_or_else(PoisonError::into_inner);
                totals.add(metrics);
                totals.snapshot()
            };
            if snapshot.buckets.is_empty() {
                snapshot.buckets = not_collected().buckets;
            }
            *collected.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        });
        backend
    }

    /// Added-up exponential histograms keep at most `max` buckets (`EXPONENTIAL_HISTOGRAM_MAX_SIZE`,
    /// the bound of each collection's).
    pub fn with_max_buckets(self, max: usize) -> Self {
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner) = Totals::new(max);
        self
    }

    /// Also exports the synthetic series, once attached, through meter providers made by
    /// `providers` (see [`synthetic`]).
    pub fn with_synthetic_providers(mut self, providers: synthetic::ProviderBuilder) -> Self {
        self.synthetic_providers = Some(providers);
        self
    }

    /// Also exports `prom_metrics_app.http.requests.refused`, the total of requests the server
    /// refused at its connection limit, read at each collection.
    pub fn with_refused(mut self, meter: &Meter, refused: Arc<RefusedRequests>) -> Self {
        self.refused = Some(
            meter
                .u64_observable_counter("prom_metrics_app.http.requests.refused")
                .with_unit("{request}")
                .with_description(
                    "Requests answered 503 by the server itself at its connection limit (MAX_CONNECTIONS), counted in no other instrument",
                )
                .with_callback(move |observer| observer.observe(refused.total(), &[]))
                .build(),
        );
        self
    }
}

impl MetricsBackend for OtelBackend {
    // The SDK has no stable bound instruments: a measurement always goes through its lookup.
    fn route(self: Arc<Self>, _route: &'static str) -> Arc<dyn RouteMetrics> {
        Arc::new(Forward(self))
    }

    fn record(&self, request: &RequestRecord) {
        self.requests.add(1, &[]);
        match request.outcome() {
            Outcome::Success => self.successful.add(1, &[]),
            Outcome::ClientError => self.error_4xx.add(1, &[]),
            Outcome::ServerError => self.error_5xx.add(1, &[]),
        }
        let seconds = request.duration.as_secs_f64();
        self.processing.record(seconds, &[]);
        // Static strings and an integer: building these attributes allocates nothing, except
        // error.type, only on a failure.
        let common = [
            KeyValue::new("http.request.method", request.method),
            KeyValue::new("http.route", request.route),
            KeyValue::new("http.response.status_code", i64::from(request.status)),
            KeyValue::new("url.scheme", URL_SCHEME),
        ];
        match request.error_type {
            None => self.duration.record(seconds, &common),
            Some(error_type) => {
                let [a, b, c, d] = common;
                let error = KeyValue::new("error.type", error_type.to_string());
                self.duration.record(seconds, &[a, b, c, d, error]);
            }
        }
    }

    fn set_chaos(&self, settings: &ChaosSettings) {
        *self.chaos.lock().unwrap_or_else(PoisonError::into_inner) = *settings;
    }

    fn record_client(&self, call: &ClientRecord) {
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new("http.request.method", call.method));
        attributes.push(KeyValue::new("server.address", call.server_address.clone()));
        attributes.push(KeyValue::new("server.port", i64::from(call.server_port)));
        attributes.push(KeyValue::new("url.scheme", call.url_scheme));
        if let Some(status) = call.status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(error_type) = call.error_type {
            attributes.push(KeyValue::new("error.type", error_type.to_string()));
        }
        self.client_duration
            .record(call.duration.as_secs_f64(), &attributes);
    }

    /// The last collection, at most `OTEL_METRIC_EXPORT_INTERVAL` old. Collecting afresh for each
    /// read (a flush) would also export each time, and a collector would receive as many extra
    /// exports as the page is read: the export rhythm is part of what this app shows.
    fn snapshot(&self) -> Snapshot {
        let last = self
            .collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Snapshot::clone(&last)
    }

    fn encode(&self, _format: Format) -> Option<Result<Vec<u8>, std::fmt::Error>> {
        None
    }

    fn name(&self) -> &'static str {
        "otel"
    }

    fn attach_synthetic(&self, series: Arc<Synthetic>) {
        if let Some(providers) = &self.synthetic_providers {
            *self
                .synthetic_export
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some(synthetic::start(series, providers.clone()));
        }
    }
}

/// What `/view_metrics` shows before the first collection: no time, every bucket at zero.
fn not_collected() -> Snapshot {
    Snapshot {
        buckets: Snapshot::cumulative(&BUCKETS, std::iter::repeat_n(0, BUCKETS.len() + 1)),
        ..Snapshot::default()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::{
        Resource,
        metrics::{
            InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
            data::{AggregatedMetrics, MetricData},
        },
    };

    use super::*;
    use crate::config::{Backend, Config, Exporter, HistogramAggregation};
    use crate::metrics::conformance::{self, record};
    use crate::telemetry::LossTotals;
    use crate::telemetry::Losses;

    /// A backend on a provider built as the app builds it with `OTEL_EXPORTER=none`. The provider
    /// is returned too: its `force_flush` makes a collection, and dropping it would stop the
    /// instruments.
    fn backend() -> (SdkMeterProvider, OtelBackend) {
        let mut config = Config::defaults();
        config.metrics_backend = Backend::Otel;
        config.otel_exporter = Exporter::None;
        let tap = MetricsTap::new();
        let provider = crate::telemetry::meter_provider(
            &config,
            Resource::builder_empty().build(),
            &Arc::new(Losses::default()),
            &tap,
            view(10, None),
        )
        .unwrap();
        let backend = OtelBackend::new(&provider.meter("test"), tap, Arc::default());
        (provider, backend)
    }

    #[test]
    fn counts_by_the_rule_and_reads_what_the_sdk_aggregated() {
        let (provider, backend) = backend();

        conformance::counts_by_the_rule_and_reads_back(&backend, &|| {
            provider.force_flush().unwrap()
        });
    }

    #[test]
    fn the_snapshot_is_the_last_collection_and_says_when_it_was_made() {
        let (provider, backend) = backend();

        let before = backend.snapshot();
        backend.record(&record(200, 3));
        provider.force_flush().unwrap();
        backend.record(&record(200, 3));
        let collected = backend.snapshot();
        provider.force_flush().unwrap();
        let next = backend.snapshot();

        assert_eq!((before.requests, before.collected_at), (0, None));
        assert_eq!(before.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(
            collected.requests, 1,
            "the later request is not collected yet"
        );
        assert_eq!(next.requests, 2);
        let (first, second) = (collected.collected_at.unwrap(), next.collected_at.unwrap());
        assert!(second > first, "{first:?} {second:?}");
    }

    #[test]
    fn the_snapshot_lists_each_route_series_and_no_process() {
        let (provider, backend) = backend();

        backend.record(&record(503, 3));
        backend.record(&record(200, 30));
        backend.record(&record(200, 300));
        provider.force_flush().unwrap();
        let snapshot = backend.snapshot();

        let summary: Vec<_> = snapshot
            .series
            .iter()
            .map(|s| (s.route.as_str(), s.status, s.error_type.as_deref(), s.count))
            .collect();
        assert_eq!(summary, [("/", 200, None, 2), ("/", 503, Some("503"), 1)]);
        let ok = &snapshot.series[0];
        assert_eq!(
            (ok.method.as_str(), ok.url_scheme.as_str()),
            ("GET", "http")
        );
        assert_eq!(ok.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(ok.buckets[4].count, 1, "30 ms is under 75 ms");
        assert_eq!(snapshot.process, None);
    }

    #[test]
    fn past_the_view_limit_new_server_series_fold_into_one_overflow_series() {
        let (provider, backend) = backend();

        for status in 200..215 {
            backend.record(&record(status, 3));
        }
        provider.force_flush().unwrap();
        let series = backend.snapshot().series;

        let kept = series.iter().filter(|s| s.route == "/").count();
        let overflow: Vec<_> = series.iter().filter(|s| s.route.is_empty()).collect();
        assert_eq!(kept, 11, "10 series, and one more for the overflow's place");
        assert_eq!(overflow.len(), 1, "{series:?}");
        assert_eq!(overflow[0].count, 4);
    }

    /// Like [`backend`], with every histogram base-2 exponential (at most `max_size` buckets).
    fn exponential_backend(max_size: u32) -> (SdkMeterProvider, OtelBackend) {
        let mut config = Config::defaults();
        config.metrics_backend = Backend::Otel;
        config.otel_exporter = Exporter::None;
        config
            .sdk
            .otel_exporter_otlp_metrics_default_histogram_aggregation =
            HistogramAggregation::Base2ExponentialBucketHistogram;
        config.sdk.exponential_histogram_max_size = max_size;
        let tap = MetricsTap::new();
        let provider = crate::telemetry::meter_provider(
            &config,
            Resource::builder_empty().build(),
            &Arc::new(Losses::default()),
            &tap,
            view(10, crate::telemetry::histogram_aggregation(&config)),
        )
        .unwrap();
        let backend = OtelBackend::new(&provider.meter("test"), tap, Arc::default())
            .with_max_buckets(max_size as usize);
        (provider, backend)
    }

    #[test]
    fn exponential_histograms_show_their_counts_sums_fine_buckets_and_quantiles() {
        let (provider, backend) = exponential_backend(160);

        for millis in [3, 30, 300] {
            backend.record(&record(200, millis));
        }
        provider.force_flush().unwrap();
        let snapshot = backend.snapshot();

        assert_eq!(snapshot.count, 3);
        assert!((snapshot.sum - 0.333).abs() < 1e-9, "{}", snapshot.sum);
        let last = snapshot.buckets.last().unwrap();
        assert_eq!((last.le, last.count), (f64::INFINITY, 3));
        let fine = snapshot
            .buckets
            .iter()
            .find(|b| b.count == 1)
            .expect("a bucket holding 3 ms alone");
        assert!(fine.le >= 0.003 && fine.le < 0.0031, "{}", fine.le);
        let median = crate::metrics::histogram_quantile(0.5, &snapshot.buckets).unwrap();
        assert!((median - 0.03).abs() < 0.03 * 0.05, "{median}");
        let series = &snapshot.series[0];
        assert_eq!((series.route.as_str(), series.count), ("/", 3));
        assert_eq!(series.buckets, snapshot.buckets, "the same requests");
    }

    #[test]
    fn the_view_limit_holds_for_exponential_histograms_too() {
        let (provider, backend) = exponential_backend(160);

        for status in 200..215 {
            backend.record(&record(status, 3));
        }
        provider.force_flush().unwrap();
        let series = backend.snapshot().series;

        assert_eq!(series.iter().filter(|s| s.route == "/").count(), 11);
        let overflow: Vec<_> = series.iter().filter(|s| s.route.is_empty()).collect();
        assert_eq!(overflow.len(), 1, "{series:?}");
        assert_eq!(overflow[0].count, 4);
    }

    /// A backend whose reader asks for delta temporality, and what its exporter received.
    fn delta_backend(exponential: bool) -> (SdkMeterProvider, OtelBackend, InMemoryMetricExporter) {
        let tap = MetricsTap::new();
        let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporterBuilder::new()
            .with_temporality(opentelemetry_sdk::metrics::Temporality::Delta)
            .build();
        let aggregation = exponential.then_some(Aggregation::Base2ExponentialHistogram {
            max_size: 20,
            max_scale: 20,
            record_min_max: true,
        });
        let provider = SdkMeterProvider::builder()
            .with_view(view(10, aggregation))
            .with_reader(PeriodicReader::builder(tap.tee(exporter.clone())).build())
            .build();
        let backend =
            OtelBackend::new(&provider.meter("test"), tap, Arc::default()).with_max_buckets(20);
        (provider, backend, exporter)
    }

    #[test]
    fn delta_collections_are_added_up_so_the_snapshot_shows_totals() {
        let (provider, backend, exporter) = delta_backend(false);

        backend.record(&record(200, 3));
        backend.record(&record(404, 30));
        provider.force_flush().unwrap();
        backend.record(&record(200, 300));
        provider.force_flush().unwrap();
        provider.force_flush().unwrap();
        let snapshot = backend.snapshot();

        let exported = exporter.get_finished_metrics().unwrap();
        let requests: Vec<u64> = exported
            .iter()
            .map(|metrics| {
                metrics
                    .scope_metrics()
                    .flat_map(|scope| scope.metrics())
                    .filter(|m| m.name() == "http_requests")
                    .map(|m| match m.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                            sum.data_points().map(|p| p.value()).sum()
                        }
                        _ => 0,
                    })
                    .sum()
            })
            .collect();
        assert_eq!(requests, [2, 1, 0], "deltas were exported");
        assert_eq!(
            (snapshot.requests, snapshot.successful, snapshot.error_4xx),
            (3, 2, 1)
        );
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.buckets.last().unwrap().count, 3);
        let ok = snapshot.series.iter().find(|s| s.status == 200).unwrap();
        assert_eq!(ok.count, 2);
        assert!((ok.sum - 0.303).abs() < 1e-9);
    }

    #[test]
    fn delta_exponential_histograms_of_different_scales_add_up_within_the_bucket_limit() {
        let (provider, backend, _) = delta_backend(true);

        backend.record(&record(200, 1));
        provider.force_flush().unwrap();
        backend.record(&record(200, 10_000));
        provider.force_flush().unwrap();
        let snapshot = backend.snapshot();

        assert_eq!(snapshot.count, 2);
        assert!(
            snapshot.buckets.len() <= 20 + 2,
            "{}",
            snapshot.buckets.len()
        );
        let quantile = |q| crate::metrics::histogram_quantile(q, &snapshot.buckets).unwrap();
        assert!(quantile(0.25) < 0.002, "{}", quantile(0.25));
        assert!(quantile(0.99) > 5.0, "{}", quantile(0.99));
    }

    #[test]
    fn refused_requests_are_read_by_an_observable_counter_at_each_collection() {
        let tap = MetricsTap::new();
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(tap.tee(exporter.clone())).build())
            .build();
        let meter = provider.meter("test");
        let refused = Arc::new(RefusedRequests::default());
        let backend =
            OtelBackend::new(&meter, tap, Arc::default()).with_refused(&meter, refused.clone());

        refused.add();
        refused.add();
        refused.add();
        provider.force_flush().unwrap();

        let exported = exporter.get_finished_metrics().unwrap();
        let metric = exported[0]
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .find(|m| m.name() == "prom_metrics_app.http.requests.refused")
            .expect("the refused counter");
        assert_eq!(metric.unit(), "{request}");
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else {
            panic!("a sum of u64");
        };
        assert!(sum.is_monotonic());
        assert_eq!(sum.data_points().map(|p| p.value()).sum::<u64>(), 3);
        assert_eq!(backend.snapshot().requests, 0, "refusals are not requests");
    }

    #[test]
    fn client_calls_feed_the_client_duration_histogram_with_dotted_attributes() {
        let tap = MetricsTap::new();
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(tap.tee(exporter.clone())).build())
            .build();
        let backend = OtelBackend::new(&provider.meter("test"), tap, Arc::default());

        backend.record_client(&ClientRecord {
            method: "GET",
            server_address: std::sync::Arc::from("b.example"),
            server_port: 5000,
            url_scheme: "http",
            status: None,
            error_type: Some(crate::conventions::ErrorType::Timeout),
            duration: std::time::Duration::from_millis(3),
            trace: None,
        });
        provider.force_flush().unwrap();

        let exported = exporter.get_finished_metrics().unwrap();
        let metric = exported[0]
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .find(|m| m.name() == "http.client.request.duration")
            .expect("the client histogram");
        assert_eq!(metric.unit(), "s");
        let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
            panic!("a histogram of f64");
        };
        let point = histogram.data_points().next().expect("one point");
        let mut attributes: Vec<String> = point
            .attributes()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        attributes.sort();
        assert_eq!(
            attributes,
            [
                "error.type=timeout",
                "http.request.method=GET",
                "server.address=b.example",
                "server.port=5000",
                "url.scheme=http"
            ]
        );
        assert_eq!(point.count(), 1);
        let snapshot = backend.snapshot();
        assert!(snapshot.collected_at.is_some());
        assert_eq!(snapshot.requests, 0, "calls are not requests");
    }

    #[test]
    fn the_loss_totals_are_exported_as_counters() {
        let tap = MetricsTap::new();
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(tap.tee(exporter.clone())).build())
            .build();
        let losses = Losses::with_totals(LossTotals {
            dropped_spans: 1,
            failed_spans: 2,
            failed_metric_exports: 3,
            dropped_log_lines: 4,
            dropped_log_records: 5,
            failed_log_records: 6,
        });
        let _backend = OtelBackend::new(&provider.meter("test"), tap, Arc::new(losses));

        provider.force_flush().unwrap();

        let exported = exporter.get_finished_metrics().unwrap();
        let mut counters: Vec<(String, String, u64)> = exported[0]
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .filter_map(|metric| match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) if sum.is_monotonic() => Some((
                    metric.name().to_string(),
                    metric.unit().to_string(),
                    sum.data_points().map(|p| p.value()).sum(),
                )),
                _ => None,
            })
            .filter(|(name, _, _)| name.starts_with("prom_metrics_app."))
            .collect();
        counters.sort();
        let expected = [
            ("prom_metrics_app.log_lines.dropped", "{line}", 4),
            (
                "prom_metrics_app.telemetry.dropped_log_records",
                "{log_record}",
                5,
            ),
            ("prom_metrics_app.telemetry.dropped_spans", "{span}", 1),
            (
                "prom_metrics_app.telemetry.failed_log_records",
                "{log_record}",
                6,
            ),
            (
                "prom_metrics_app.telemetry.failed_metric_exports",
                "{export}",
                3,
            ),
            ("prom_metrics_app.telemetry.failed_spans", "{span}", 2),
        ]
        .map(|(name, unit, value)| (name.to_string(), unit.to_string(), value));
        assert_eq!(counters, expected);
    }
}
