//! `GET /metrics`: the scrape endpoint, in the format the scraper asks for.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{error::AppError, state::AppState};
use crate::metrics::Format;

/// Serves the backend's exposition in the format the `Accept` header prefers (see
/// [`Format::negotiate`]): protobuf, OpenMetrics, or the Prometheus text format 0.0.4. Backends
/// that push (OpenTelemetry) answer 404.
pub async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match state.backend.encode(format) {
        Some(Ok(body)) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Some(Err(err)) => AppError::Internal(format!("encoding metrics: {err}")).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "/metrics is served only with METRICS_BACKEND=prometheus; the {} backend pushes its metrics\n",
                state.backend.name()
            ),
        )
            .into_response(),
    }
}
