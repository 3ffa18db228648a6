//! HTTP: the route table, the middleware order and the handlers ([`chain`] also makes the app's
//! only outgoing calls).
//!
//! Request flow, outermost first: routing (so the route template is known) -> security headers
//! ([`headers`], on every response, added after the others have seen it) -> `trace` (server
//! span, access log) -> `catch panic` -> `count` (metrics, counted routes only) -> `catch panic`
//! -> `body limit` (413, counted routes only, so it is counted) -> `chaos` (injected latency and
//! failures, counted routes only, so they are counted like real ones) -> handler. The routes that
//! [`auth`] protects check credentials before their handler. The route table is written down
//! once ([`counted_routes`] and the uncounted routes beside it), and this order once, in [`router`]. [`uninstrumented`] serves the same routes
//! without the two layers, as a benchmark baseline.

pub mod about;
pub mod auth;
pub mod chain;
pub mod chaos;
mod error;
pub mod headers;
mod limits;
mod middleware;
mod pages;
mod probes;
mod scrape;
mod trace;
mod unanswered;
pub mod view_metrics;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    routing::{MethodRouter, any, get},
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{RandomIdGenerator, SdkTracer, SdkTracerProvider};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::AppError;
pub use trace::Tracing;
pub use unanswered::Unanswered;

use crate::{
    chaos::Chaos,
    config::{Config, Exporter},
    metrics::{MetricsBackend, UNMATCHED_ROUTE},
    telemetry::AccessLog,
};

/// Shared state of every handler and middleware; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Where counted requests are recorded.
    pub backend: Arc<dyn MetricsBackend>,
    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub ready: Arc<AtomicBool>,
    /// How a request dropped unanswered is recorded: as its client going away, or as cut at the
    /// end of the shutdown grace period.
    pub unanswered: Arc<Unanswered>,
    /// The tracer, the propagators and the untraced paths.
    pub tracing: Arc<Tracing>,
    /// Shown on the home page.
    pub exporter: &'static str,
    /// The home page, rendered once.
    pub home: axum::body::Bytes,
    /// The running configuration, without secrets, as the pages show it.
    pub about: Arc<about::About>,
    /// This instance's id and downstreams, for `/chain`.
    pub chain: Arc<chain::Chain>,
    /// The fault injection settings in force.
    pub chaos: Arc<Chaos>,
    /// The credentials of the protected routes; `None`: nothing is protected.
    pub auth: Option<Arc<auth::Auth>>,
    /// The largest request body accepted (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
}

impl AppState {
    /// State for a fresh, ready application recording into `backend`, with the propagation
    /// formats and untraced paths of `config`. Its spans are made, sampled and recorded as
    /// exemplars, but exported nowhere: [`AppState::traced`] takes the tracer that exports them.
    pub fn new(backend: Arc<dyn MetricsBackend>, config: &Config) -> Self {
        let tracer = SdkTracerProvider::builder()
            .build()
            .tracer(crate::telemetry::SCOPE);
        Self::traced(backend, config, tracer, None)
    }

    /// Like [`AppState::new`], with spans made by `tracer` and access lines written to
    /// `access_log` (as `tracing` events without one).
    pub fn traced(
        backend: Arc<dyn MetricsBackend>,
        config: &Config,
        tracer: SdkTracer,
        access_log: Option<AccessLog>,
    ) -> Self {
        let exporter = match config.otel_exporter {
            Exporter::Console => "console",
            Exporter::Otlp => "otlp",
            Exporter::None => "none",
        };
        // The backends export the settings in force as gauges.
        let chaos = Arc::new(Chaos::new(
            config
                .chaos_settings()
                .expect("Config validated the chaos settings"),
            config.chaos_seed,
            {
                let backend = backend.clone();
                Box::new(move |settings| backend.set_chaos(settings))
            },
        ));
        let about = Arc::new(about::About::of(config));
        let unanswered = Arc::new(Unanswered::default());
        Self {
            home: pages::home_page(&about),
            about,
            backend,
            ready: Arc::new(AtomicBool::new(true)),
            unanswered: unanswered.clone(),
            tracing: Arc::new(Tracing {
                tracer,
                propagator: crate::telemetry::propagator(config),
                ids_only: (config.otel_exporter == Exporter::None).then(|| trace::IdsOnly {
                    sampler: crate::telemetry::sampler(config),
                    ids: RandomIdGenerator::default(),
                }),
                untraced: config.traces_excluded_paths.clone(),
                access_log,
                unanswered,
            }),
            exporter,
            chain: Arc::new(chain::Chain::new(config)),
            chaos,
            auth: auth::Auth::from_settings(&config.auth),
            max_body_bytes: config.limits.max_body_bytes,
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
        ("/chain", get(chain::get_chain)),
        ("/status/{code}", any(chaos::any_status)),
    ]
}

/// The routes that count nothing, as in the original: looking at metrics and probing must not
/// change them.
fn uncounted_routes() -> Vec<Route> {
    vec![
        (
            "/view_metrics",
            get(view_metrics::get_view_metrics).post(view_metrics::get_view_metrics),
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
        .layer(headers::layer())
        .with_state(state)
}

/// Builds the application from `counted` routes. Each counted route gets the counting middleware
/// with its template baked in, so a new route is counted, and labelled, without extra code.
pub fn router(state: AppState, counted: Vec<Route>) -> Router {
    let count = |route: &'static str| {
        ServiceBuilder::new()
            .layer(middleware::CountLayer {
                backend: state.backend.clone(),
                route,
                unanswered: state.unanswered.clone(),
            })
            .layer(CatchPanicLayer::custom(error::panic_response))
            .layer(limits::BodyLimitLayer(state.max_body_bytes))
            .layer(chaos::ChaosLayer(state.chaos.clone()))
    };
    let mut app = Router::new();
    for (path, handlers) in counted {
        app = app.route(path, handlers.layer(count(path)));
    }
    for (path, handlers) in uncounted_routes() {
        let handlers = match &state.auth {
            Some(auth) if auth.protects(path) => handlers.layer(
                axum::middleware::from_fn_with_state(auth.clone(), auth::require_credentials),
            ),
            _ => handlers,
        };
        app = app.route(path, handlers);
    }
    app
        // Unknown paths share one label value, so random URLs cannot create series.
        .fallback(pages::not_found.layer(count(UNMATCHED_ROUTE)))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(headers::layer())
                .layer(trace::TraceLayer(state.tracing.clone()))
                .layer(CatchPanicLayer::custom(error::panic_response)),
        )
        .with_state(state)
}
