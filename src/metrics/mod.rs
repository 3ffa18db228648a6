//! Metrics: one small backend trait, fed by the counting middleware, with a Prometheus and an
//! OpenTelemetry implementation.
//!
//! The middleware classifies each request once ([`RequestRecord`]); a backend only turns that record
//! into its own instruments, so both backends count by exactly the same rule.

mod exposition;
pub mod otel;
mod own;
mod process;
pub mod prometheus;
mod quantile;
mod refused;
mod snapshot;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanId, TraceId};

use crate::{
    chaos::ChaosSettings,
    config::{Backend, Config},
    conventions::ErrorType,
    synthetic::Synthetic,
    telemetry::Telemetry,
};

pub use exposition::Format;
pub use quantile::{histogram_quantile, native_histogram_quantile};
pub use refused::RefusedRequests;
pub use snapshot::{Bucket, NativeBucket, NativeHistogram, Process, Series, Snapshot};

/// Upper bounds of the request histograms, in seconds: the Flask original's buckets.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How a counted request ended, by the original's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any status below 400: counted in `http_successful_request_total`.
    Success,
    /// 4xx: counted in `http_error_4xx_total`.
    ClientError,
    /// 5xx: counted in `http_error_5xx_total`.
    ServerError,
}

impl Outcome {
    /// Classifies a response status.
    pub fn of(status: u16) -> Self {
        match status {
            500.. => Outcome::ServerError,
            400..=499 => Outcome::ClientError,
            _ => Outcome::Success,
        }
    }
}

/// The trace and span a measurement was made in, for exemplars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// One finished, counted request. Every field is bounded, so a record never creates unbounded series.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord {
    /// The request method, or `_OTHER` for a method outside the standard set.
    pub method: &'static str,
    /// The matched route template, or [`UNMATCHED_ROUTE`].
    pub route: &'static str,
    /// The response status code.
    pub status: u16,
    /// Why the request failed, if it did.
    pub error_type: Option<ErrorType>,
    /// Time from the request reaching the middleware to the response leaving it.
    pub duration: Duration,
    /// The sampled span the request was served in, if any.
    pub trace: Option<TraceRef>,
    /// When the request ended: the time of its exemplar.
    pub at: SystemTime,
}

impl RequestRecord {
    /// The request's outcome by the original's rule.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.status)
    }
}

/// One finished outgoing HTTP request (a call of `/chain` to a downstream), as OpenTelemetry's HTTP
/// client conventions describe it. Every field is bounded: the server comes from the
/// configuration (`DOWNSTREAM_URL`), never from client input.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// The request method, from the standard set.
    pub method: &'static str,
    /// The host of the downstream's configured URL.
    pub server_address: Arc<str>,
    /// The port of the downstream's configured URL, or its scheme's default.
    pub server_port: u16,
    /// `http` or `https`.
    pub url_scheme: &'static str,
    /// The status of the answer, if one came.
    pub status: Option<u16>,
    /// Why the call failed, if it did.
    pub error_type: Option<ErrorType>,
    /// Time from sending the request to having read the whole answer (or giving up).
    pub duration: Duration,
    /// The sampled client span of the call, if any.
    pub trace: Option<TraceRef>,
}

/// Successive pieces of an exposition, made one after the other when asked for, so that a scrape
/// of a million series is never whole in memory.
pub type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// A metrics backend: records counted requests, and reports its own current values.
pub trait MetricsBackend: Send + Sync + 'static {
    /// Records one finished request. Must not block or await.
    fn record(&self, request: &RequestRecord);

    /// The recorder of one counted route, made when the router is built: it may keep handles of
    /// the route's series, so that recording a request finds them without a lookup.
    fn route(self: Arc<Self>, route: &'static str) -> Arc<dyn RouteMetrics>;

    /// Records one finished outgoing call into the HTTP client duration histogram. Must not block.
    fn record_client(&self, call: &ClientRecord);

    /// Exports `settings` as the chaos gauges, from now on; called at start and on every change.
    fn set_chaos(&self, settings: &ChaosSettings);

    /// The current values of the original's families, the series of the per-route duration
    /// histogram and the process figures, read from the backend itself.
    fn snapshot(&self) -> Snapshot;

    /// The scrape exposition in `format` (text for the text formats), or `None` when this backend
    /// is not scraped (it pushes).
    fn encode(&self, format: Format) -> Option<Result<Vec<u8>, std::fmt::Error>>;

    /// A short name for logs and pages.
    fn name(&self) -> &'static str;

    /// Exports the series of `synthetic` from now on; called once, when the app's state is made.
    fn attach_synthetic(&self, synthetic: Arc<Synthetic>) {
        let _ = synthetic;
    }

    /// The synthetic families in `format`, to follow [`MetricsBackend::encode`]'s exposition
    /// (before the OpenMetrics `# EOF`), or `None` when there are none or this backend is not
    /// scraped.
    fn synthetic_exposition(&self, format: Format) -> Option<Chunks> {
        let _ = format;
        None
    }
}

