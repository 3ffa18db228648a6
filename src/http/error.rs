//! One error type for handlers: a 4xx tells the user why, a 5xx says little and logs the cause.

use std::any::Any;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::pages;

/// A failure of a handler, mapped to a response.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is invalid; the message is shown to the user.
    #[error("{0}")]
    BadRequest(String),
    /// Something failed on our side; the cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(reason) => {
                (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
            }
            AppError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                pages::server_error()
            }
        }
    }
}

/// Turns a handler panic into the 500 page; the server and other connections carry on.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    tracing::error!(panic = %message, "handler panicked");
    pages::server_error()
}
