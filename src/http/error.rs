//! One error type for handlers: a 4xx tells the user why, a 5xx says little and logs the cause;
//! and the 500 page that a failure or a panic shows.

use std::any::Any;

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use super::nav::Nav;

#[derive(Template)]
#[template(path = "500.html")]
struct ServerErrorPage {
    nav: Nav,
}

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
                server_error()
            }
        }
    }
}

/// The HTML 500 page.
pub fn server_error() -> Response {
    let nav = Nav::without_state();
    page_with_status(StatusCode::INTERNAL_SERVER_ERROR, &ServerErrorPage { nav })
}

/// `template` rendered as an HTML page with `status`; the bare reason if it cannot be rendered.
pub fn page_with_status(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => (status, status.canonical_reason().unwrap_or("error")).into_response(),
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
    server_error()
}
