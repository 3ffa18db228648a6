//! HTTP: the route table, the middleware order and the handlers.
//!
//! Request flow, outermost first:
//! `trace` (server span, access log) -> `count` (metrics, counted routes only) -> `catch panic` ->
//! handler. The route table is written down once ([`counted_routes`] and the uncounted routes
//! beside it), and this order once, in [`router`]. [`uninstrumented`] serves the same routes
//! without the two middlewares, as a benchmark baseline.

mod error;
mod middleware;
mod pages;
mod probes;
mod scrape;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, handler::Handler, routing::MethodRouter, routing::get};
use opentelemetry::propagation::TextMapCompositePropagator;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::AppError;

use crate::{
    config::{Config, Exporter, PathList},
    metrics::{MetricsBackend, UNMATCHED_ROUTE},
};

/// Shared state of every handler and middleware; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Where counted requests are recorded.
    pub backend: Arc<dyn MetricsBackend>,
    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub ready: Arc<AtomicBool>,
    /// Extracts the caller's trace context from request headers.
    pub propagator: Arc<TextMapCompositePropagator>,
    /// Shown on the home page.
    pub exporter: &'static str,
    /// Paths that get no server span (`TRACES_EXCLUDED_PATHS`).
    pub untraced: Arc<PathList>,
}

impl AppState {
    /// State for a fresh, ready application recording into `backend`, with the propagation
    /// formats of `config`.
    pub fn new(backend: Arc<dyn MetricsBackend>, config: &Config) -> Self {
        Self {
            backend,
            ready: Arc::new(AtomicBool::new(true)),
            propagator: Arc::new(crate::telemetry::propagator(config)),
            exporter: match config.otel_exporter {
                Exporter::Console => "console",
                Exporter::Otlp => "otlp",
                Exporter::None => "none",
            },
            untraced: Arc::new(config.traces_excluded_paths.clone()),
        }
    }

    /// Marks the service not ready; `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }
}

/// One application route: its template and its handlers.
pub type Route = (&'static str, MethodRouter<AppState>);

/// The application's routes, counted by the original's rule.
pub fn counted_routes() -> Vec<Route> {
    vec![
        ("/", get(pages::get_home).post(pages::get_home)),
        ("/index", get(pages::get_home).post(pages::get_home)),
        ("/do_task", get(pages::do_task).post(pages::do_task)),
    ]
}

/// The routes that count nothing, as in the original: looking at metrics and probing must not
/// change them.
fn uncounted_routes() -> Vec<Route> {
    vec![
        (
            "/view_metrics",
            get(pages::view_metrics).post(pages::view_metrics),
        ),
        ("/metrics", get(scrape::get_metrics)),
        ("/healthz", get(probes::get_healthz)),
        ("/readyz", get(probes::get_readyz)),
        ("/static/style.css", get(pages::get_stylesheet)),
        ("/static/favicon.svg", get(pages::get_favicon)),
        ("/favicon.ico", get(pages::get_favicon)),
    ]
}

/// The full application with the standard routes.
pub fn app(state: AppState) -> Router {
    router(state, counted_routes())
}

/// The standard routes and handlers without the tracing and counting middlewares: no span, no
/// access line, no metrics. A baseline for `bench/run.sh`, to measure what instrumentation costs.
pub fn uninstrumented(state: AppState) -> Router {
    counted_routes()
        .into_iter()
        .chain(uncounted_routes())
        .fold(Router::new(), |app, (path, handlers)| {
            app.route(path, handlers)
        })
        .fallback(pages::not_found)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
}

/// Builds the application from `counted` routes. Each counted route gets the counting middleware
/// with its template baked in, so a new route is counted, and labelled, without extra code.
pub fn router(state: AppState, counted: Vec<Route>) -> Router {
    let count = |route: &'static str| {
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                middleware::Counted {
                    backend: state.backend.clone(),
                    route,
                },
                middleware::count_requests,
            ))
            .layer(CatchPanicLayer::custom(error::panic_response))
    };
    let mut app = Router::new();
    for (path, handlers) in counted {
        app = app.route(path, handlers.layer(count(path)));
    }
    for (path, handlers) in uncounted_routes() {
        app = app.route(path, handlers);
    }
    app
        // Unknown paths share one label value, so random URLs cannot create series.
        .fallback(pages::not_found.layer(count(UNMATCHED_ROUTE)))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::trace_requests,
                ))
                .layer(CatchPanicLayer::custom(error::panic_response)),
        )
        .with_state(state)
}
