//! Logging: one line per event, to stdout or to `logs/prom-metrics-app.log` (rotated, 10 files kept,
//! as the original), each line inside a request carrying its `trace_id` and `span_id`, read from
//! the request's OpenTelemetry context (attached by the tracing layer while the request runs).

use std::{fmt, io::BufWriter, path::Path};

use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, Layer,
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
/// Log lines that may wait for the writer thread before a caller has to wait.
const QUEUED_LINES: usize = 4096;
/// Bytes of log lines gathered before a write.
const WRITE_BUFFER: usize = 64 * 1024;
/// Rotated files kept besides the current one, as the original's `backupCount=10`.
const KEEP_FILES: usize = 10;

/// Installs the global subscriber: formatted lines filtered by `RUST_LOG`, and the app's own spans
/// sent to `tracer`. The returned guard flushes buffered lines when dropped.
pub fn init(config: &Config) -> anyhow::Result<WorkerGuard> {
    // Not lossy: when the writer falls behind, a caller waits briefly rather than a line being
    // dropped without a trace (tracing-appender's default).
    // The queue is allocated, and touched, in full at start: tracing-appender's default of 128,000
    // lines costs about 4 MiB of resident memory, while the buffered writer behind it drains a few
    // thousand lines in a millisecond.
    let writer = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES);
    // Buffered behind the channel: the writer thread flushes whenever it has caught up, so a
    // burst of lines costs one write instead of one each, and a quiet line still goes out at once.
    let (writer, guard) = if config.log_to_stdout {
        writer.finish(BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout()))
    } else {
        std::fs::create_dir_all(&config.log_dir).map_err(|e| {
            anyhow::anyhow!("cannot create LOG_DIR {}: {e}", config.log_dir.display())
        })?;
        let file = rotating_file(&config.log_dir, ROTATE_BYTES);
        writer.finish(BufWriter::with_capacity(WRITE_BUFFER, file))
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(LineFormat)
        .with_writer(writer)
        .with_filter(EnvFilter::try_new(&config.log_level)?);
    tracing_subscriber::registry().with(lines).try_init()?;
    Ok(guard)
}

/// The log file in `dir`, rotated once it has grown past `limit` bytes, with [`KEEP_FILES`] older
/// files kept. A line is never split across two files: rotation happens between writes, and a
/// write holds whole lines (one line, or the buffered lines before it).
pub fn rotating_file(dir: &Path, limit: usize) -> FileRotate<AppendCount> {
    FileRotate::new(
        dir.join(LOG_FILE),
        AppendCount::new(KEEP_FILES),
        ContentLimit::BytesSurpassed(limit),
        Compression::None,
        None,
    )
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn rotation_keeps_ten_files_and_never_splits_a_line() {
        let dir = std::env::temp_dir().join(format!("pma-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = rotating_file(&dir, 1000);

        // 600 lines of 70 to 130 bytes: about 60 kB, so 60 rotations at 1 kB.
        for i in 0..600 {
            let line = format!("line {i:04} {}\n", "x".repeat(60 + (i * 7) % 60));
            file.write_all(line.as_bytes()).unwrap();
        }
        file.flush().unwrap();
        drop(file);

        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), KEEP_FILES + 1, "{names:?}");
        assert!(names.contains(&LOG_FILE.to_string()), "{names:?}");
        for name in &names {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.ends_with('\n'), "{name} ends mid-line");
            for line in text.lines() {
                assert!(
                    line.starts_with("line ") && line.ends_with('x'),
                    "{name}: split line {line:?}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
