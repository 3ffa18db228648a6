//! Metrics: one small backend trait, fed by the counting middleware, with a Prometheus and an
//! OpenTelemetry implementation.
//!
//! The middleware classifies each request once ([`RequestRecord`]); a backend only turns that record
//! into its own instruments, so both backends count by exactly the same rule.

mod exposition;
pub mod otel;
mod process;
pub mod prometheus;
mod quantile;
mod snapshot;

use std::{sync::Arc, time::Duration};

use axum::http::Method;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanId, TraceId};

use crate::{
    chaos::ChaosSettings,
    config::{Backend, Config},
    telemetry::Telemetry,
};

pub use exposition::Format;
pub use quantile::histogram_quantile;
pub use snapshot::{Bucket, Process, Series, Snapshot};

/// Upper bounds of the request histograms, in seconds: the Flask original's buckets.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The `http_route` value shared by every path that matched no route, so that random URLs cannot
/// create new series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

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

/// `error.type` of OpenTelemetry's HTTP conventions: why a request failed, from a bounded set.
/// On the server side, set for a 5xx answer and for a request whose client went away; a 4xx is the
/// client's error and gets none, as the conventions say for servers. On the client side (the
/// calls of `/chain`), set for any answer of 400 or more and for a call that got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// An error status, recorded as its code ("500").
    Status(u16),
    /// The client closed the connection before the answer.
    ClientClosed,
    /// An outgoing call got no complete answer within its time limit.
    Timeout,
    /// An outgoing call could not connect (refused, unknown host, failed TLS handshake).
    ConnectionFailed,
    /// An outgoing call got an answer that could not be read (cut short, too large).
    InvalidResponse,
    /// An outgoing call failed in another way (the conventions' fallback value).
    Other,
}

impl ErrorType {
    /// The error type of a request answered with `status`, or dropped unanswered (`aborted`).
    pub fn of(status: u16, aborted: bool) -> Option<Self> {
        if aborted {
            Some(ErrorType::ClientClosed)
        } else if status >= 500 {
            Some(ErrorType::Status(status))
        } else {
            None
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorType::Status(status) => write!(f, "{status}"),
            ErrorType::ClientClosed => f.write_str("client_closed"),
            ErrorType::Timeout => f.write_str("timeout"),
            ErrorType::ConnectionFailed => f.write_str("connection_failed"),
            ErrorType::InvalidResponse => f.write_str("invalid_response"),
            ErrorType::Other => f.write_str("_OTHER"),
        }
    }
}

/// `url.scheme` of every request: the app serves plain HTTP (TLS, if any, ends before it).
pub const URL_SCHEME: &str = "http";

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

/// A metrics backend: records counted requests, and reports its own current values.
pub trait MetricsBackend: Send + Sync + 'static {
    /// Records one finished request. Called on the hot path: must not block or await.
    fn record(&self, request: &RequestRecord);

    /// Records one finished outgoing call into the HTTP client duration histogram. Must not block.
    fn record_client(&self, call: &ClientRecord);

    /// Exports `settings` as the chaos gauges, from now on; called at start and on every change.
    fn set_chaos(&self, settings: &ChaosSettings);

    /// The current values of the original's families, the series of the per-route duration
    /// histogram and the process figures, read from the backend itself.
    fn snapshot(&self) -> Snapshot;

    /// The scrape exposition in `format`, or `None` when this backend is not scraped (it pushes).
    fn encode(&self, format: Format) -> Option<Result<String, std::fmt::Error>>;

    /// A short name for logs and pages.
    fn name(&self) -> &'static str;
}

/// Builds the backend chosen by `METRICS_BACKEND`.
pub fn build(config: &Config, telemetry: &Telemetry) -> Arc<dyn MetricsBackend> {
    match config.metrics_backend {
        Backend::Prometheus => {
            Arc::new(prometheus::PrometheusBackend::new().with_losses(telemetry.losses()))
        }
        Backend::Otel => {
            let (provider, reader) = telemetry
                .meter_provider()
                .expect("Telemetry::init builds a meter provider for the otel backend");
            Arc::new(otel::OtelBackend::new(
                &provider.meter(crate::telemetry::SCOPE),
                reader,
                telemetry.losses(),
            ))
        }
    }
}

/// The method label of a method outside the standard set (OpenTelemetry's conventions).
pub const OTHER_METHOD: &str = "_OTHER";

/// Normalises a method to the bounded set of OpenTelemetry's semantic conventions.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => OTHER_METHOD,
    }
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
        }
    }

    /// An empty backend lists every bucket at zero; then a 200, a 404 and a 500 are counted by the
    /// original's rule and read back through the snapshot.
    pub fn counts_by_the_rule_and_reads_back(backend: &dyn MetricsBackend) {
        let empty = backend.snapshot();
        assert_eq!((empty.requests, empty.count), (0, 0));
        assert_eq!(empty.buckets.len(), BUCKETS.len() + 1);

        backend.record(&record(200, 3));
        backend.record(&record(404, 30));
        backend.record(&record(500, 3000));
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

    #[test]
    fn error_type_is_set_for_5xx_and_dropped_requests_only() {
        assert_eq!(ErrorType::of(200, false), None);
        assert_eq!(ErrorType::of(404, false), None);
        assert_eq!(ErrorType::of(503, false), Some(ErrorType::Status(503)));
        assert_eq!(ErrorType::of(499, true), Some(ErrorType::ClientClosed));
        assert_eq!(ErrorType::Status(500).to_string(), "500");
        assert_eq!(ErrorType::ClientClosed.to_string(), "client_closed");
        assert_eq!(ErrorType::Timeout.to_string(), "timeout");
        assert_eq!(ErrorType::Other.to_string(), "_OTHER");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"PURGE").unwrap();

        assert_eq!(method_label(&custom), "_OTHER");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
