//! `POST /panic`: ends the process as a crash would, when `CHAOS_ALLOW_PANIC` allows it, so that
//! a restart can be seen where a pipeline looks for one (the kubelet's restart count, a changed
//! `process_start_time_seconds`, an alert).

use std::{io::Write as _, time::Duration};

use axum::{extract::State, http::StatusCode};

use super::state::AppState;
use crate::telemetry::LOG_FLUSH_EVERY;

/// The exit code of a crash on `POST /panic`: that of a Rust program whose main thread panics.
pub const PANIC_EXIT_CODE: i32 = 101;

/// `POST /panic`: refused with 403 unless `CHAOS_ALLOW_PANIC` is set; otherwise the process ends
/// with [`PANIC_EXIT_CODE`]: no drain, no answer, no flush of spans or metrics, as a crash would.
/// Why it ended goes to the log, and to stderr in one write, where the container runtime keeps it
/// (`kubectl logs --previous`) whatever the log's destination.
pub async fn post_panic(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.chaos.panic_allowed() {
        return (
            StatusCode::FORBIDDEN,
            "refused: POST /panic ends the process only when CHAOS_ALLOW_PANIC (--chaos-allow-panic) is set\n",
        );
    }
    tracing::error!(
        exit_code = PANIC_EXIT_CODE,
        "POST /panic: ending the process as a crash would (CHAOS_ALLOW_PANIC is set)"
    );
    let line = format!(
        "prom-metrics-app: POST /panic: ending the process with exit code {PANIC_EXIT_CODE}, as a crash would (CHAOS_ALLOW_PANIC is set)\n"
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    // The log writer writes its buffers every `LOG_FLUSH_EVERY`: two rounds let the line above out,
    // which a crash's panic message would be too. Only this request waits, without blocking a
    // worker.
    tokio::time::sleep(2 * LOG_FLUSH_EVERY + Duration::from_millis(50)).await;
    std::process::exit(PANIC_EXIT_CODE)
}
