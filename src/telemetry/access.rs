//! The access log: one line per request in the log, and, with `OTEL_LOGS_EXPORTER`, one
//! OpenTelemetry log record per traced request, carrying its server span's ids.
//!
//! Both are written straight, not as `tracing` events: an event would cost about 5,000
//! instructions a request, mostly in escaping and formatting fields; the line costs a few hundred,
//! and the record is built once through the Logs API and handed to the batch processor's queue,
//! which drops (and counts) rather than waits. Neither needs escaping: the method is one of a
//! fixed set and the path has been validated by the HTTP parser (no spaces or control
//! characters).

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use opentelemetry::{
    StringValue,
    logs::{AnyValue, LogRecord as _, Logger as _, Severity},
    trace::SpanContext,
};
use opentelemetry_sdk::logs::SdkLogger;

use super::log_writer::LogWriter;
use crate::dates;

/// The target of access lines (`RUST_LOG=info,access=off` turns them off) and the scope of access
/// records.
pub const TARGET: &str = "access";

/// One finished request, as the access log sees it.
pub struct Access<'a> {
    /// `http.request.method`: a standard method, or `_OTHER`.
    pub method: &'static str,
    /// The path, without the query.
    pub path: &'a str,
    /// `http.route`: the route template, if one matched.
    pub route: Option<&'static str>,
    pub status: u16,
    pub duration: Duration,
    /// The server span, if the request has one.
    pub span: Option<&'a SpanContext>,
    /// When the request ended.
    pub at: SystemTime,
    /// What the access record needs beyond the line, when records are made.
    pub requester: Option<&'a Requester>,
}

/// Who sent a request: the attributes of its access record taken from the connection and the
/// headers. Values are shared: a client sends many requests, and a queued record holds its
/// values.
#[derive(Debug, Clone)]
pub struct Requester {
    /// `client.address`.
    pub address: Option<StringValue>,
    /// `user_agent.original`, cut at the attribute value length limit.
    pub user_agent: Option<StringValue>,
}

/// Writes the access line of each request to the log writer (and the terminal), and its record
/// to the logger. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    writer: LogWriter,
    /// The terminal that also shows the access lines, if any (see [`super::logging::init`]).
    terminal: Option<LogWriter>,
    /// Where access records go; `None` when `OTEL_LOGS_EXPORTER` is `none`.
    records: Option<SdkLogger>,
    /// Whether `RUST_LOG` lets the `access` target through: lines and records alike.
    enabled: bool,
    /// The longest path a record holds, in characters (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`), as
    /// for spans: what bounds the bytes a queued record holds.
    value_limit: usize,
}

impl AccessLog {
    /// The access log of `writer` (and `terminal`), with records to `records`, on when `enabled`.
    pub(super) fn new(
        writer: LogWriter,
        terminal: Option<LogWriter>,
        records: Option<SdkLogger>,
        enabled: bool,
        value_limit: usize,
    ) -> Self {
        Self {
            writer,
            terminal,
            records,
            enabled,
            value_limit,
        }
    }

    /// Whether traced requests get an access record: the request layer then keeps what the
    /// record needs from the request.
    pub fn records(&self) -> bool {
        self.enabled && self.records.is_some()
    }

    /// Writes the line of `access`, and its record when it has a span and records are on;
    /// nothing when `RUST_LOG` filters out the `access` target.
    pub fn write(&self, access: &Access<'_>) {
        if !self.enabled {
            return;
        }
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            let summary = access_line(line, access);
            self.writer.append(line);
            if let Some(terminal) = &self.terminal {
                terminal.append(line);
            }
            if let (Some(logger), Some(span)) = (&self.records, access.span) {
                // The line's own text: ASCII, as the method and path are.
                let body = std::str::from_utf8(&line[summary]).unwrap_or_default();
                logger.emit(record(logger, access, span, body, self.value_limit));
            }
        });
    }
}

/// The severity of a request's record by its outcome: an error of the client's is a warning, one
/// of the server's an error.
pub fn severity(status: u16) -> (Severity, &'static str) {
    match status {
        500.. => (Severity::Error, "ERROR"),
        400..500 => (Severity::Warn, "WARN"),
        _ => (Severity::Info, "INFO"),
    }
}