/// Records the requests of one counted route (see [`MetricsBackend::route`]). Called on the hot
/// path: must not block or await.
pub trait RouteMetrics: Send + Sync {
    /// Records one finished request of the route.
    fn record(&self, request: &RequestRecord);
}

/// A route recorder that keeps no handles: it hands each request to its backend.
pub struct Forward(pub Arc<dyn MetricsBackend>);

impl RouteMetrics for Forward {
    fn record(&self, request: &RequestRecord) {
        self.0.record(request);
    }
}

/// Builds the backend chosen by `METRICS_BACKEND`; it also exports the total of `refused`.
pub fn build(
    config: &Config,
    telemetry: &Telemetry,
    refused: &Arc<RefusedRequests>,
) -> Arc<dyn MetricsBackend> {
    match config.metrics_backend {
        Backend::Prometheus => Arc::new(
            prometheus::PrometheusBackend::with_native_histograms(
                config.native_histogram_bucket_factor,
            )
            .with_losses(telemetry.losses())
            .with_refused(refused.clone()),
        ),
        Backend::Otel => {
            let (provider, tap) = telemetry
                .meter_provider()
                .expect("Telemetry::init builds a meter provider for the otel backend");
            let meter = provider.meter(crate::telemetry::SCOPE);
            Arc::new(
                otel::OtelBackend::new(&meter, tap, telemetry.losses())
                    .with_refused(&meter, refused.clone())
                    .with_max_buckets(config.sdk.exponential_histogram_max_size as usize)
                    .with_synthetic_providers(synthetic_providers(config, telemetry)),
            )
        }
    }
}

/// Makes the meter providers of the synthetic series: the app's resource and metric exporter
/// (none when metrics are exported nowhere), with a view of their own.
fn synthetic_providers(config: &Config, telemetry: &Telemetry) -> otel::synthetic::ProviderBuilder {
    let (config, resource, losses) = (config.clone(), telemetry.resource(), telemetry.losses());
    Arc::new(move |view| {
        if config.metrics_exporter() == crate::config::Exporter::None {
            return None;
        }
        let tap = crate::telemetry::MetricsTap::new();
        crate::telemetry::meter_provider(&config, resource.clone(), &losses, &tap, view)
            .map_err(|err| tracing::warn!(error = %err, "cannot export the synthetic series"))
            .ok()
    })
}

/// Checks every backend must pass, run by each backend's tests.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    /// A `GET /` record with `status`, taking `millis`.
    pub fn record(status: u16, millis: u64) -> RequestRecord {
        RequestRecord {
            method: "GET",
            route: "/",
            status,
            error_type: ErrorType::of(status, false),
            duration: Duration::from_millis(millis),
            trace: None,
            at: SystemTime::now(),
        }
    }

    /// An empty backend lists every bucket at zero; then a 200, a 404 and a 500 are counted by the
    /// original's rule and read back through the snapshot once `collect` has run (a backend that
    /// is read live needs none).
    pub fn counts_by_the_rule_and_reads_back(backend: &dyn MetricsBackend, collect: &dyn Fn()) {
        collect();
        let empty = backend.snapshot();
        assert_eq!((empty.requests, empty.count), (0, 0));
        assert_eq!(empty.buckets.len(), BUCKETS.len() + 1);

        backend.record(&record(200, 3));
        backend.record(&record(404, 30));
        backend.record(&record(500, 3000));
        collect();
        let snapshot = backend.snapshot();

        assert_eq!(
            (
                snapshot.requests,
                snapshot.successful,
                snapshot.error_4xx,
                snapshot.error_5xx
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(
            snapshot.buckets[0].count, 1,
            "3 ms is under the first bound, 5 ms"
        );
        assert_eq!(snapshot.buckets[5].count, 2, "30 ms is under 100 ms");
        assert_eq!(
            snapshot.buckets.last().map(|b| (b.le, b.count)),
            Some((f64::INFINITY, 3))
        );
        assert!((snapshot.sum - 3.033).abs() < 1e-9, "sum {}", snapshot.sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_follows_the_original_rule() {
        assert_eq!(Outcome::of(200), Outcome::Success);
        assert_eq!(Outcome::of(302), Outcome::Success);
        assert_eq!(Outcome::of(400), Outcome::ClientError);
        assert_eq!(Outcome::of(404), Outcome::ClientError);
        assert_eq!(Outcome::of(500), Outcome::ServerError);
        assert_eq!(Outcome::of(503), Outcome::ServerError);
    }
}
