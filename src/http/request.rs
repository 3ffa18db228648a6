//! The request layer: for every request, one server span made straight through the OpenTelemetry
//! SDK, the counting by the original's rule (counted routes only) and the access line (with, for
//! a traced request, its log record), all from one clock read at each end.
//!
//! The layer is put on each route when the router is built, with what can be worked out once:
//! the route's template and label, its span names for each method, and whether it is counted. No
//! boxing, no `tracing` span, no bridge. The request's OpenTelemetry context is attached while the
//! inner service runs, so handlers and every log line inside the request see the server span.

use std::{
    any::Any,
    future::Future,
    net::{IpAddr, SocketAddr},
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{HeaderName, header, uri::PathAndQuery},
    response::Response,
};
use opentelemetry::{
    Context, KeyValue, StringValue,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::{SpanContext, SpanKind, Status, TraceContextExt, Tracer as _},
};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SdkTracer, ShouldSample,
};
use tower::{Layer, Service, layer::layer_fn};

use super::{error::panic_response, unanswered::Unanswered};
use crate::{
    clock,
    config::PathList,
    conventions::{ErrorType, METHODS, OTHER_METHOD, URL_SCHEME, method_index, protocol_version},
    metrics::{MetricsBackend, RequestRecord, RouteMetrics, TraceRef},
    telemetry::{Access, AccessLog, Requester},
};

/// What every request layer shares.
pub struct Instrumentation {
    /// Makes the server spans, and the handlers' own spans.
    pub tracer: SdkTracer,
    /// Set when no exporter would read the spans (`OTEL_EXPORTER=none`): a server span is then
    /// only its ids, drawn and sampled as the SDK would, so exemplars and log lines still carry
    /// them, and nothing else is built.
    pub ids_only: Option<IdsOnly>,
    /// Reads the caller's trace context from request headers.
    pub propagator: TextMapCompositePropagator,
    /// The headers the propagator reads: a request with none of them (most requests) skips it.
    pub propagation_headers: Vec<HeaderName>,
    /// Paths that get no server span (`TRACES_EXCLUDED_PATHS`).
    pub untraced: PathList,
    /// Where access lines go; `None` writes them as `tracing` events.
    pub access_log: Option<AccessLog>,
    /// Where counted requests are recorded.
    pub backend: Arc<dyn MetricsBackend>,
    /// The longest a span attribute value taken from the request may be, in characters
    /// (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`): what bounds the bytes a queued span holds.
    pub value_limit: usize,
    /// How a request dropped unanswered is recorded: its client went away, or shutdown cut it.
    pub unanswered: Arc<Unanswered>,
}

/// How server spans are made when nothing exports them.
pub struct IdsOnly {
    /// The configured sampler, which decides whether the ids are marked sampled.
    pub sampler: Sampler,
    /// Draws new trace and span ids.
    pub ids: RandomIdGenerator,
}

impl Instrumentation {
    /// Whether server spans record attributes (anything but their ids), or access records are
    /// made: only then is the client's address read.
    pub fn records_attributes(&self) -> bool {
        self.ids_only.is_none() || self.access_records()
    }

