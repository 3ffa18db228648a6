//! Benchmark baseline: the app's own routes and handlers with instrumentation off (no server span,
//! no access line, no metrics recorded), a Prometheus backend, and the default configuration.
//!
//! `LISTEN_ADDR=127.0.0.1:5102 cargo run --release --example uninstrumented`
//!
//! With `SYNTHETIC_SERIES=N`, the backend is first filled with about N series of the labelled
//! histogram (`http_server_request_duration_seconds`), so that `/metrics` can be timed at a
//! cardinality the app's bounded labels never reach through HTTP.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use prom_metrics_app::{
    config::Config,
    conventions::ErrorType,
    http::{self, AppState},
    metrics::{MetricsBackend, RequestRecord, prometheus::PrometheusBackend},
    server,
};

/// Statuses of the synthetic series; each route gets all of them.
const STATUSES: [u16; 10] = [200, 201, 204, 301, 304, 400, 404, 429, 500, 503];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:5102".to_string())
        .parse()
        .context("LISTEN_ADDR must be IP:PORT")?;
    let series: usize = match std::env::var("SYNTHETIC_SERIES") {
        Ok(n) => n
            .parse()
            .context("SYNTHETIC_SERIES must be a whole number")?,
        Err(_) => 0,
    };

    let backend = PrometheusBackend::new();
    fill(&backend, series);
    let state = AppState::new(Arc::new(backend), &Config::defaults());
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(http::uninstrumented(state)),
    )
    .with_graceful_shutdown(async {
        server::shutdown_signal().await;
    })
    .await?;
    Ok(())
}

/// Records one request into each of `series` (rounded up to a multiple of the statuses) distinct
/// (route, status) series. Routes are leaked, as the app's own are `'static`: once, at start.
fn fill(backend: &PrometheusBackend, series: usize) {
    for i in 0..series.div_ceil(STATUSES.len()) {
        let route: &'static str = Box::leak(format!("/synthetic/{i}").into_boxed_str());
        for status in STATUSES {
            backend.record(&RequestRecord {
                method: "GET",
                route,
                status,
                error_type: ErrorType::of(status, false),
                duration: Duration::from_millis(3),
                trace: None,
                at: std::time::SystemTime::now(),
            });
        }
    }
}
