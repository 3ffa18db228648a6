//! Logging: one line per event, to stdout or to `logs/prom-metrics-app.log` (rotated, 10 files kept,
//! as the original), each line inside a request carrying its `trace_id` and `span_id`, read from
//! the request's OpenTelemetry context (attached by the tracing layer while the request runs).
//! Lines go through the [`LogWriter`], whose own thread does the writing. With
//! `OTEL_LOGS_EXPORTER`, the same events also become OpenTelemetry log records, through
//! `opentelemetry-appender-tracing`, each with its fields as attributes and, inside a request, its
//! span's ids.

use std::{
    fmt,
    io::{IsTerminal as _, Write},
    sync::Arc,
    time::SystemTime,
};

use anyhow::Context as _;
use opentelemetry::{logs::LoggerProvider as _, trace::TraceContextExt};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use super::{
    SCOPE,
    access::{self, AccessLog},
    log_writer::{FlushGuard, LogWriter},
    loss::Losses,
    rotation::RotatingFile,
};
use crate::{config::Config, dates};

/// Size past which the log file is rotated, as the original's `maxBytes`.
const ROTATE_BYTES: u64 = 10 * 1024 * 1024;

/// Installs the global subscriber: formatted lines filtered by `RUST_LOG`, written through a
/// [`LogWriter`] that counts the lines it drops in `losses`. When the log goes to a file and
/// stdout is a terminal, the access lines are printed on the terminal too, so that a person who
/// runs the app sees its requests. With a logger provider (`OTEL_LOGS_EXPORTER`), the same
/// events, filtered the same way, also become log records, and so do the access lines of traced
/// requests. The returned guards write out the buffered lines when dropped.
pub fn init(
    config: &Config,
    losses: Arc<Losses>,
    records: Option<&SdkLoggerProvider>,
) -> anyhow::Result<(AccessLog, Vec<FlushGuard>)> {
    let sink: Box<dyn Write + Send> =
        if config.log_to_stdout {
            Box::new(std::io::stdout())
        } else {
            let dir = &config.log_dir;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create LOG_DIR {}", dir.display()))?;
            Box::new(RotatingFile::open(dir, ROTATE_BYTES).with_context(|| {
                format!("cannot open the log file in LOG_DIR {}", dir.display())
            })?)
        };
    let (writer, guard) =
        LogWriter::new(sink, losses.clone()).context("cannot start the log writer")?;
    let mut guards = vec![guard];
    let terminal = if !config.log_to_stdout && std::io::stdout().is_terminal() {
        let (terminal, guard) = LogWriter::new(Box::new(std::io::stdout()), losses)
            .context("cannot start the terminal's writer")?;
        guards.push(guard);
        Some(terminal)
    } else {
        None
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(LineFormat)
        .with_writer(writer.clone())
        .with_filter(EnvFilter::try_new(&config.log_level)?);
    // `RUST_LOG` is read once, at start: whether it lets access lines through is known now. Asked
    // of a subscriber of its own: `enabled!` on the real one, whose layers filter each on their
    // own, would leave its answer for the next event, and the bridge would miss that event.
    let probe = tracing_subscriber::registry().with(EnvFilter::try_new(&config.log_level)?);
    let enabled = tracing::subscriber::with_default(
        probe,
        || tracing::enabled!(target: "access", tracing::Level::INFO),
    );
    match records {
        Some(provider) => {
            let filter = NOT_RECORDED
                .iter()
                .try_fold(EnvFilter::try_new(&config.log_level)?, |filter, target| {
                    anyhow::Ok(filter.add_directive(format!("{target}=off").parse()?))
                })?;
            let bridge = OpenTelemetryTracingBridge::new(provider).with_filter(filter);
            tracing_subscriber::registry()
                .with(lines)
                .with(bridge)
                .try_init()?;
        }
        None => tracing_subscriber::registry().with(lines).try_init()?,
    }
    let logger = records.map(|provider| provider.logger(SCOPE));
    let access = AccessLog::new(
        writer,
        terminal,
        logger,
        enabled,
        config.otel_attribute_value_length_limit,
    );
    Ok((access, guards))
}

/// The targets whose events never become log records, whatever `RUST_LOG` says: the access lines
/// (whose records the access log makes itself) and the libraries that carry records to the
/// collector, whose events about it would otherwise feed on themselves.
const NOT_RECORDED: [&str; 9] = [
    access::TARGET,
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "tonic",
    "h2",
    "hyper",
    "tower",
    "reqwest",
];

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
        write_timestamp(&mut writer)?;
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

/// Writes the current time as RFC 3339 in UTC with microseconds, `2026-11-25T17:53:00.123456Z`.
fn write_timestamp(writer: &mut impl fmt::Write) -> fmt::Result {
    let text = dates::rfc3339_micros(SystemTime::now());
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}
