//! Telemetry: the tracer, meter and logger providers, their exporters, context propagation and
//! logging.
//!
//! One [`Telemetry`] value owns them all; [`Telemetry::shutdown`] flushes metrics, spans and log
//! records so that every completed request reaches the collector before the process exits.

mod access;
mod b3;
mod console;
mod deadline;
mod exporters;
mod log_writer;
mod logging;
mod loss;
mod records;
mod rotation;
mod tap;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use opentelemetry::{
    KeyValue,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    Resource,
    logs::SdkLoggerProvider,
    metrics::{Aggregation, Instrument, SdkMeterProvider, Stream},
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{Sampler as SdkSampler, SdkTracer, SdkTracerProvider},
};

use crate::config::{Backend, Config, HistogramAggregation, Propagator, Sampler};
use b3::{B3Encoding, B3Propagator};

pub use access::{Access, AccessLog, Requester};
pub use log_writer::FLUSH_EVERY as LOG_FLUSH_EVERY;
pub use loss::{LossTotals, Losses};
pub use rotation::LOG_FILE;
pub use tap::MetricsTap;

/// Name of the instrumentation scope of the app's own spans and instruments.
pub const SCOPE: &str = "prom-metrics-app";

/// Owns the telemetry pipeline for the life of the process.
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    metrics_tap: Option<MetricsTap>,
    losses: Arc<Losses>,
    resource: Resource,
    access_log: AccessLog,
    _log_guards: Vec<log_writer::FlushGuard>,
}

impl Telemetry {
    /// Builds the exporters, the providers and the logging subscriber from `config`, and installs
    /// the subscriber as the global default. `view` applies to the instruments of the otel metrics
    /// backend, if it is the one chosen.
    pub fn init(
        config: &Config,
        view: impl Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let resource = resource(config);
        let losses = Arc::new(Losses::default());
        let span_processor =
            exporters::span_processor(config, &losses).context("building the span exporter")?;
        // OTEL_ATTRIBUTE_COUNT_LIMIT bounds spans, their events and their links alike, as the
        // specification's general attribute limit does.
        let limit = config.sdk.otel_attribute_count_limit;
        let resource_for_logs = resource.clone();
        let mut tracer = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(sampler(config))
            .with_max_attributes_per_span(limit)
            .with_max_attributes_per_event(limit)
            .with_max_attributes_per_link(limit);
        if let Some(processor) = span_processor {
            tracer = tracer.with_span_processor(processor);
        }
        let tracer_provider = tracer.build();

        let (meter_provider, metrics_tap) = if config.metrics_backend == Backend::Otel {
            let tap = MetricsTap::new();
            let provider = meter_provider(config, resource.clone(), &losses, &tap, view)?;
            (Some(provider), Some(tap))
        } else {
            (None, None)
        };

        let logger_provider = exporters::log_processor(config, &losses)
            .context("building the log exporter")?
            .map(|processor| records::provider(resource_for_logs, processor));
        let (access_log, log_guards) =
            logging::init(config, losses.clone(), logger_provider.as_ref())
                .context("setting up logging")?;
        Ok(Self {
            tracer_provider,
            meter_provider,
            logger_provider,
            metrics_tap,
            losses,
            resource,
            access_log,
            _log_guards: log_guards,
        })
    }

    /// The tracer of the app's own spans, exported as configured.
    pub fn tracer(&self) -> SdkTracer {
        self.tracer_provider.tracer(SCOPE)
    }

    /// The writer of access lines.
    pub fn access_log(&self) -> AccessLog {
        self.access_log.clone()
    }

    /// The resource of every signal: the same `service.instance.id` for any provider built later.
    pub fn resource(&self) -> Resource {
        self.resource.clone()
    }

    /// Running totals of telemetry lost to a slow or dead collector.
    pub fn losses(&self) -> Arc<Losses> {
        self.losses.clone()
    }

    /// The meter provider and the tap of its exported collections, when the OpenTelemetry metrics
    /// backend is on.
    pub fn meter_provider(&self) -> Option<(&SdkMeterProvider, MetricsTap)> {
        Some((self.meter_provider.as_ref()?, self.metrics_tap.clone()?))
    }

