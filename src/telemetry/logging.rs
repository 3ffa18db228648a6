//! Logging: one line per event, to stdout or to `logs/prom-metrics-app.log` (rotated, 10 files kept,
//! as the original), each line inside a request carrying its `trace_id` and `span_id`, read from
//! the request's OpenTelemetry context (attached by the tracing layer while the request runs).
//! Lines go through the [`LogWriter`], whose own thread does the writing.

use std::{
    fmt,
    io::{IsTerminal as _, Write},
    sync::Arc,
    time::SystemTime,
};

use anyhow::Context as _;
use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use super::{
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
/// runs the app sees its requests. The returned guards write out the buffered lines when dropped.
pub fn init(config: &Config, losses: Arc<Losses>) -> anyhow::Result<(AccessLog, Vec<FlushGuard>)> {
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
    tracing_subscriber::registry().with(lines).try_init()?;
    // `RUST_LOG` is read once, at start: whether it lets access lines through is known now.
    let enabled = tracing::enabled!(target: "access", tracing::Level::INFO);
    Ok((
        AccessLog {
            writer,
            terminal,
            enabled,
        },
        guards,
    ))
}

/// Writes the access line of each request straight to the log writer, in the format of every other
/// line. A `tracing` event would cost about 5,000 instructions a request, mostly in escaping and
/// formatting fields; this costs a few hundred. It needs no escaping: the method is one of a fixed
/// set and the path has been validated by the HTTP parser (no spaces or control characters).
#[derive(Clone)]
pub struct AccessLog {
    writer: LogWriter,
    /// The terminal that also shows the access lines, if any (see [`init`]).
    terminal: Option<LogWriter>,
    /// Whether `RUST_LOG` lets the `access` target through.
    enabled: bool,
}

impl AccessLog {
    /// Writes one line, unless `RUST_LOG` filters out the `access` target; `at` is when the
    /// request ended, its time on the line.
    pub fn write(
        &self,
        method: &str,
        path: &str,
        status: u16,
        millis: f64,
        span: Option<&opentelemetry::trace::SpanContext>,
        at: SystemTime,
    ) {
        if !self.enabled {
            return;
        }
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            access_line(line, method, path, status, millis, span, at);
            self.writer.append(line);
            if let Some(terminal) = &self.terminal {
                terminal.append(line);
            }
        });
    }
}

/// Writes the access line of a request into `line`, in place of what it held.
fn access_line(
    line: &mut Vec<u8>,
    method: &str,
    path: &str,
    status: u16,
    millis: f64,
    span: Option<&opentelemetry::trace::SpanContext>,
    at: SystemTime,
) {
    let mut digits = itoa::Buffer::new();
    line.clear();
    line.extend_from_slice(&dates::rfc3339_micros(at));
    line.extend_from_slice(b"  INFO access: ");
    line.extend_from_slice(method.as_bytes());
    line.push(b' ');
    line.extend_from_slice(path.as_bytes());
    line.push(b' ');
    line.extend_from_slice(digits.format(status).as_bytes());
    line.push(b' ');
    // Whole microseconds as integers: float formatting costs several times more.
    let micros = (millis * 1e3) as u64;
    line.extend_from_slice(digits.format(micros / 1000).as_bytes());
    line.push(b'.');
    // 1000 plus the fraction has four digits: the last three are the fraction, padded.
    line.extend_from_slice(&digits.format(1000 + micros % 1000).as_bytes()[1..]);
    line.extend_from_slice(b"ms");
    if let Some(span) = span.filter(|s| s.is_valid()) {
        line.extend_from_slice(b" trace_id=");
        push_hex(line, &span.trace_id().to_bytes());
        line.extend_from_slice(b" span_id=");
        push_hex(line, &span.span_id().to_bytes());
    }
    line.push(b'\n');
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

/// Appends `bytes` in lower-case hex, as trace and span ids are written everywhere.
fn push_hex(line: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Into an array first (ids are at most 16 bytes): one copy into the line, rather than a
    // capacity check per digit.
    let mut text = [0; 32];
    let bytes = &bytes[..bytes.len().min(16)];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    line.extend_from_slice(&text[..bytes.len() * 2]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_in_lower_case_hex_as_opentelemetry_writes_them() {
        let trace_id =
            opentelemetry::trace::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        let mut line = Vec::new();

        push_hex(&mut line, &trace_id.to_bytes());

        assert_eq!(line, trace_id.to_string().as_bytes());
    }

    #[test]
    fn access_lines_carry_the_request_its_duration_and_its_span() {
        let span = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let mut lines = Vec::new();

        for (status, millis, span) in [
            (200, 3.0456, Some(&span)),
            (404, 1234.5, None),
            (503, 0.0009, None),
        ] {
            let mut line = Vec::new();
            access_line(
                &mut line,
                "GET",
                "/do_task",
                status,
                millis,
                span,
                SystemTime::now(),
            );
            lines.push(String::from_utf8(line).unwrap());
        }

        let (stamp, rest) = lines[0].split_at(dates::MICROS_LEN);
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{stamp}");
        assert_eq!(
            rest,
            "  INFO access: GET /do_task 200 3.045ms \
             trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331\n"
        );
        assert!(
            lines[1].ends_with("  INFO access: GET /do_task 404 1234.500ms\n"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with("  INFO access: GET /do_task 503 0.000ms\n"),
            "{}",
            lines[2]
        );
    }
}
