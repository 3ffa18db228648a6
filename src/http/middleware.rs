//! The counting layer: records each counted request into the metrics backend, exactly once.
//!
//! A hand-written tower layer with its own future, put on each counted route with the route
//! template baked in: no lookup, no allocation and no boxing per request.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use axum::{extract::Request, response::Response};
use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};

use crate::metrics::{ErrorType, MetricsBackend, RequestRecord, TraceRef, method_label};

use super::unanswered::Unanswered;

/// Status recorded for a request whose client went away before the answer (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Counts the requests of one route.
#[derive(Clone)]
pub struct CountLayer {
    pub backend: Arc<dyn MetricsBackend>,
    /// The route template, fixed when the route table is built.
    pub route: &'static str,
    /// How a request dropped unanswered is recorded.
    pub unanswered: Arc<Unanswered>,
}

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`CountLayer`].
#[derive(Clone)]
pub struct CountService<S> {
    inner: S,
    layer: CountLayer,
}

impl<S, B> Service<Request> for CountService<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let pending = Pending {
            backend: self.layer.backend.clone(),
            unanswered: self.layer.unanswered.clone(),
            route: self.layer.route,
            method: method_label(request.method()),
            start: Instant::now(),
            recorded: false,
        };
        CountedFuture {
            inner: self.inner.call(request),
            pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// Times the request and records its outcome once the handler answered.
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        pending: Pending,
    }
}

impl<F, B, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            Err(_) => 500,
        };
        this.pending.record(status, ErrorType::of(status, false));
        Poll::Ready(result)
    }
}

/// A request on its way through the handler; records itself as [`CLIENT_CLOSED_REQUEST`] if
/// dropped unanswered, because its client went away (or as cut, once shutdown cuts requests).
struct Pending {
    backend: Arc<dyn MetricsBackend>,
    unanswered: Arc<Unanswered>,
    route: &'static str,
    method: &'static str,
    start: Instant,
    recorded: bool,
}

impl Pending {
    fn record(&mut self, status: u16, error_type: Option<ErrorType>) {
        self.recorded = true;
        self.backend.record(&RequestRecord {
            method: self.method,
            route: self.route,
            status,
            error_type,
            duration: self.start.elapsed(),
            trace: current_trace(),
        });
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.recorded {
            let (status, error_type) = self.unanswered.outcome();
            self.record(status, Some(error_type));
        }
    }
}

/// The current sampled span, if any: the exemplar of this measurement. The tracing layer attaches
/// the request's context while the request runs.
fn current_trace() -> Option<TraceRef> {
    opentelemetry::Context::map_current(|context| {
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_sampled().then(|| TraceRef {
            trace_id: span_context.trace_id(),
            span_id: span_context.span_id(),
        })
    })
}
