//! The tracing layer: one server span per request, made straight through the OpenTelemetry SDK,
//! and the access line, written once the answer is known.
//!
//! A hand-written tower layer with its own future: no boxing, no `tracing` span, no bridge. The
//! request's OpenTelemetry context is attached while the inner service runs, so handlers, the
//! counting layer (for exemplars) and every log line inside the request see the server span.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{Version, header},
    response::Response,
};
use opentelemetry::{
    Context, KeyValue,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::{SpanContext, SpanKind, Status, TraceContextExt, Tracer as _},
};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SdkTracer, ShouldSample,
};
use tower::{Layer, Service};

use crate::{
    config::PathList,
    metrics::{ErrorType, OTHER_METHOD, URL_SCHEME, method_label},
    telemetry::AccessLog,
};

use super::unanswered::Unanswered;

/// What the tracing layer needs, shared by every request.
pub struct Tracing {
    /// Makes the server spans, and the handlers' own spans.
    pub tracer: SdkTracer,
    /// Set when no exporter would read the spans (`OTEL_EXPORTER=none`): a server span is then
    /// only its ids, drawn and sampled as the SDK would, so exemplars and log lines still carry
    /// them, and nothing else is built.
    pub ids_only: Option<IdsOnly>,
    /// Reads the caller's trace context from request headers.
    pub propagator: TextMapCompositePropagator,
    /// Paths that get no server span (`TRACES_EXCLUDED_PATHS`).
    pub untraced: PathList,
    /// Where access lines go; `None` writes them as `tracing` events.
    pub access_log: Option<AccessLog>,
    /// How a request dropped unanswered is recorded.
    pub unanswered: Arc<Unanswered>,
}

/// How server spans are made when nothing exports them.
pub struct IdsOnly {
    /// The configured sampler, which decides whether the ids are marked sampled.
    pub sampler: Sampler,
    /// Draws new trace and span ids.
    pub ids: RandomIdGenerator,
}

impl IdsOnly {
    /// The ids of a server span under `parent`: a new span id, the parent's trace id or a new
    /// one, and the sampler's decision. The same decision the SDK would take; see
    /// `SdkTracer::build_with_context`.
    fn span_context(&self, parent: &Context) -> SpanContext {
        let parent_span = parent.span();
        let parent_context = Some(parent_span.span_context()).filter(|c| c.is_valid());
        let trace_id = match parent_context {
            Some(context) => context.trace_id(),
            None => self.ids.new_trace_id(),
        };
        let result =
            self.sampler
                .should_sample(Some(parent), trace_id, "", &SpanKind::Server, &[], &[]);
        let flags = parent_context
            .map(SpanContext::trace_flags)
            .unwrap_or_default()
            .with_sampled(result.decision == SamplingDecision::RecordAndSample);
        SpanContext::new(
            trace_id,
            self.ids.new_span_id(),
            flags,
            false,
            result.trace_state,
        )
    }
}

/// Wraps every request in a server span and writes its access line.
#[derive(Clone)]
pub struct TraceLayer(pub Arc<Tracing>);

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            tracing: self.0.clone(),
        }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
    tracing: Arc<Tracing>,
}

impl<S, B> Service<Request> for TraceService<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = TracedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = Instant::now();
        let method = method_label(request.method());
        let path: Arc<str> = Arc::from(request.uri().path());
        let context = (!self.tracing.untraced.matches(&path))
            .then(|| server_span(&self.tracing, &request, method, &path));
        let inner = match &context {
            Some(context) => {
                let _attached = context.clone().attach();
                self.inner.call(request)
            }
            None => self.inner.call(request),
        };
        TracedFuture {
            inner,
            served: Served {
                tracing: self.tracing.clone(),
                context,
                method,
                path,
                start,
                done: false,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, run with the request's context attached; ends the span and
    /// writes the access line when it completes (or, if the client goes away first, on drop).
    pub struct TracedFuture<F> {
        #[pin]
        inner: F,
        served: Served,
    }
}

impl<F, B, E> Future for TracedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _attached = this.served.context.clone().map(Context::attach);
        let result = std::task::ready!(this.inner.poll(cx));
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            // axum's services are infallible; a failure here would be a 500.
            Err(_) => 500,
        };
        this.served.finish(status, ErrorType::of(status, false));
        Poll::Ready(result)
    }
}