    /// Whether traced requests get an access record (`OTEL_LOGS_EXPORTER`).
    pub fn access_records(&self) -> bool {
        self.access_log.as_ref().is_some_and(AccessLog::records)
    }
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

/// One route as the request layer sees it, worked out when the router is built.
pub struct RouteTelemetry {
    shared: Arc<Instrumentation>,
    /// `http.route` of the spans: the template, or none for paths that matched no route.
    template: Option<&'static str>,
    /// `http_route` of the metrics: the template, or `unmatched`.
    label: &'static str,
    /// The span name for each method of [`METHODS`]: `GET /do_task`, or the method alone
    /// without a template (`HTTP` for a method outside the standard set, as the conventions say).
    names: [&'static str; METHODS.len()],
    /// The route's recorder when it is counted by the original's rule; none when it is not.
    metrics: Option<Arc<dyn RouteMetrics>>,
}

/// The request layer of the route `template` (none for the fallback, whose metrics are labelled
/// `label`), counted or not. Made by tower's `layer_fn`, as the app's other layer: each is a
/// service type and its future, nothing more.
pub fn layer<S>(
    shared: &Arc<Instrumentation>,
    template: Option<&'static str>,
    label: &'static str,
    counted: bool,
) -> impl Layer<S, Service = RequestService<S>> + Clone + use<S> {
    let names = std::array::from_fn(|i| {
        let method = if METHODS[i] == OTHER_METHOD {
            "HTTP"
        } else {
            METHODS[i]
        };
        match template {
            Some(template) => leak(format!("{method} {template}")),
            None => method,
        }
    });
    let route = Arc::new(RouteTelemetry {
        shared: shared.clone(),
        template,
        label,
        names,
        metrics: counted.then(|| shared.backend.clone().route(label)),
    });
    layer_fn(move |inner| RequestService {
        inner,
        route: route.clone(),
    })
}

/// The request layer's service: the route's telemetry around the inner service.
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    route: Arc<RouteTelemetry>,
}

/// A span name made once for the life of the process: the routes are fixed, and each name is
/// kept once however many routers are built (tests build many).
fn leak(name: String) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.iter().find(|known| **known == name) {
        return known;
    }
    let name: &'static str = Box::leak(name.into_boxed_str());
    names.push(name);
    name
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = Instant::now();
        let route = &self.route;
        let method = method_index(request.method());
        let target = request.uri().path_and_query().cloned();
        let path = target.as_ref().map_or("/", PathAndQuery::path);
        let context = (!route.shared.untraced.matches(path))
            .then(|| route.server_span(&request, method, start));
        // Only a traced request gets a record: what it needs is read now, from the request.
        let requester = (context.is_some() && route.shared.access_records())
            .then(|| requester(&request, route.shared.value_limit));
        let _attached = context.clone().map(Context::attach);
        // A handler that panics is answered with the 500 page, and counted as one: caught here,
        // where the request is counted, rather than by a layer of its own, which would box the
        // body of every answer.
        let inner = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => Inner::Running { future },
            Err(panic) => Inner::Panicked { panic: Some(panic) },
        };
        RequestFuture {
            inner,
            served: Served {
                route: route.clone(),
                context,
                method,
                target,
                requester,
                start,
                done: false,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, run with the request's context attached; ends the span,
    /// counts the request and writes the access line when it completes (or, if the client goes
    /// away first, when it is dropped).
    pub struct RequestFuture<F> {
        #[pin]
        inner: Inner<F>,
        served: Served,
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, or the panic that its call raised.
    #[project = InnerProjection]
    enum Inner<F> {
        Running { #[pin] future: F },
        Panicked { panic: Option<Box<dyn Any + Send>> },
    }
}

impl<F, E> Future for RequestFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _attached = this.served.context.clone().map(Context::attach);
        let result = match this.inner.project() {
            InnerProjection::Running { future } => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => result,
                    Err(panic) => Ok(panic_response(panic)),
                }
            }
            InnerProjection::Panicked { panic } => Ok(panic_response(
                panic.take().unwrap_or_else(|| Box::new("polled again")),
            )),
        };
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            // axum's services are infallible; a failure here would be a 500.
            Err(_) => 500,
        };
        this.served.finish(status, ErrorType::of(status, false));
        Poll::Ready(result)
    }
}

/// A request on its way: ends its span, counts it and writes its access line exactly once.
struct Served {
    route: Arc<RouteTelemetry>,
    context: Option<Context>,
    method: usize,
    target: Option<PathAndQuery>,
    requester: Option<Requester>,
    start: Instant,
    done: bool,
}

impl Served {
    fn finish(&mut self, status: u16, error_type: Option<ErrorType>) {
        self.done = true;
        let end = Instant::now();
        let duration = end.saturating_duration_since(self.start);
        let at = clock::wall(end);
        let route = &*self.route;
        let span = self.context.as_ref().map(|context| context.span());
        let span_context = span.as_ref().map(|span| span.span_context().clone());
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
        let method = METHODS[self.method];
        if let Some(metrics) = &route.metrics {
            metrics.record(&RequestRecord {
                method,
                route: route.label,
                status,
                error_type,
                duration,
                trace: span_context
                    .as_ref()
                    .filter(|c| c.is_sampled())
                    .map(|c| TraceRef {
                        trace_id: c.trace_id(),
                        span_id: c.span_id(),
                    }),
                at,
            });
        }
        let path = self.target.as_ref().map_or("/", PathAndQuery::path);
        match &route.shared.access_log {
            Some(log) => log.write(&Access {
                method,
                path,
                route: route.template,
                status,
                duration,
                span: span_context.as_ref(),
                at,
                requester: self.requester.as_ref(),
            }),
            None => {
                let millis = duration.as_secs_f64() * 1e3;
                // Inside the request's context, so the line carries the span's ids.
                let _attached = self.context.clone().map(Context::attach);
                tracing::info!(target: "access", "{method} {path} {status} {millis:.3}ms");
            }
        }
        if let Some(span) = span {
            span.end_with_timestamp(at);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !self.done {
            let (status, error_type) = self.route.shared.unanswered.outcome();
            self.finish(status, Some(error_type));
        }
    }
}

impl RouteTelemetry {
    /// Starts the server span, named `METHOD route` with the attributes of OpenTelemetry's HTTP
    /// server span conventions and no others, continuing the caller's trace when its headers
    /// carry one.
    fn server_span(&self, request: &Request, method: usize, start: Instant) -> Context {
        let shared = &*self.shared;
        let headers = request.headers();
        let carried = headers
            .keys()
            .any(|name| shared.propagation_headers.contains(name));
        let parent = match carried {
            true => shared.propagator.extract(&HeaderExtractor(headers)),
            false => Context::current(),
        };
        if let Some(ids_only) = &shared.ids_only {
            // A span context alone: a span that records nothing, with ids (not remote: it is ours).
            return parent.with_remote_span_context(ids_only.span_context(&parent));
        }
        let span = shared
            .tracer
            .span_builder(self.names[method])
            .with_kind(SpanKind::Server)
            .with_start_time(clock::wall(start))
            .with_attributes(self.attributes(request, method))
            .start_with_context(&shared.tracer, &parent);
        parent.with_span(span)
    }

