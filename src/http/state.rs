//! The state every handler and layer shares, made once at start from the configuration.

use std::{
    ops::Deref,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::body::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{RandomIdGenerator, SdkTracer, SdkTracerProvider};

use super::{
    about::About,
    auth::Auth,
    chain::instance::Chain,
    request::{IdsOnly, Instrumentation},
    unanswered::Unanswered,
};
use crate::{
    chaos::{Chaos, ChaosSettings},
    config::{Config, Exporter},
    metrics::MetricsBackend,
    synthetic::{self, Synthetic},
    telemetry::AccessLog,
};

/// Shared state of every handler and middleware: one `Arc`, so cloning it for a handler costs
/// one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
pub struct Shared {
    /// Where counted requests are recorded.
    pub backend: Arc<dyn MetricsBackend>,
    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub ready: AtomicBool,
    /// How a request dropped unanswered is recorded: as its client going away, or as cut at the
    /// end of the shutdown grace period.
    pub unanswered: Arc<Unanswered>,
    /// The tracer, the propagators, the untraced paths, the access log and the backend, as the
    /// request layer uses them.
    pub tracing: Arc<Instrumentation>,
    /// Shown on the home page.
    pub exporter: &'static str,
    /// The home page, rendered on its first request (what it shows is fixed at start).
    pub home: OnceLock<Bytes>,
    /// The running configuration, without secrets, as the pages show it.
    pub about: About,
    /// This instance's id and downstreams, for `/chain`.
    pub chain: Chain,
    /// The fault injection settings in force.
    pub chaos: Arc<Chaos>,
    /// The synthetic series and their settings in force.
    pub synthetic: Arc<Synthetic>,
    /// The credentials of the protected routes; `None`: nothing is protected.
    pub auth: Option<Arc<Auth>>,
    /// The largest request body accepted (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
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
        let exporter = match config.traces_exporter() {
            Exporter::Console => "console",
            Exporter::Otlp => "otlp",
            Exporter::None => "none",
        };
        // The backends export the settings in force as gauges.
        let chaos = Arc::new(Chaos::new(
            ChaosSettings::from_config(config).expect("Config validated the chaos settings"),
            config.chaos_seed,
            {
                let backend = backend.clone();
                Box::new(move |settings| backend.set_chaos(settings))
            },
        ));
        let synthetic = Arc::new(Synthetic::new(synthetic::Settings::from_config(config)));
        backend.attach_synthetic(synthetic.clone());
        let about = About::of(config);
        let unanswered = Arc::new(Unanswered::default());
        Self(Arc::new(Shared {
            home: OnceLock::new(),
            about,
            unanswered: unanswered.clone(),
            tracing: Arc::new(Instrumentation {
                tracer,
                propagation_headers: crate::telemetry::propagation_headers(config),
                propagator: crate::telemetry::propagator(config),
                ids_only: (config.traces_exporter() == Exporter::None).then(|| IdsOnly {
                    sampler: crate::telemetry::sampler(config),
                    ids: RandomIdGenerator::default(),
                }),
                untraced: config.traces_excluded_paths.clone(),
                access_log,
                backend: backend.clone(),
                value_limit: config.otel_attribute_value_length_limit,
                unanswered,
            }),
            backend,
            ready: AtomicBool::new(true),
            exporter,
            chain: Chain::new(config),
            chaos,
            synthetic,
            auth: Auth::from_settings(&config.auth),
            max_body_bytes: config.limits.max_body_bytes,
        }))
    }

    /// Marks the service not ready; `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }
}
