//! The `console` exporter (`OTEL_EXPORTER=console`, `OTEL_LOGS_EXPORTER=console`): finished spans,
//! pushed metrics and log records written to stdout, one line at a time, in the format
//! `CONSOLE_FORMAT` chooses.
//!
//! - `compact` (the default): one line per span, per metric data point and per log record,
//!   `key=value` fields a person can scan and a tool can split. The grammar is in [`compact`].
//! - `otlp-json`: one line per export, the OTLP/JSON encoding of an `ExportTraceServiceRequest`,
//!   `ExportMetricsServiceRequest` or `ExportLogsServiceRequest`, as the OpenTelemetry Collector's
//!   file exporter writes it. See [`otlp_json`].
//!
//! Each line is written with one `write_all` on a locked stdout, the lock the log writer takes
//! too, so span, metric, record and log lines never interleave mid-line.

mod compact;
mod otlp_json;
#[cfg(test)]
mod samples;

use std::{
    io::Write as _,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    logs::{LogBatch, LogExporter},
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
    trace::{SpanData, SpanExporter},
};

use crate::config::ConsoleFormat;

/// Writes batches of finished spans to stdout.
#[derive(Debug)]
pub struct ConsoleSpanExporter {
    format: ConsoleFormat,
    resource: ResourceAttributesWithSchema,
    shut_down: AtomicBool,
}

impl ConsoleSpanExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        Self {
            format,
            resource: ResourceAttributesWithSchema::default(),
            shut_down: AtomicBool::new(false),
        }
    }
}

impl SpanExporter for ConsoleSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let lines = match self.format {
            ConsoleFormat::Compact => batch.iter().map(compact::span_line).collect(),
            ConsoleFormat::OtlpJson => vec![otlp_json::spans(batch, &self.resource)?],
        };
        write_lines(&lines)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes batches of log records to stdout.
#[derive(Debug)]
pub struct ConsoleLogExporter {
    format: ConsoleFormat,
    resource: ResourceAttributesWithSchema,
    shut_down: AtomicBool,
}

impl ConsoleLogExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        Self {
            format,
            resource: ResourceAttributesWithSchema::default(),
            shut_down: AtomicBool::new(false),
        }
    }
}

impl LogExporter for ConsoleLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if batch.iter().next().is_none() {
            return Ok(());
        }
        let lines = match self.format {
            ConsoleFormat::Compact => batch
                .iter()
                .map(|(record, scope)| compact::log_line(record, scope))
                .collect(),
            ConsoleFormat::OtlpJson => vec![otlp_json::logs(&batch, &self.resource)?],
        };
        write_lines(&lines)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes each collection of metrics to stdout; values are cumulative since the start.
#[derive(Debug)]
pub struct ConsoleMetricExporter {
    format: ConsoleFormat,
    shut_down: AtomicBool,
}

impl ConsoleMetricExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        Self {
            format,
            shut_down: AtomicBool::new(false),
        }
    }
}

impl PushMetricExporter for ConsoleMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let lines = match self.format {
            ConsoleFormat::Compact => compact::metric_lines(metrics),
            // A line without a single metric would say nothing.
            ConsoleFormat::OtlpJson if metrics.scope_metrics().next().is_none() => Vec::new(),
            ConsoleFormat::OtlpJson => vec![otlp_json::metrics(metrics)?],
        };
        write_lines(&lines)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// Writes whole lines (each ends with `\n`) under one stdout lock: the log writer's `write_all`
/// takes the same lock, so its lines land between ours, never inside them.
fn write_lines(lines: &[String]) -> OTelSdkResult {
    if lines.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    lines
        .iter()
        .try_for_each(|line| stdout.write_all(line.as_bytes()))
        .and_then(|()| stdout.flush())
        .map_err(|err| OTelSdkError::InternalFailure(format!("writing to stdout: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exporters_refuse_to_write_once_shut_down() {
        let spans = ConsoleSpanExporter::new(ConsoleFormat::Compact);
        let metrics = ConsoleMetricExporter::new(ConsoleFormat::OtlpJson);

        spans.shutdown_with_timeout(Duration::from_secs(1)).unwrap();
        metrics
            .shutdown_with_timeout(Duration::from_secs(1))
            .unwrap();

        assert!(matches!(
            spans.export(vec![samples::server_span()]).await,
            Err(OTelSdkError::AlreadyShutdown)
        ));
        assert!(matches!(
            metrics.export(&samples::collected_metrics()).await,
            Err(OTelSdkError::AlreadyShutdown)
        ));
        assert_eq!(metrics.temporality(), Temporality::Cumulative);
    }
}
