//! The body size limit of the counted routes: a declared `Content-Length` above `MAX_BODY_BYTES`
//! gets 413 inside the counting layer, so it is counted once, as a 4xx.
//!
//! The application handlers never read a body, so the declared length is all there is to check;
//! the handlers that do read one (the chaos controls) are bounded by axum's `DefaultBodyLimit`,
//! which also stops a chunked body at the limit.

use std::{
    future::{Future, Ready, ready},
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::{
    extract::Request,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service};

/// Answers 413 to requests that declare a body larger than the limit.
#[derive(Clone, Copy)]
pub struct BodyLimitLayer(pub usize);

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            limit: self.0,
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Clone)]
pub struct BodyLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> Service<Request> for BodyLimit<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LimitFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(length) if length > self.limit as u64 => LimitFuture::Refused {
                answer: ready(Ok(too_large(self.limit))),
            },
            _ => LimitFuture::Passed {
                inner: self.inner.call(request),
            },
        }
    }
}

/// The 413 answer, with the limit in its reason.
pub fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("413 Payload Too Large: the request body may have at most {limit} bytes (MAX_BODY_BYTES)\n"),
    )
        .into_response()
}

pin_project_lite::pin_project! {
    /// The handler's future, or the 413 answer.
    #[project = LimitFutureProjection]
    pub enum LimitFuture<F, E> {
        Passed { #[pin] inner: F },
        Refused { answer: Ready<Result<Response, E>> },
    }
}

impl<F, E> Future for LimitFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitFutureProjection::Passed { inner } => inner.poll(cx),
            LimitFutureProjection::Refused { answer } => Pin::new(answer).poll(cx),
        }
    }
}
