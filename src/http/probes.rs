//! Liveness and readiness probes; never counted.

use std::sync::atomic::Ordering;

use axum::{extract::State, http::StatusCode};

use super::state::AppState;

/// `GET /healthz`: the process is alive and serving.
pub async fn get_healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 while accepting traffic, 503 once shutdown has begun.
pub async fn get_readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    }
}
