//! Logging: one line per event, to stdout or to `logs/prom-metrics-app.log` (rotated, 10 files kept,
//! as the original), each line inside a request carrying its `trace_id` and `span_id`, read from
//! the request's OpenTelemetry context (attached by the tracing layer while the request runs).

use std::{fmt, io::Write, path::Path};

use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};

use super::log_writer::{FlushGuard, LogWriter};
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::Config;

/// Name of the log file inside `LOG_DIR`.
pub const LOG_FILE: &str = "prom-metrics-app.log";
/// Size at which the log file is rotated.
const ROTATE_BYTES: usize = 10 * 1024 * 1024;
/// Bytes of log lines gathered before a write.
const WRITE_BUFFER: usize = 64 * 1024;
/// Rotated files kept besides the current one, as the original's `backupCount=10`.
const KEEP_FILES: usize = 10;

/// Installs the global subscriber: formatted lines filtered by `RUST_LOG`, written through a
/// [`LogWriter`]. The returned guard writes out the buffered lines when dropped.
pub fn init(config: &Config) -> anyhow::Result<(AccessLog, FlushGuard)> {
    let sink: Box<dyn Write + Send> = if config.log_to_stdout {
        Box::new(std::io::stdout())
    } else {
        std::fs::create_dir_all(&config.log_dir).map_err(|e| {
            anyhow::anyhow!("cannot create LOG_DIR {}: {e}", config.log_dir.display())
        })?;
        Box::new(rotating_file(&config.log_dir, ROTATE_BYTES))
    };
    let (writer, guard) = LogWriter::new(sink, WRITE_BUFFER);
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(LineFormat)
        .with_writer(writer.clone())
        .with_filter(EnvFilter::try_new(&config.log_level)?);
    tracing_subscriber::registry().with(lines).try_init()?;
    // `RUST_LOG` is read once, at start: whether it lets access lines through is known now.
    let enabled = tracing::enabled!(target: "access", tracing::Level::INFO);
    Ok((AccessLog { writer, enabled }, guard))
}

/// Writes the access line of each request straight to the log writer, in the format of every other
/// line. A `tracing` event would cost about 5,000 instructions a request, mostly in escaping and
/// formatting fields; this costs a few hundred. It needs no escaping: the method is one of a fixed
/// set and the path has been validated by the HTTP parser (no spaces or control characters).
#[derive(Clone)]
pub struct AccessLog {
    writer: LogWriter,
    /// Whether `RUST_LOG` lets the `access` target through.
    enabled: bool,
}

impl AccessLog {
    /// Writes one line, unless `RUST_LOG` filters out the `access` target.
    pub fn write(
        &self,
        method: &str,
        path: &str,
        status: u16,
        millis: f64,
        span: Option<&opentelemetry::trace::SpanContext>,
    ) {
        if !self.enabled {
            return;
        }
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            line.extend_from_slice(&timestamp());
            line.extend_from_slice(b"  INFO access: ");
            line.extend_from_slice(method.as_bytes());
            line.push(b' ');
            line.extend_from_slice(path.as_bytes());
            line.push(b' ');
            push_decimal(line, u64::from(status), 1);
            line.push(b' ');
            // Whole microseconds as integers: float formatting costs several times more.
            let micros = (millis * 1e3) as u64;
            push_decimal(line, micros / 1000, 1);
            line.push(b'.');
            push_decimal(line, micros % 1000, 3);
            line.extend_from_slice(b"ms");
            if let Some(span) = span.filter(|s| s.is_valid()) {
                line.extend_from_slice(b" trace_id=");
                push_hex(line, &span.trace_id().to_bytes());
                line.extend_from_slice(b" span_id=");
                push_hex(line, &span.span_id().to_bytes());
            }
            line.push(b'\n');
            let _ = self.writer.append(line);
        });
    }
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

/// Writes the time as RFC 3339 in UTC with microseconds, `2026-11-25T17:53:00.123456Z`. The date
/// and time of day are formatted once a second per thread, not once a line.
fn write_timestamp(writer: &mut impl fmt::Write) -> fmt::Result {
    let text = timestamp();
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The current time as in [`write_timestamp`], with the date and time of day computed once a
/// second per thread.
fn timestamp() -> [u8; 27] {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    let (cached, mut date) = SECOND.get();
    if cached != seconds {
        date = date_time(seconds);
        SECOND.set((seconds, date));
    }
    let mut text = [b'0'; 27];
    text[..19].copy_from_slice(&date);
    text[19] = b'.';
    let mut micros = now.subsec_micros();
    for digit in text[20..26].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    text[26] = b'Z';
    text
}

/// Appends `value` in decimal, padded with zeros to at least `width` digits.
fn push_decimal(line: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 || digits.len() - start < width {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    line.extend_from_slice(&digits[start..]);
}

/// Appends `bytes` in lower-case hex, as trace and span ids are written everywhere.
fn push_hex(line: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        line.push(DIGITS[usize::from(byte >> 4)]);
        line.push(DIGITS[usize::from(byte & 0x0f)]);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, by Howard Hinnant's days-to-civil algorithm.
pub(crate) fn date_time(unix_seconds: u64) -> [u8; 19] {
    let days = (unix_seconds / 86_400) as i64;
    let second_of_day = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut text = [0u8; 19];
    let formatted = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    let bytes = formatted.as_bytes();
    let n = bytes.len().min(19);
    text[..n].copy_from_slice(&bytes[..n]);
    text
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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
    fn decimals_are_padded_to_their_width() {
        let mut line = Vec::new();

        for (value, width) in [(0, 1), (7, 3), (42, 3), (1234, 3), (u64::MAX, 1)] {
            push_decimal(&mut line, value, width);
            line.push(b' ');
        }

        assert_eq!(
            String::from_utf8(line).unwrap(),
            "0 007 042 1234 18446744073709551615 "
        );
    }

    #[test]
    fn timestamps_have_microseconds_and_a_zone() {
        let text = timestamp();

        let text = std::str::from_utf8(&text).unwrap();
        assert_eq!(text.len(), 27);
        assert_eq!(&text[19..20], ".");
        assert!(text[20..26].bytes().all(|b| b.is_ascii_digit()), "{text}");
        assert!(text.ends_with('Z'), "{text}");
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc() {
        assert_eq!(&date_time(0), b"1970-01-01T00:00:00");
        assert_eq!(&date_time(951_782_400), b"2000-02-29T00:00:00");
        assert_eq!(&date_time(1_795_641_382), b"2026-11-25T21:16:22");
        assert_eq!(&date_time(4_102_444_799), b"2099-12-31T23:59:59");
    }

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
