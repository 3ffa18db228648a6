//! The typed values of the settings: the choices (enums) and the lists.

use clap::ValueEnum;
use url::Url;

/// Which metrics backend records the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// prometheus-client registry, pulled from /metrics.
    Prometheus,
    /// OpenTelemetry SDK, pushed by a periodic reader.
    Otel,
}

/// Whether the request histograms are also kept as Prometheus native histograms, and how finely.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NativeHistograms {
    /// Classic buckets only, as before native histograms.
    Off,
    /// Classic and native buckets; each native bucket's upper bound is at most this factor above
    /// its lower bound (the largest resolution that meets it is chosen, as client_golang's
    /// `NativeHistogramBucketFactor` does).
    BucketFactor(f64),
}

impl Default for NativeHistograms {
    /// A factor of 1.1, the resolution client_golang's users commonly pick (schema 3).
    fn default() -> Self {
        NativeHistograms::BucketFactor(1.1)
    }
}

/// Where spans and OTel metrics are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Exporter {
    /// Lines on stdout, in the CONSOLE_FORMAT.
    Console,
    /// OTLP to a collector.
    Otlp,
    /// No export.
    None,
}

/// How the `console` exporter writes spans and metrics to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsoleFormat {
    /// One line per span or data point: `span "GET /" trace_id=… status=unset duration_ms=… key=value …`.
    Compact,
    /// One line per export, in the OTLP/JSON encoding the Collector's file exporter writes.
    OtlpJson,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Compression of OTLP export requests, on both protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// gzip: `grpc-encoding: gzip` over gRPC, `Content-Encoding: gzip` over HTTP.
    Gzip,
    /// Uncompressed.
    None,
}

/// The aggregation of the OTel backend's histograms
/// (`OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum HistogramAggregation {
    /// Buckets at the app's fixed bounds, as Prometheus's classic histograms.
    ExplicitBucketHistogram,
    /// Base-2 exponential buckets whose scale adapts to the values recorded.
    #[value(name = "base2_exponential_bucket_histogram")]
    Base2ExponentialBucketHistogram,
}

/// Which instruments the OTLP metric exporter asks to be sent as deltas
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`), as the specification defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemporalityPreference {
    /// Every instrument cumulative: totals since the start.
    Cumulative,
    /// Counters, asynchronous counters, histograms and gauges as deltas; up-down counters
    /// cumulative.
    Delta,
    /// Synchronous counters and histograms as deltas; every other instrument cumulative.
    #[value(name = "lowmemory")]
    LowMemory,
}

/// Trace samplers of the OpenTelemetry specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

/// One context propagation format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagator {
    TraceContext,
    Baggage,
    B3,
    B3Multi,
}

impl Propagator {
    /// The name `OTEL_PROPAGATORS` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Propagator::TraceContext => "tracecontext",
            Propagator::Baggage => "baggage",
            Propagator::B3 => "b3",
            Propagator::B3Multi => "b3multi",
        }
    }
}

/// The ordered, de-duplicated list of propagation formats (empty for `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagators(pub Vec<Propagator>);

/// Request paths: exact, or prefixes when they end in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathList(pub Vec<String>);

impl PathList {
    /// Whether `path` is in the list.
    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == entry,
        })
    }
}

/// The downstream base URLs of `/chain`, in the order they are called (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Downstreams(pub Vec<Url>);

/// An ordered list of `key=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValues(pub Vec<(String, String)>);

/// The name a choice value has on the command line and in variables (`otel`, `http/protobuf`),
/// so that logs and pages show it as it is configured.
macro_rules! display_as_value {
    ($($kind:ty),*) => {$(
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let value = self.to_possible_value().expect("no variant is skipped");
                f.write_str(value.get_name())
            }
        }
    )*};
}

display_as_value!(
    Backend,
    Exporter,
    OtlpProtocol,
    Sampler,
    Compression,
    HistogramAggregation,
    TemporalityPreference
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_display_as_configured() {
        assert_eq!(Backend::Prometheus.to_string(), "prometheus");
        assert_eq!(OtlpProtocol::HttpProtobuf.to_string(), "http/protobuf");
        assert_eq!(
            Sampler::ParentbasedAlwaysOn.to_string(),
            "parentbased_always_on"
        );
        assert_eq!(
            HistogramAggregation::Base2ExponentialBucketHistogram.to_string(),
            "base2_exponential_bucket_histogram"
        );
        assert_eq!(TemporalityPreference::LowMemory.to_string(), "lowmemory");
    }

    #[test]
    fn excluded_paths_match_exactly_or_by_prefix() {
        let paths = PathList(vec!["/healthz".into(), "/static/*".into()]);

        assert!(paths.matches("/healthz"));
        assert!(!paths.matches("/healthz/more"));
        assert!(paths.matches("/static/style.css"));
        assert!(!paths.matches("/"));
    }
}
