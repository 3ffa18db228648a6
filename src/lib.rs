//! prom-metrics-app: a web service with known behaviour, instrumented with Prometheus and
//! OpenTelemetry, for testing monitoring pipelines end to end.
//!
//! The modules form floors; each imports only from the floors below it, never upward:
//!
//! 1. Ground: [`config`] (the server's settings, parsed and validated once at start; it imports
//!    nothing of the app), and small shared pieces: [`conventions`] (OpenTelemetry's HTTP
//!    semantic conventions), [`accept`] (media ranges of an `Accept` header), [`errors`] (error
//!    chains as text), [`clock`] (wall time from one monotonic reading), [`dates`] (RFC 3339
//!    timestamps), [`tls`] (root certificates for outgoing TLS).
//! 2. [`chaos`]: fault injection settings (error rate and status, latency), changeable at runtime;
//!    [`synthetic`]: the synthetic series (families, churn) and their ground truth.
//! 3. [`telemetry`]: tracer and meter providers, exporters, propagation and logging; flushed at
//!    shutdown.
//! 4. [`metrics`]: the [`metrics::MetricsBackend`] trait and its Prometheus and OpenTelemetry
//!    backends.
//! 5. [`http`]: the route table, the request layer (span, counting, access line), pages, probes,
//!    `/metrics`, `/chain` (which calls other instances in one trace), and the chaos controls.
//! 6. The commands: [`server`] (binds, serves within the connection limits, with a reserve beyond
//!    them for the probes and `/metrics`, and shuts down gracefully, cutting what the grace period
//!    leaves), [`healthcheck`] (a probe of `/healthz` for images without a shell), [`load`] (an
//!    open-loop load generator).
//! 7. [`cli`]: the command line, which names the commands.
//!
//! The binary (`src/main.rs`) only wires these together; the tests use the same pieces.

pub mod accept;
pub mod chaos;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conventions;
pub mod dates;
pub mod errors;
pub mod healthcheck;
pub mod http;
pub mod load;
pub mod metrics;
pub mod server;
pub mod synthetic;
pub mod telemetry;
pub mod tls;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision of this build (see `build.rs`).
pub const REVISION: &str = env!("PROM_METRICS_APP_REVISION");
