//! Benchmark baseline: a bare axum server that answers `GET /` with fixed bytes, on the same
//! runtime as the app (tokio multi-thread, one worker per core) and with the same `Content-Type`
//! as the app's home page. Nothing else: no state, no middleware, no rendering.
//!
//! `BODY_FILE=home.html LISTEN_ADDR=127.0.0.1:5101 cargo run --release --example bare_axum`
//! (the file is read once, at start; `bench/run.sh` saves the app's own `/` body there).

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Router, body::Bytes, response::Html, routing::get};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BODY_FILE").ok())
        .context("give the body's file as the first argument or in BODY_FILE")?;
    let body = Bytes::from(std::fs::read(&path).with_context(|| format!("reading {path}"))?);
    let address: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:5101".to_string())
        .parse()
        .context("LISTEN_ADDR must be IP:PORT")?;

    // `Html` sets `text/html; charset=utf-8`, as the app's `Html<String>` does.
    let app = Router::new().route("/", get(move || async move { Html(body.clone()) }));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            prom_metrics_app::server::shutdown_signal().await;
        })
        .await?;
    Ok(())
}
