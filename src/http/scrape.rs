//! `GET /metrics`: the scrape endpoint, in the format the scraper asks for, gzip-compressed when
//! it accepts gzip (as Prometheus always does; the router adds the compression).

use std::convert::Infallible;

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};

use super::{error::AppError, state::AppState};
use crate::metrics::{Chunks, Format};

/// Chunks made ahead of the client: enough to keep the socket busy, little memory.
const CHUNKS_AHEAD: usize = 4;

/// Serves the backend's exposition in the format the `Accept` header prefers (see
/// [`Format::negotiate`]): protobuf, OpenMetrics, or the Prometheus text format 0.0.4, then the
/// synthetic families, if any. Backends that push (OpenTelemetry) answer 404.
pub async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match state.backend.encode(format) {
        Some(Ok(body)) => {
            let body = match state.backend.synthetic_exposition(format) {
                Some(chunks) => streamed(body, chunks, format),
                None => Body::from(body),
            };
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
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

/// The app's own families (`head`), then the synthetic ones, then the format's trailer. The
/// synthetic chunks are made on a blocking thread, a few ahead of the client: encoding a million
/// series must not hold a worker that serves other requests, nor sit whole in memory. A client
/// that goes away stops the encoding at its next chunk.
fn streamed(mut head: Vec<u8>, chunks: Chunks, format: Format) -> Body {
    let trailer = format.trailer();
    if head.ends_with(trailer) {
        head.truncate(head.len() - trailer.len());
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let all = std::iter::once(head)
            .chain(chunks)
            .chain(std::iter::once(trailer.to_vec()));
        for chunk in all.filter(|chunk| !chunk.is_empty()) {
            if sender.blocking_send(chunk).is_err() {
                return;
            }
        }
    });
    Body::from_stream(
        ReceiverStream::new(receiver).map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk))),
    )
}
