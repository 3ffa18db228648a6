//! `/status/{code}`: an answer with any status, to see how each one is counted, traced and shown.

use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::error::AppError;

/// `/status/{code}`: answers with `code`, from 200 to 599, and a short body. Counted like any
/// application route. An informational status (1xx) cannot end an HTTP exchange (the server would
/// turn it into a 500), so it is refused with the other invalid codes.
pub async fn any_status(Path(code): Path<String>) -> Result<Response, AppError> {
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "invalid status code {:?}: expected a number from 200 to 599 (a 1xx status cannot be a final answer)",
                code.chars().take(16).collect::<String>()
            ))
        })?;
    let reason = status.canonical_reason().unwrap_or("");
    Ok((status, format!("{} {reason}\n", status.as_u16())).into_response())
}