    /// Flushes and shuts down the providers, all together bounded by `timeout`, log records last
    /// so that the steps of the shutdown are among them; each step is
    /// also told to `tell` (stderr, for a person at a terminal). The exporters block the calling
    /// thread while the gRPC client needs the runtime, hence `spawn_blocking`.
    pub async fn shutdown(self, timeout: Duration, tell: impl Fn(&str)) {
        let Telemetry {
            tracer_provider,
            meter_provider,
            logger_provider,
            _log_guards,
            ..
        } = self;
        let deadline = Instant::now() + timeout;
        let flush = tokio::task::spawn_blocking(move || {
            if let Some(meters) = meter_provider
                && let Err(err) = meters.shutdown_with_timeout(timeout)
            {
                tracing::warn!(%err, "flushing metrics at shutdown failed");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(err) = tracer_provider.shutdown_with_timeout(left) {
                tracing::warn!(%err, "flushing spans at shutdown failed");
            }
            if let Some(records) = logger_provider {
                let left = deadline.saturating_duration_since(Instant::now());
                // No record can tell of this one's failure: the line alone does.
                if let Err(err) = records.shutdown_with_timeout(left) {
                    tracing::warn!(%err, "flushing log records at shutdown failed");
                }
            }
        });
        // The SDK's own bounds are per step; this one holds for the whole flush.
        match tokio::time::timeout_at(deadline.into(), flush).await {
            Ok(Ok(())) => {
                tracing::info!("telemetry flushed");
                tell("telemetry flushed");
            }
            Ok(Err(err)) => tracing::warn!(%err, "telemetry shutdown task failed"),
            Err(_) => {
                tracing::warn!(
                    timeout_seconds = timeout.as_secs_f64(),
                    "telemetry flush took too long: what was not exported is lost"
                );
                tell("telemetry flush took too long: what was not exported is lost");
            }
        }
        // The last line: dropping the guard writes out the buffered lines and stops the writer,
        // within a bound, so that a stuck stdout cannot hold up the exit.
        tracing::info!("exiting");
        tell("exiting");
        drop(_log_guards);
    }
}

/// The meter provider of the otel metrics backend: one periodic reader, which collects every
/// `OTEL_METRIC_EXPORT_INTERVAL`, shows the collection to `tap`, then exports it as `config` says;
/// `view` applies to every instrument. One reader, so the SDK aggregates each measurement once,
/// and what `tap` shows is what was exported.
pub fn meter_provider(
    config: &Config,
    resource: Resource,
    losses: &Arc<Losses>,
    tap: &MetricsTap,
    view: impl Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static,
) -> anyhow::Result<SdkMeterProvider> {
    let builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_view(view);
    let builder = exporters::with_periodic_reader(builder, config, losses, tap)
        .context("building the metric exporter")?;
    Ok(builder.build())
}

/// The aggregation that `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` gives every
/// histogram, for the view to apply; `None` for the SDK's default (explicit buckets, at the
/// bounds the instrument advises).
pub fn histogram_aggregation(config: &Config) -> Option<Aggregation> {
    match config
        .sdk
        .otel_exporter_otlp_metrics_default_histogram_aggregation
    {
        HistogramAggregation::ExplicitBucketHistogram => None,
        HistogramAggregation::Base2ExponentialBucketHistogram => {
            Some(Aggregation::Base2ExponentialHistogram {
                max_size: config.sdk.exponential_histogram_max_size,
                max_scale: config.sdk.exponential_histogram_max_scale,
                record_min_max: true,
            })
        }
    }
}

/// `service.name`: the default, then `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME`, each
/// overriding the one before, as the specification orders them.
pub fn service_name(config: &Config) -> String {
    let from_attributes = config
        .otel_resource_attributes
        .iter()
        .flat_map(|extra| &extra.0)
        .rev()
        .find_map(|(key, value)| (key == "service.name").then_some(value));
    config
        .otel_service_name
        .as_ref()
        .or(from_attributes)
        .map_or_else(|| SCOPE.to_string(), Clone::clone)
}

/// The resource: [`service_name`], version, instance id and `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(config: &Config) -> Resource {
    let mut attributes = vec![
        KeyValue::new("service.version", crate::VERSION),
        KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
    ];
    if let Some(extra) = &config.otel_resource_attributes {
        attributes.extend(
            extra
                .0
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
    }
    attributes.push(KeyValue::new("service.name", service_name(config)));
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(attributes)
        .build()
}

/// The sampler that `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` describe.
pub fn sampler(config: &Config) -> SdkSampler {
    let ratio = config.sampler_ratio();
    match config.otel_traces_sampler {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::Traceidratio => SdkSampler::TraceIdRatioBased(ratio),
        Sampler::ParentbasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentbasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentbasedTraceidratio => {
            SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(ratio)))
        }
    }
}

/// The request headers that the propagators of `OTEL_PROPAGATORS` read: a request with none of
/// them carries no context, and extraction can be skipped.
pub fn propagation_headers(config: &Config) -> Vec<axum::http::HeaderName> {
    let mut names: Vec<&str> = Vec::new();
    for propagator in &config.otel_propagators.0 {
        match propagator {
            Propagator::TraceContext => names.extend(["traceparent", "tracestate"]),
            Propagator::Baggage => names.push("baggage"),
            Propagator::B3 | Propagator::B3Multi => names.extend(b3::READ_HEADERS),
        }
    }
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(axum::http::HeaderName::from_static)
        .collect()
}

/// The composite propagator for `OTEL_PROPAGATORS`, in the order given.
pub fn propagator(config: &Config) -> TextMapCompositePropagator {
    let propagators = config
        .otel_propagators
        .0
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(BaggagePropagator::new()),
                Propagator::B3 => Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
                Propagator::B3Multi => Box::new(B3Propagator::new(B3Encoding::MultipleHeaders)),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyValues;

    #[test]
    fn service_name_is_the_variable_then_the_resource_attribute_then_the_default() {
        let mut config = Config::defaults();
        assert_eq!(service_name(&config), "prom-metrics-app");

        config.otel_resource_attributes = Some(KeyValues(vec![
            ("team".into(), "sre".into()),
            ("service.name".into(), "from-attributes".into()),
        ]));
        assert_eq!(service_name(&config), "from-attributes");

        config.otel_service_name = Some("checkout".into());
        assert_eq!(service_name(&config), "checkout");
    }
}
