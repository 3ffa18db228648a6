//! prom-metrics-app: a web service with known behaviour, instrumented with Prometheus and
//! OpenTelemetry, for testing monitoring pipelines end to end.
//!
//! - [`config`]: flags and environment variables, parsed and validated once at start.
//! - [`accept`]: the media ranges of an `Accept` header, for the routes that negotiate.
//! - [`dates`]: RFC 3339 timestamps, for log lines and JSON documents.
//! - [`chaos`]: fault injection settings (error rate and status, latency), changeable at runtime.
//! - [`telemetry`]: tracer and meter providers, exporters, propagation and logging; flushed at shutdown.
//! - [`metrics`]: the [`metrics::MetricsBackend`] trait and its Prometheus and OpenTelemetry backends.
//! - [`http`]: the route table, the tracing and counting middlewares, pages, probes, `/metrics`,
//!   `/chain`, which calls other instances in one trace, and the chaos layer and controls.
//! - [`server`]: binds, serves, and shuts down gracefully when told to.
//! - [`tls`]: root certificates for outgoing TLS, embedded for images without CA files.
//! - [`healthcheck`]: the `healthcheck` command, a probe of `/healthz` for images without a shell.
//! - [`load`]: the `load` command, an open-loop load generator with a weighted mix of paths.
//!
//! The binary (`src/main.rs`) only wires these together; the tests use the same pieces.

pub mod accept;
pub mod chaos;
pub mod config;
pub mod dates;
pub mod healthcheck;
pub mod http;
pub mod load;
pub mod metrics;
pub mod server;
pub mod telemetry;
pub mod tls;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision of this build (see `build.rs`).
pub const REVISION: &str = env!("PROM_METRICS_APP_REVISION");
