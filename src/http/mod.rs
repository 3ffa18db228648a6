//! HTTP: the route table, the middleware order and the handlers ([`chain`] also makes the app's
//! only outgoing calls).
//!
//! Request flow, outermost first: routing (so the route is known) -> security headers
//! ([`headers`], on every response, added after the others have seen it) -> then, on each route,
//! the request layer ([`request`]: server span, counting on counted routes, access line, with the
//! route's names worked out when the router is built) -> `catch panic` -> on counted routes only,
//! `body limit` (413, counted) and `chaos` (injected latency and failures, counted like real ones)
//! -> handler. The routes that [`auth`] protects check credentials before their handler. The route
//! table is written down once ([`counted_routes`] and the uncounted routes beside it), and this
//! order once, in [`router`]. [`uninstrumented`] serves the same routes without the request layer,
//! as a benchmark baseline.

pub mod about;
pub mod auth;
pub mod chain;
pub mod chaos;
mod error;
pub mod headers;
mod metrics_json;
mod metrics_page;
pub mod metrics_view;
mod nav;
mod pages;
pub mod panic;
mod probes;
pub mod request;
mod scrape;
mod state;
mod status;
pub mod synthetic;
mod unanswered;

use std::ops::RangeInclusive;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{MethodRouter, any, get},
};
use tower::ServiceBuilder;
use tower_http::{
    CompressionLevel, compression::CompressionLayer, limit::RequestBodyLimitLayer,
    map_request_body::MapRequestBodyLayer, map_response_body::MapResponseBodyLayer,
};

pub use error::AppError;
pub use pages::home;
pub use request::Instrumentation;
pub use state::{AppState, Shared};
pub use unanswered::Unanswered;

use crate::conventions::{METHODS, UNMATCHED_ROUTE};