/// The access record of `access`: the line's summary as its body, its span's ids, a severity by
/// outcome, and the attributes of OpenTelemetry's HTTP server conventions.
fn record(
    logger: &SdkLogger,
    access: &Access<'_>,
    span: &SpanContext,
    body: &str,
    limit: usize,
) -> opentelemetry_sdk::logs::SdkLogRecord {
    let path = match access.path.char_indices().nth(limit) {
        Some((end, _)) => &access.path[..end],
        None => access.path,
    };
    // A path past the limit is cut in the body too; the line in the log keeps it whole.
    let cut;
    let body = match path.len() < access.path.len() {
        true => {
            let (method, rest) = body.split_at(access.method.len() + 1);
            cut = format!("{method}{path}{}", &rest[access.path.len()..]);
            cut.as_str()
        }
        false => body,
    };
    let mut record = logger.create_log_record();
    let (number, text) = severity(access.status);
    record.set_target(TARGET);
    // The request's end: the time of the line, the span's end and the histogram's exemplar.
    record.set_timestamp(access.at);
    record.set_observed_timestamp(access.at);
    record.set_severity_number(number);
    record.set_severity_text(text);
    record.set_trace_context(span.trace_id(), span.span_id(), Some(span.trace_flags()));
    record.set_body(AnyValue::String(shared(body)));
    record.add_attribute("http.request.method", access.method);
    record.add_attribute("url.path", AnyValue::String(shared(path)));
    if let Some(route) = access.route {
        record.add_attribute("http.route", route);
    }
    record.add_attribute("http.response.status_code", i64::from(access.status));
    if let Some(requester) = access.requester {
        if let Some(address) = &requester.address {
            record.add_attribute("client.address", AnyValue::String(address.clone()));
        }
        if let Some(agent) = &requester.user_agent {
            record.add_attribute("user_agent.original", AnyValue::String(agent.clone()));
        }
    }
    record.add_attribute(
        "http.server.request.duration",
        access.duration.as_secs_f64(),
    );
    record
}

/// `text` in one shared allocation, so that the batch processor's copy of the record costs a
/// reference count, not a copy.
fn shared(text: &str) -> StringValue {
    StringValue::from(Arc::<str>::from(text))
}

