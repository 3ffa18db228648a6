//! Logging: one line per event, to stdout or to `logs/prom-metrics-app.log` (rotated, 10 files kept,
//! as the original), each line inside a request carrying its `trace_id` and `span_id`.

use std::fmt;

use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::SdkTracer;
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::Targets,
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::Config;

/// Name of the log file inside `LOG_DIR`.
pub const LOG_FILE: &str = "prom-metrics-app.log";
/// Size at which the log file is rotated.
const ROTATE_BYTES: usize = 10 * 1024 * 1024;
/// Rotated files kept besides the current one, as the original's `backupCount=10`.
const KEEP_FILES: usize = 10;

/// Installs the global subscriber: formatted lines filtered by `RUST_LOG`, and the app's own spans
/// sent to `tracer`. The returned guard flushes buffered lines when dropped.
pub fn init(config: &Config, tracer: SdkTracer) -> anyhow::Result<WorkerGuard> {
    let (writer, guard) = if config.log_to_stdout {
        tracing_appender::non_blocking(std::io::stdout())
    } else {
        std::fs::create_dir_all(&config.log_dir).map_err(|e| {
            anyhow::anyhow!("cannot create LOG_DIR {}: {e}", config.log_dir.display())
        })?;
        let file = FileRotate::new(
            config.log_dir.join(LOG_FILE),
            AppendCount::new(KEEP_FILES),
            ContentLimit::Bytes(ROTATE_BYTES),
            Compression::None,
            None,
        );
        tracing_appender::non_blocking(file)
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(LineFormat)
        .with_writer(writer)
        .with_filter(EnvFilter::try_new(&config.log_level)?);
    // Only the app's own spans become OpenTelemetry spans: the exporters' HTTP/gRPC clients trace
    // themselves too, and exporting those would feed the exporter its own traffic.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_filter(Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::INFO));
    tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init()?;
    Ok(guard)
}

/// `2026-01-01T00:00:00.000000Z  INFO target: message fields trace_id=… span_id=…`
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        let meta = event.metadata();
        write!(writer, " {:>5} {}: ", meta.level(), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        // Entering a span activates its OpenTelemetry context, so the current context is the
        // request's span.
        let context = opentelemetry::Context::current();
        let span = context.span();
        let span_context = span.span_context();
        if span_context.is_valid() {
            write!(
                writer,
                " trace_id={} span_id={}",
                span_context.trace_id(),
                span_context.span_id()
            )?;
        }
        writeln!(writer)
    }
}