/// A traced request: ends its span and writes its access line exactly once.
struct Served {
    tracing: Arc<Tracing>,
    context: Option<Context>,
    method: &'static str,
    path: Arc<str>,
    start: Instant,
    done: bool,
}

impl Served {
    fn finish(&mut self, status: u16, error_type: Option<ErrorType>) {
        self.done = true;
        let millis = self.start.elapsed().as_secs_f64() * 1e3;
        let span = self.context.as_ref().map(|context| context.span());
        if let Some(span) = &span {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if let Some(error_type) = error_type {
                span.set_attribute(KeyValue::new("error.type", error_type.to_string()));
            }
            // A client that went away is not the server's failure: only a 5xx is an error status.
            if status >= 500 {
                span.set_status(Status::error(""));
            }
        }
        let (method, path) = (self.method, &*self.path);
        match &self.tracing.access_log {
            Some(log) => log.write(
                method,
                path,
                status,
                millis,
                span.as_ref().map(|s| s.span_context()),
            ),
            None => {
                // Inside the request's context, so the line carries the span's ids.
                let _attached = self.context.clone().map(Context::attach);
                tracing::info!(target: "access", "{method} {path} {status} {millis:.3}ms");
            }
        }
        if let Some(span) = span {
            span.end();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !self.done {
            let (status, error_type) = self.tracing.unanswered.outcome();
            self.finish(status, Some(error_type));
        }
    }
}

/// Starts the server span, named `METHOD route` with the attributes of OpenTelemetry's HTTP server
/// span conventions and no others, continuing the caller's trace when its headers carry one.
fn server_span(
    tracing: &Tracing,
    request: &Request,
    method: &'static str,
    path: &Arc<str>,
) -> Context {
    let parent = tracing
        .propagator
        .extract(&HeaderExtractor(request.headers()));
    if let Some(ids_only) = &tracing.ids_only {
        // A span context alone: a span that records nothing, with ids (not remote: it is ours).
        return parent.with_remote_span_context(ids_only.span_context(&parent));
    }
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
    let span = tracing
        .tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes(request, method, route, path))
        .start_with_context(&tracing.tracer, &parent);
    parent.with_span(span)
}

/// The attributes of the HTTP server span conventions known when the request arrives.
fn attributes(
    request: &Request,
    method: &'static str,
    route: Option<&str>,
    path: &Arc<str>,
) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(16);
    attributes.push(KeyValue::new("http.request.method", method));
    if method == OTHER_METHOD {
        attributes.push(KeyValue::new(
            "http.request.method_original",
            request.method().as_str().to_owned(),
        ));
    }
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.to_owned()));
    }
    // Shared with the access line rather than copied.
    attributes.push(KeyValue::new("url.path", path.clone()));
    if let Some(query) = request.uri().query() {
        attributes.push(KeyValue::new("url.query", query.to_owned()));
    }
    attributes.push(KeyValue::new("url.scheme", URL_SCHEME));
    if let Some((host, port)) = server_address(request) {
        attributes.push(KeyValue::new("server.address", host));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let ip = peer.ip().to_string();
        attributes.push(KeyValue::new("client.address", ip.clone()));
        attributes.push(KeyValue::new("network.peer.address", ip));
        attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
    }
    if let Some(agent) = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    attributes.push(KeyValue::new(
        "network.protocol.version",
        protocol_version(request.version()),
    ));
    attributes
}

/// `server.address` and `server.port` from the `Host` header (or the URI), as the conventions say.
fn server_address(request: &Request) -> Option<(String, Option<u16>)> {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .or_else(|| request.uri().authority().cloned())?;
    Some((authority.host().to_owned(), authority.port_u16()))
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