/// One application route: its template and its handlers.
pub type Route = (&'static str, MethodRouter<AppState>);

/// The application's routes, counted by the original's rule.
pub fn counted_routes() -> Vec<Route> {
    vec![
        ("/", get(pages::get_home).post(pages::get_home)),
        ("/index", get(pages::get_home).post(pages::get_home)),
        ("/do_task", get(pages::do_task).post(pages::do_task)),
        ("/chain", get(chain::get_chain)),
        ("/status/{code}", any(status::any_status)),
    ]
}

/// Every status a counted request can be recorded with: `/status/{code}` answers 200 to 599 to
/// any method, the chaos layer fails any counted route (`unmatched` included) and method with 400
/// to 599 (`CHAOS_ERROR_STATUS`), and the other answers (400, 404, 405, 413, 500, 502, 508) and
/// the 499 of a client gone fall inside. A 1xx cannot end an exchange.
pub const RECORDED_STATUSES: RangeInclusive<u16> = 200..=599;

/// Outcomes recorded with a status of [`RECORDED_STATUSES`] but an `error.type` of their own,
/// hence a series each beside the status's: a request whose client went away (499,
/// `client_closed`) and one cut at shutdown (503, `shutdown`).
pub const UNANSWERED_OUTCOMES: usize = 2;

/// The most series of `http_server_request_duration_seconds` (`http.server.request.duration`)
/// that any traffic can create: each method label, on each counted route and `unmatched`, with
/// each recorded status and each unanswered outcome (`url.scheme` has one value). An upper bound:
/// it also counts pairs that no handler answers, such as `GET /` with 302. The otel backend's
/// cardinality limit comes from it, so that the SDK never folds series the Prometheus backend
/// keeps.
pub fn max_server_series() -> usize {
    let routes = counted_routes().len() + 1;
    let outcomes = RECORDED_STATUSES.len() + UNANSWERED_OUTCOMES;
    METHODS.len() * routes * outcomes
}

/// The routes that count nothing, as in the original: looking at metrics and probing must not
/// change them.
fn uncounted_routes() -> Vec<Route> {
    vec![
        (
            "/view_metrics",
            get(metrics_view::get_view_metrics).post(metrics_view::get_view_metrics),
        ),
        ("/metrics", get(scrape::get_metrics)),
        ("/healthz", get(probes::get_healthz)),
        ("/readyz", get(probes::get_readyz)),
        ("/static/style.css", get(pages::get_stylesheet)),
        (
            "/static/view_metrics.js",
            get(pages::get_view_metrics_script),
        ),
        ("/static/favicon.svg", get(pages::get_favicon)),
        ("/favicon.ico", get(pages::get_favicon)),
        // The controls are never subject to the chaos they control.
        (
            "/chaos",
            get(chaos::get_chaos_page).post(chaos::post_chaos_page),
        ),
        (
            "/api/chaos",
            get(chaos::get_chaos)
                .put(chaos::put_chaos)
                .delete(chaos::delete_chaos),
        ),
        (
            "/synthetic",
            get(synthetic::get_synthetic_page).post(synthetic::post_synthetic_page),
        ),
        (
            "/api/synthetic",
            get(synthetic::get_synthetic)
                .put(synthetic::put_synthetic)
                .delete(synthetic::delete_synthetic),
        ),
        ("/panic", axum::routing::post(panic::post_panic)),
    ]
}

/// The application as the server serves it: the router behind the security headers.
pub type App = headers::WithHeaders<Router>;

/// The full application with the standard routes.
pub fn app(state: AppState) -> App {
    router(state, counted_routes())
}

/// The standard routes and handlers without the tracing and counting middlewares: no span, no
/// access line, no metrics. A baseline for `bench/run.sh`, to measure what instrumentation costs.
pub fn uninstrumented(state: AppState) -> App {
    let router = counted_routes()
        .into_iter()
        .chain(uncounted_routes())
        .fold(Router::new(), |app, (path, handlers)| {
            app.route(path, handlers)
        })
        .fallback(pages::not_found)
        .with_state(state);
    headers::around(router)
}

/// Builds the application from `counted` routes. Every route gets the request layer with its
/// template baked in, so a new route is traced, counted and labelled without extra code.
pub fn router(state: AppState, counted: Vec<Route>) -> App {
    let shared = &state.tracing;
    let counted_layers = |template: Option<&'static str>, label: &'static str| {
        ServiceBuilder::new()
            .layer(request::layer(shared, template, label, true))
            // tower-http's limit: 413 for a declared length above the limit, and a body that
            // stops at the limit otherwise; then back to axum's body types on both sides.
            .layer(MapResponseBodyLayer::new(axum::body::Body::new))
            .layer(RequestBodyLimitLayer::new(state.max_body_bytes))
            .layer(MapRequestBodyLayer::new(axum::body::Body::new))
            .layer(chaos::layer(state.chaos.clone()))
    };
    let mut app = Router::new();
    for (path, handlers) in counted {
        app = app.route(path, handlers.layer(counted_layers(Some(path), path)));
    }
    for (path, handlers) in uncounted_routes() {
        // Only the chaos controls read a body: axum's extractors stop at the limit.
        let handlers = match path {
            "/chaos" | "/api/chaos" | "/synthetic" | "/api/synthetic" => {
                handlers.layer(DefaultBodyLimit::max(state.max_body_bytes))
            }
            // gzip when the scraper accepts it, as Prometheus always does: a scrape of many
            // series is a tenth of its size, compressed chunk by chunk as it streams. The fastest
            // level: the default one compresses a million series in seconds, for a few percent
            // fewer bytes (docs/benchmarks.md).
            "/metrics" => handlers.layer(
                CompressionLayer::new()
                    .gzip(true)
                    .quality(CompressionLevel::Fastest),
            ),
            _ => handlers,
        };
        let handlers = match &state.auth {
            Some(auth) if auth.protects(path) => handlers.layer(
                axum::middleware::from_fn_with_state(auth.clone(), auth::require_credentials),
            ),
            _ => handlers,
        };
        app = app.route(
            path,
            handlers.layer(request::layer(shared, Some(path), path, false)),
        );
    }
    let app = app
        // Unknown paths share one label value, so random URLs cannot create series.
        .fallback_service(
            any(pages::not_found)
                .layer(counted_layers(None, UNMATCHED_ROUTE))
                .with_state(state.clone()),
        )
        .with_state(state);
    headers::around(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_telemetry_doc_gives_the_bound_on_server_series() {
        let bound = max_server_series();

        let shown = format!("{},{:03}", bound / 1000, bound % 1000);

        let doc = include_str!("../../docs/telemetry.md");
        assert!(
            doc.contains(&format!("at most **{shown}** series")),
            "docs/telemetry.md should give {shown}"
        );
    }
}
