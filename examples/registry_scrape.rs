//! Benchmark baseline of the synthetic scrape: the same gauge series as the app's
//! `SYNTHETIC_METRICS` x `SYNTHETIC_SERIES` (same names, labels and values), held in a
//! prometheus-client registry and served on `/metrics` by its 0.0.4 text encoder, off the request
//! workers and gzip-compressed at the fastest level when asked, as the app serves its own. It
//! shows what the app's stateless, hand-written encoder replaces: the memory a registry keeps
//! per series, and the encoder's time per line.
//!
//! `LISTEN_ADDR=127.0.0.1:5103 SYNTHETIC_METRICS=100 SYNTHETIC_SERIES=10000 cargo run --release --example registry_scrape`

use std::{net::SocketAddr, sync::Arc, sync::atomic::AtomicU64};

use anyhow::Context;
use axum::{Router, http::StatusCode, routing::get};
use prom_metrics_app::synthetic::{Settings, Synthetic};
use prometheus_client::{
    encoding::prometheus_text,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use tower_http::{CompressionLevel, compression::CompressionLayer};

type Labels = Vec<(String, String)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:5103".to_string())
        .parse()
        .context("LISTEN_ADDR must be IP:PORT")?;
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        match std::env::var(name) {
            Ok(n) => n
                .parse()
                .with_context(|| format!("{name} must be a whole number")),
            Err(_) => Ok(default),
        }
    };
    let registry = Arc::new(fill(
        number("SYNTHETIC_METRICS", 1)?,
        number("SYNTHETIC_SERIES", 10)?,
    ));

    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let mut out = String::new();
                        prometheus_text::encode(&mut out, &registry).map(|()| out)
                    })
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
                }
            })
            .layer(
                CompressionLayer::new()
                    .gzip(true)
                    .quality(CompressionLevel::Fastest),
            ),
        );
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

/// A registry of `metrics` gauge families of `series` series each, with the labels and values
/// that the app's generator gives them at the start of a run.
fn fill(metrics: u64, series: u64) -> Registry {
    let synthetic = Synthetic::new(Settings {
        metrics,
        series_per_metric: series,
        ..Settings::default()
    });
    let frame = synthetic.run().frame();
    let mut registry = Registry::default();
    for family_index in 0..metrics {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for id in 0..series {
            let series = frame.series(family_index, id);
            family
                .get_or_create(&vec![
                    ("series_id".to_string(), id.to_string()),
                    ("generation".to_string(), series.generation.to_string()),
                ])
                .set(frame.gauge(&series));
        }
        registry.register(
            format!("synthetic_gauge_{family_index}"),
            "Synthetic series of prom-metrics-app (SYNTHETIC_*, /api/synthetic)",
            family,
        );
    }
    registry
}
