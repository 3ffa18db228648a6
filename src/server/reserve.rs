//! The reserve: `RESERVED_CONNECTIONS` connections accepted beyond `MAX_CONNECTIONS`, so that at
//! the limit Kubernetes' probes and Prometheus' scrape still get an answer, and the pod is neither
//! restarted nor marked down for being busy.
//!
//! A connection accepted into the reserve serves one request. `/healthz`, `/readyz` and `/metrics`
//! go through the app as usual (authentication included); any other request gets `503` from the
//! server itself, like hyper's own 431: no span, no access line, not in the app's counters, but
//! counted in [`RefusedRequests`], so that nothing is refused silently.
//!
//! A few places would do for the probes alone. The default (128) is sized for a load test that
//! reconnects as fast as it is refused: a probe then waits its turn in the kernel's accept queue
//! behind the refused connections, and more places drain that queue faster (see
//! `docs/reliability.md`).

use std::{
    convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration,
};

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use tower::ServiceExt as _;

use super::{Limits, app_request};
use crate::metrics::RefusedRequests;

/// How long a reserve connection may take to send its request head (or `HEADER_READ_TIMEOUT`, if
/// shorter): short, so that an idle client cannot hold a place of the reserve for long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The paths served from the reserve: what tells Kubernetes and Prometheus that the app is alive.
const SERVED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The body of the 503; names the setting to raise.
const REFUSAL: &str = "503 Service Unavailable: the server is at its connection limit (MAX_CONNECTIONS); retry shortly\n";

/// The HTTP/1 settings of a reserve connection: one request, a short time to send its head.
pub fn builder(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(limits.header_read_timeout.min(HEADER_READ_TIMEOUT))
        .max_buf_size(limits.max_header_bytes);
    http
}

/// Serves the request of one reserve connection.
pub struct ReserveService {
    pub app: crate::http::App,
    pub peer: Option<SocketAddr>,
    pub refused: Arc<RefusedRequests>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ReserveService {
    type Response = Response;
    type Error = Infallible;
    // Boxed: reserve connections are rare, and either answer is then one type.
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        if SERVED.contains(&request.uri().path()) {
            return Box::pin(self.app.clone().oneshot(app_request(request, self.peer)));
        }
        self.refused.add();
        Box::pin(std::future::ready(Ok(refusal())))
    }
}

/// `503` with `Retry-After: 1`; the connection closes after it.
fn refusal() -> Response {
    let mut response = Response::new(Body::from(REFUSAL));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
