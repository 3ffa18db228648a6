//! Liveness and readiness probes; never counted. The chaos settings can fail either on purpose
//! (`healthy`, `ready`), as a pod's faults, while the app keeps serving everything else.

use std::sync::atomic::Ordering;

use axum::{extract::State, http::StatusCode};

use super::state::AppState;

/// `GET /healthz`: the process is alive and serving, unless the chaos settings say it is not.
pub async fn get_healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.chaos.settings().healthy {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy: the chaos settings say so (/chaos)\n",
        )
    }
}

/// `GET /readyz`: 200 while accepting traffic, 503 once shutdown has begun or while the chaos
/// settings make the app unready.
pub async fn get_readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.ready.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else if !state.chaos.settings().ready {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the chaos settings say so (/chaos)\n",
        )
    } else {
        (StatusCode::OK, "ready\n")
    }
}