/// Writes the access line of a request into `line`, in place of what it held, and returns where
/// its summary (`GET /do_task 200 201.012ms`) lies in it.
fn access_line(line: &mut Vec<u8>, access: &Access<'_>) -> std::ops::Range<usize> {
    let mut digits = itoa::Buffer::new();
    line.clear();
    line.extend_from_slice(&dates::rfc3339_micros(access.at));
    line.extend_from_slice(b"  INFO access: ");
    let start = line.len();
    line.extend_from_slice(access.method.as_bytes());
    line.push(b' ');
    line.extend_from_slice(access.path.as_bytes());
    line.push(b' ');
    line.extend_from_slice(digits.format(access.status).as_bytes());
    line.push(b' ');
    // Whole microseconds as integers: float formatting costs several times more.
    let micros = access.duration.as_micros() as u64;
    line.extend_from_slice(digits.format(micros / 1000).as_bytes());
    line.push(b'.');
    // 1000 plus the fraction has four digits: the last three are the fraction, padded.
    line.extend_from_slice(&digits.format(1000 + micros % 1000).as_bytes()[1..]);
    line.extend_from_slice(b"ms");
    let summary = start..line.len();
    if let Some(span) = access.span.filter(|s| s.is_valid()) {
        line.extend_from_slice(b" trace_id=");
        push_hex(line, &span.trace_id().to_bytes());
        line.extend_from_slice(b" span_id=");
        push_hex(line, &span.span_id().to_bytes());
    }
    line.push(b'\n');
    summary
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
    use opentelemetry::{
        logs::LoggerProvider as _,
        trace::{SpanId, TraceFlags, TraceId},
    };
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};

    use super::*;

    fn span() -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            Default::default(),
        )
    }

    fn access<'a>(
        status: u16,
        duration: Duration,
        span: Option<&'a SpanContext>,
        requester: Option<&'a Requester>,
    ) -> Access<'a> {
        Access {
            method: "GET",
            path: "/do_task",
            route: Some("/do_task"),
            status,
            duration,
            span,
            at: SystemTime::now(),
            requester,
        }
    }

    #[test]
    fn ids_are_written_in_lower_case_hex_as_opentelemetry_writes_them() {
        let trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        let mut line = Vec::new();

        push_hex(&mut line, &trace_id.to_bytes());

        assert_eq!(line, trace_id.to_string().as_bytes());
    }

    #[test]
    fn access_lines_carry_the_request_its_duration_and_its_span() {
        let span = span();
        let mut lines = Vec::new();

        for (status, micros, span) in [
            (200, 3_045, Some(&span)),
            (404, 1_234_500, None),
            (503, 0, None),
        ] {
            let mut line = Vec::new();
            let access = access(status, Duration::from_micros(micros), span, None);
            let summary = access_line(&mut line, &access);
            lines.push((
                String::from_utf8(line[summary].to_vec()).unwrap(),
                String::from_utf8(line).unwrap(),
            ));
        }

        let (stamp, rest) = lines[0].1.split_at(dates::MICROS_LEN);
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{stamp}");
        assert_eq!(
            rest,
            "  INFO access: GET /do_task 200 3.045ms \
             trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331\n"
        );
        assert_eq!(lines[0].0, "GET /do_task 200 3.045ms");
        assert!(
            lines[1]
                .1
                .ends_with("  INFO access: GET /do_task 404 1234.500ms\n"),
            "{}",
            lines[1].1
        );
        assert_eq!(lines[2].0, "GET /do_task 503 0.000ms");
    }

    #[test]
    fn severity_follows_the_outcome() {
        let levels: Vec<_> = [200, 302, 399, 400, 404, 499, 500, 503, 599]
            .into_iter()
            .map(|status| severity(status).1)
            .collect();

        assert_eq!(
            levels,
            [
                "INFO", "INFO", "INFO", "WARN", "WARN", "WARN", "ERROR", "ERROR", "ERROR"
            ]
        );
        assert_eq!(severity(404).0, Severity::Warn);
    }

    #[test]
    fn a_traced_request_gets_one_record_with_its_span_its_line_and_its_attributes() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let log = AccessLog::new(
            LogWriter::new(Box::new(std::io::sink()), Arc::default())
                .unwrap()
                .0,
            None,
            Some(provider.logger("prom-metrics-app")),
            true,
            4096,
        );
        let span = span();
        let requester = Requester {
            address: Some("127.0.0.1".into()),
            user_agent: Some("curl/8".into()),
        };

        log.write(&access(
            503,
            Duration::from_millis(5),
            Some(&span),
            Some(&requester),
        ));
        log.write(&access(200, Duration::from_millis(5), None, None));

        let records = exporter.get_emitted_logs().unwrap();
        assert_eq!(records.len(), 1, "untraced requests get no record");
        let record = &records[0].record;
        assert_eq!(record.severity_text(), Some("ERROR"));
        assert_eq!(record.target().map(|t| t.as_ref()), Some("access"));
        let context = record.trace_context().unwrap();
        assert_eq!(
            (context.trace_id, context.span_id),
            (span.trace_id(), span.span_id())
        );
        assert_eq!(
            record.body(),
            Some(&AnyValue::from("GET /do_task 503 5.000ms".to_string()))
        );
        assert_eq!(record.timestamp(), record.observed_timestamp());
        let attributes: Vec<(String, AnyValue)> = record
            .attributes_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(
            attributes,
            [
                ("http.request.method".into(), AnyValue::from("GET")),
                ("url.path".into(), AnyValue::from("/do_task")),
                ("http.route".into(), AnyValue::from("/do_task")),
                ("http.response.status_code".into(), AnyValue::from(503_i64)),
                ("client.address".into(), AnyValue::from("127.0.0.1")),
                ("user_agent.original".into(), AnyValue::from("curl/8")),
                ("http.server.request.duration".into(), AnyValue::from(0.005)),
            ]
        );
    }

    #[test]
    fn a_path_past_the_value_limit_is_cut_in_the_record_and_whole_in_the_line() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let logger = provider.logger("prom-metrics-app");
        let span = span();
        let mut access = access(404, Duration::from_millis(1), Some(&span), None);
        let path = format!("/{}", "x".repeat(99));
        access.path = &path;
        let mut line = Vec::new();
        let summary = access_line(&mut line, &access);
        let body = std::str::from_utf8(&line[summary]).unwrap();

        logger.emit(record(&logger, &access, &span, body, 10));

        let records = exporter.get_emitted_logs().unwrap();
        let record = &records[0].record;
        assert_eq!(
            record.body(),
            Some(&AnyValue::from("GET /xxxxxxxxx 404 1.000ms".to_string()))
        );
        let url_path = record
            .attributes_iter()
            .find(|(key, _)| key.as_str() == "url.path")
            .map(|(_, value)| value.clone());
        assert_eq!(url_path, Some(AnyValue::from("/xxxxxxxxx")));
        assert!(body.contains(&path), "the line keeps the whole path");
    }
}