    /// The attributes of the HTTP server span conventions known when the request arrives. Values
    /// taken from the request are cut at the attribute value length limit.
    fn attributes(&self, request: &Request, method: usize) -> Vec<KeyValue> {
        let limit = self.shared.value_limit;
        let mut attributes = Vec::with_capacity(16);
        attributes.push(KeyValue::new("http.request.method", METHODS[method]));
        if METHODS[method] == OTHER_METHOD {
            attributes.push(KeyValue::new(
                "http.request.method_original",
                truncated(request.method().as_str(), limit),
            ));
        }
        if let Some(template) = self.template {
            attributes.push(KeyValue::new("http.route", template));
        }
        attributes.push(KeyValue::new(
            "url.path",
            truncated(request.uri().path(), limit),
        ));
        if let Some(query) = request.uri().query() {
            attributes.push(KeyValue::new("url.query", truncated(query, limit)));
        }
        attributes.push(KeyValue::new("url.scheme", URL_SCHEME));
        if let Some((host, port)) = server_address(request) {
            attributes.push(KeyValue::new("server.address", truncated(&host, limit)));
            if let Some(port) = port {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            let ip = address_of(peer.ip());
            attributes.push(KeyValue::new("client.address", ip.clone()));
            attributes.push(KeyValue::new("network.peer.address", ip));
            attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
        }
        if let Some(agent) = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new(
                "user_agent.original",
                truncated(agent, limit),
            ));
        }
        attributes.push(KeyValue::new(
            "network.protocol.version",
            protocol_version(request.version()).unwrap_or("1.1"),
        ));
        attributes
    }
}

/// What a request's access record needs from the request itself: the client's address and the
/// user agent, cut at `limit` characters as the span's is.
fn requester(request: &Request, limit: usize) -> Requester {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| address_of(peer.ip()));
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|agent| agent_of(agent, limit));
    Requester {
        address,
        user_agent,
    }
}

/// A user agent as an attribute value, made once per agent and thread, as [`address_of`] does:
/// a client sends the same one with every request.
fn agent_of(agent: &str, limit: usize) -> StringValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(Box<str>, StringValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((known, value)) if **known == *agent => value.clone(),
        _ => {
            let value = StringValue::from(Arc::<str>::from(truncated(agent, limit)));
            *last = Some((agent.into(), value.clone()));
            value
        }
    })
}

/// `value` cut to at most `limit` characters, as the OpenTelemetry specification counts them.
fn truncated(value: &str, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

/// A client address as an attribute value, made once per address and thread: a client sends
/// many requests, and formatting an address costs more than the rest of its attributes.
fn address_of(ip: IpAddr) -> StringValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, StringValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((known, value)) if *known == ip => value.clone(),
        _ => {
            let value = StringValue::from(Arc::<str>::from(ip.to_string()));
            *last = Some((ip, value.clone()));
            value
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_the_limit_in_characters() {
        assert_eq!(truncated("abcdef", 4), "abcd");
        assert_eq!(truncated("abc", 4), "abc");
        assert_eq!(truncated("éééé", 2), "éé");
        assert_eq!(truncated("", 0), "");
    }

    #[test]
    fn span_names_are_made_once_per_route_and_method() {
        let first = leak("GET /leak-test".to_string());
        let again = leak("GET /leak-test".to_string());

        assert!(std::ptr::eq(first, again));
    }
}
