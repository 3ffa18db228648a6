//! Benchmark helper: an OTLP/gRPC receiver that accepts every trace, metric and log export, answers OK,
//! and keeps nothing, so the app's OTLP exporter can be measured against a collector that never
//! pushes back.
//!
//! `LISTEN_ADDR=127.0.0.1:4317 cargo run --release --example otlp_sink`
//!
//! On SIGTERM or Ctrl-C it prints how many export requests, spans and log records it received.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::{
    logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
        logs_service_server::{LogsService, LogsServiceServer},
    },
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};

/// Running totals, printed at exit.
#[derive(Clone, Default)]
struct Sink {
    exports: Arc<AtomicU64>,
    spans: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.exports.fetch_add(1, Ordering::Relaxed);
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.exports.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let records: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.exports.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:4317".to_string())
        .parse()
        .context("LISTEN_ADDR must be IP:PORT")?;
    let sink = Sink::default();
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink.clone()))
        .add_service(MetricsServiceServer::new(sink.clone()))
        .add_service(LogsServiceServer::new(sink.clone()))
        .serve_with_shutdown(address, async {
            prom_metrics_app::server::shutdown_signal().await;
        })
        .await
        .with_context(|| format!("serving OTLP/gRPC on {address}"))?;
    eprintln!(
        "otlp_sink: {} export requests, {} spans, {} log records",
        sink.exports.load(Ordering::Relaxed),
        sink.spans.load(Ordering::Relaxed),
        sink.records.load(Ordering::Relaxed)
    );
    Ok(())
}
