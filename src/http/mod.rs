//! HTTP: the route table, the middleware order and the handlers.
//!
//! Request flow, outermost first:
//! `trace` (server span, access log) -> `count` (metrics, counted routes only) -> `catch panic` ->
//! handler. The route table and this order are written down once, in [`router`].

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

/// The full application with the standard routes.
pub fn app(state: AppState) -> Router {
    router(state, counted_routes())
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
    app
        // Unknown paths share one label value, so random URLs cannot create series.
        .fallback(pages::not_found.layer(count(UNMATCHED_ROUTE)))
        // Not counted, as in the original: looking at metrics and probing must not change them.
        .route(
            "/view_metrics",
            get(pages::view_metrics).post(pages::view_metrics),
        )
        .route("/metrics", get(scrape::get_metrics))
        .route("/healthz", get(probes::get_healthz))
        .route("/readyz", get(probes::get_readyz))
        .route("/static/style.css", get(pages::get_stylesheet))
        .route("/static/favicon.svg", get(pages::get_favicon))
        .route("/favicon.ico", get(pages::get_favicon))
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
