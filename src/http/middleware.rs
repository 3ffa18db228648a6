//! The two middlewares: `trace_requests` wraps every request in a server span and writes its access
//! line; `count_requests` records counted requests into the metrics backend.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{Version, header},
    middleware::Next,
    response::Response,
};
use opentelemetry::{propagation::TextMapPropagator, trace::TraceContextExt};
use opentelemetry_http::HeaderExtractor;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::AppState;
use crate::metrics::{
    ErrorType, MetricsBackend, OTHER_METHOD, RequestRecord, TraceRef, URL_SCHEME, method_label,
};

/// Opens the server span of a request (named `METHOD route`, OpenTelemetry's HTTP semantic
/// conventions), continuing the caller's trace when its headers carry one, and logs the access line
/// inside the span so the line carries the trace id. Paths in `TRACES_EXCLUDED_PATHS` (the probes,
/// by default) get no span; they are still logged, and counted as any other.
pub async fn trace_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let path = request.uri().path().to_owned();
    let span = if state.untraced.matches(&path) {
        tracing::Span::none()
    } else {
        server_span(&state, &request, method, &path)
    };

    let mut served = Served {
        span,
        method,
        path,
        start,
        done: false,
    };

    let response = next.run(request).instrument(served.span.clone()).await;

    served.finish(response.status().as_u16(), false);
    response
}

/// The server span with the attributes of OpenTelemetry's HTTP server span conventions, and no
/// others; those known only at the end are declared empty here and recorded by [`Served::finish`].
fn server_span(state: &AppState, request: &Request, method: &str, path: &str) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    // Conventions: `HTTP` stands for a method outside the standard set, and without a route
    // template the span is named by the method alone.
    let name_method = if method == OTHER_METHOD {
        "HTTP"
    } else {
        method
    };
    let name = match route {
        Some(route) => format!("{name_method} {route}"),
        None => name_method.to_string(),
    };
    let original_method = (method == OTHER_METHOD).then(|| request.method().as_str());
    let (host, port) = server_address(request);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = peer.map(|p| p.ip().to_string());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());

    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.request.method_original = original_method,
        http.route = route,
        http.response.status_code = Empty,
        error.type = Empty,
        url.path = %path,
        url.query = request.uri().query(),
        url.scheme = URL_SCHEME,
        server.address = host.as_deref(),
        server.port = port,
        client.address = client.as_deref(),
        network.peer.address = client.as_deref(),
        network.peer.port = peer.map(|p| i64::from(p.port())),
        user_agent.original = user_agent,
        network.protocol.version = protocol_version(request.version()),
    );
    let parent = state
        .propagator
        .extract(&HeaderExtractor(request.headers()));
    if let Err(err) = span.set_parent(parent) {
        tracing::debug!(%err, "could not continue the caller's trace");
    }
    span
}

/// A traced request: ends its span and writes its access line exactly once, when answered or,
/// if the client disconnects first, as [`CLIENT_CLOSED_REQUEST`].
struct Served {
    span: tracing::Span,
    method: &'static str,
    path: String,
    start: Instant,
    done: bool,
}

impl Served {
    fn finish(&mut self, status: u16, aborted: bool) {
        self.done = true;
        // Recorded as i64: tracing-opentelemetry would turn a u64 into a string attribute.
        self.span
            .record("http.response.status_code", i64::from(status));
        if let Some(error_type) = ErrorType::of(status, aborted) {
            self.span
                .record("error.type", tracing::field::display(error_type));
        }
        // A client that went away is not the server's failure: only a 5xx is an error status.
        if status >= 500 {
            self.span.record("otel.status_code", "ERROR");
        }
        let (method, path) = (self.method, &self.path);
        let millis = self.start.elapsed().as_secs_f64() * 1e3;
        self.span.in_scope(
            || tracing::info!(target: "access", "{method} {path} {status} {millis:.3}ms"),
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !self.done {
            self.finish(CLIENT_CLOSED_REQUEST, true);
        }
    }
}

/// State of the counting middleware of one route.
#[derive(Clone)]
pub struct Counted {
    pub backend: Arc<dyn MetricsBackend>,
    /// The route template, fixed when the route table is built, so no lookup or allocation is
    /// needed per request.
    pub route: &'static str,
}

/// Status recorded for a request whose client went away before the answer (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Times the request and records its outcome exactly once: after the handler answered, or, when
/// the client disconnects first and the request is dropped, as [`CLIENT_CLOSED_REQUEST`].
pub async fn count_requests(
    State(counted): State<Counted>,
    request: Request,
    next: Next,
) -> Response {
    let mut pending = Pending {
        counted: &counted,
        method: method_label(request.method()),
        start: Instant::now(),
        recorded: false,
    };

    let response = next.run(request).await;

    pending.record(response.status().as_u16(), false);
    response
}

/// A request on its way through the handler; records itself if dropped unanswered.
struct Pending<'a> {
    counted: &'a Counted,
    method: &'static str,
    start: Instant,
    recorded: bool,
}

impl Pending<'_> {
    fn record(&mut self, status: u16, aborted: bool) {
        self.recorded = true;
        self.counted.backend.record(&RequestRecord {
            method: self.method,
            route: self.counted.route,
            status,
            error_type: ErrorType::of(status, aborted),
            duration: self.start.elapsed(),
            trace: current_trace(),
        });
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(CLIENT_CLOSED_REQUEST, true);
        }
    }
}

/// The current sampled span, if any: the exemplar of this measurement.
fn current_trace() -> Option<TraceRef> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_sampled().then(|| TraceRef {
        trace_id: span_context.trace_id(),
        span_id: span_context.span_id(),
    })
}

/// `server.address` and `server.port` from the `Host` header (or the URI), as the conventions say.
fn server_address(request: &Request) -> (Option<String>, Option<i64>) {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .or_else(|| request.uri().authority().cloned());
    match authority {
        Some(a) => (Some(a.host().to_owned()), a.port_u16().map(i64::from)),
        None => (None, None),
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
