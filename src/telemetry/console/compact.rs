//! The `compact` console format: one line per span, one line per metric data point, one line per
//! log record.
//!
//! ```text
//! span "GET /do_task" trace_id=0af7651916cd43dd8448eb211c80319c span_id=5c1c63257de34c67 parent_span_id=b7ad6b7169203331 kind=server status=unset duration_ms=201.302 http.request.method=GET http.route=/do_task http.response.status_code=200
//! metric http_requests unit=1 kind=sum value=3
//! metric request_processing_seconds unit=s kind=histogram count=3 sum=0.42 min=0.01 max=0.2 buckets=0.005:0,0.01:1,0.025:1,…,+Inf:3
//! log INFO scope=access trace_id=0af7651916cd43dd8448eb211c80319c span_id=5c1c63257de34c67 body="GET /do_task 200 201.302ms" http.request.method=GET http.response.status_code=200
//! ```
//!
//! # Grammar
//!
//! ```text
//! line        = (span-line / metric-line / log-line) LF
//! span-line   = "span" SP name SP span-own *(SP attribute)
//! span-own    = "trace_id=" 32hex SP "span_id=" 16hex SP "parent_span_id=" (16hex / DQUOTE DQUOTE)
//!               SP "kind=" ("server" / "client" / "internal" / "producer" / "consumer")
//!               SP "status=" ("unset" / "ok" / "error" SP "status_message=" value)
//!               [SP "events=" count] [SP "links=" count]
//!               SP "duration_ms=" 1*DIGIT "." 3DIGIT
//! metric-line = "metric" SP name SP "unit=" value SP point *(SP attribute)
//! log-line    = "log" SP severity SP "scope=" value [SP "trace_id=" 32hex SP "span_id=" 16hex]
//!               SP "body=" value *(SP attribute)
//! severity    = "TRACE" / "DEBUG" / "INFO" / "WARN" / "ERROR" / 1*DIGIT
//! point       = "kind=" ("sum" / "nonmonotonic_sum" / "gauge") SP "value=" number
//!             / "kind=histogram" SP stats SP "buckets=" bound ":" count *("," bound ":" count)
//!             / "kind=exponential_histogram" SP stats SP "scale=" int SP "zero_count=" count
//!               SP "negative=" range SP "buckets=" range
//! stats       = "count=" count SP "sum=" number [SP "min=" number] [SP "max=" number]
//! range       = int ":" [count *("," count)]
//! attribute   = value "=" value
//! name        = value
//! value       = bare / quoted
//! bare        = 1*(any character but whitespace, control characters, DQUOTE, "=" and "\")
//! quoted      = DQUOTE *(any character but DQUOTE, "\" and control characters / escape) DQUOTE
//! escape      = "\" (DQUOTE / "\" / "n" / "r" / "t" / "u" 4hex)
//! number      = ["-"] 1*DIGIT ["." 1*DIGIT] / "NaN" / "+Inf" / "-Inf"
//! bound       = number
//! count       = 1*DIGIT
//! hex         = DIGIT / "a" / "b" / "c" / "d" / "e" / "f"
//! ```
//!
//! - A value is bare when it can be, quoted otherwise (spaces, `"`, `=`, `\`, control characters,
//!   or empty). A quoted value is a JSON string literal, so any JSON parser reads it; U+2028 and
//!   U+2029 are escaped as well, so no line splitter can cut a line. `a` and `"a"` mean the same:
//!   this format carries text, not types (`otlp-json` keeps the types).
//! - A span's own fields come first, in the order above, and end with `duration_ms`; every field
//!   after it is an attribute, in recording order, even one named like an own field. A metric
//!   line's own fields end with `value` or `buckets`. Ids are lower-case hex; a root span has
//!   `parent_span_id=""`. `events` and `links` (counts) appear only when the span has some.
//! - Histogram buckets are cumulative, as Prometheus's `le` buckets: `0.25:3` counts the values up
//!   to 0.25, and the last bucket is `+Inf:count`. An exponential histogram's ranges are an offset
//!   and per-bucket counts, bucket `offset+i` covering (base^(offset+i), base^(offset+i+1)] with
//!   base = 2^(2^-scale); `buckets` is the positive range.
//! - A log record's severity is its severity text, else its severity number; its scope is its
//!   target (a `tracing` event's), else its logger's name. `body` is the last of its own fields
//!   (`body=""` when it has none); every field after it is an attribute. The time is left out, as
//!   for spans.
//! - Array attributes are written as `[1,2]` or `["a","b"]`. Resource, scope and timestamps are
//!   left out; `otlp-json` has them. Metric values are cumulative since the start.

use std::fmt::Write as _;

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value, logs::AnyValue, trace::SpanId, trace::SpanKind,
    trace::Status,
};
use opentelemetry_sdk::{
    logs::SdkLogRecord,
    metrics::data::{
        AggregatedMetrics, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, MetricData,
        ResourceMetrics,
    },
    trace::SpanData,
};

/// The line of one finished span, ending with `\n`.
pub fn span_line(span: &SpanData) -> String {
    let mut line = String::with_capacity(512);
    line.push_str("span ");
    push_token(&mut line, &span.name);
    let context = &span.span_context;
    // Here and below, writing to a String cannot fail.
    let _ = write!(
        line,
        " trace_id={} span_id={} parent_span_id=",
        context.trace_id(),
        context.span_id()
    );
    if span.parent_span_id == SpanId::INVALID {
        line.push_str("\"\"");
    } else {
        let _ = write!(line, "{}", span.parent_span_id);
    }
    line.push_str(" kind=");
    line.push_str(match span.span_kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Internal => "internal",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    });
    match &span.status {
        Status::Unset => line.push_str(" status=unset"),
        Status::Ok => line.push_str(" status=ok"),
        Status::Error { description } => {
            line.push_str(" status=error status_message=");
            push_token(&mut line, description);
        }
    }
    if !span.events.is_empty() {
        let _ = write!(line, " events={}", span.events.len());
    }
    if !span.links.is_empty() {
        let _ = write!(line, " links={}", span.links.len());
    }
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let _ = write!(line, " duration_ms={:.3}", duration.as_secs_f64() * 1000.0);
    for attribute in &span.attributes {
        push_attribute(&mut line, attribute.key.as_str(), &attribute.value);
    }
    line.push('\n');
    line
}

/// The line of one log record, ending with `\n`.
pub fn log_line(record: &SdkLogRecord, scope: &InstrumentationScope) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("log ");
    match (record.severity_text(), record.severity_number()) {
        (Some(text), _) => push_token(&mut line, text),
        (None, Some(number)) => {
            let _ = write!(line, "{}", number as i32);
        }
        (None, None) => line.push('0'),
    }
    line.push_str(" scope=");
    push_token(
        &mut line,
        record.target().map_or(scope.name(), |target| target),
    );
    if let Some(context) = record.trace_context() {
        let _ = write!(
            line,
            " trace_id={} span_id={}",
            context.trace_id, context.span_id
        );
    }
    line.push_str(" body=");
    match record.body() {
        Some(body) => push_any(&mut line, body),
        None => line.push_str("\"\""),
    }
    for (key, value) in record.attributes_iter() {
        line.push(' ');
        push_token(&mut line, key.as_str());
        line.push('=');
        push_any(&mut line, value);
    }
    line.push('\n');
    line
}

/// Appends a log record's value: as an attribute's, lists and maps as JSON.
fn push_any(line: &mut String, value: &AnyValue) {
    match value {
        AnyValue::String(text) => push_token(line, text.as_str()),
        AnyValue::Boolean(flag) => line.push_str(if *flag { "true" } else { "false" }),
        AnyValue::Int(number) => number.push(line),
        AnyValue::Double(number) => number.push(line),
        other => push_token(line, &any_json(other).to_string()),
    }
}

/// A list, map or bytes value as JSON (bytes as an array of numbers).
fn any_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        AnyValue::String(text) => Json::from(text.as_str()),
        AnyValue::Boolean(flag) => Json::from(*flag),
        AnyValue::Int(number) => Json::from(*number),
        AnyValue::Double(number) => Json::from(*number),
        AnyValue::Bytes(bytes) => Json::from(bytes.as_slice()),
        AnyValue::ListAny(items) => Json::Array(items.iter().map(any_json).collect()),
        AnyValue::Map(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            Json::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), any_json(value)))
                    .collect(),
            )
        }
        _ => Json::Null,
    }
}

/// One line per data point of every metric, each ending with `\n`.
pub fn metric_lines(metrics: &ResourceMetrics) -> Vec<String> {
    let mut lines = Vec::new();
    for metric in metrics.scope_metrics().flat_map(|scope| scope.metrics()) {
        match metric.data() {
            AggregatedMetrics::F64(data) => data_lines(metric, data, &mut lines),
            AggregatedMetrics::U64(data) => data_lines(metric, data, &mut lines),
            AggregatedMetrics::I64(data) => data_lines(metric, data, &mut lines),
        }
    }
    lines
}

fn data_lines<T: Number>(metric: &Metric, data: &MetricData<T>, lines: &mut Vec<String>) {
    match data {
        MetricData::Gauge(gauge) => lines.extend(
            gauge
                .data_points()
                .map(|point| value_line(metric, "gauge", point.value(), point.attributes())),
        ),
        MetricData::Sum(sum) => {
            let kind = if sum.is_monotonic() {
                "sum"
            } else {
                "nonmonotonic_sum"
            };
            lines.extend(
                sum.data_points()
                    .map(|point| value_line(metric, kind, point.value(), point.attributes())),
            )
        }
        MetricData::Histogram(histogram) => lines.extend(
            histogram
                .data_points()
                .map(|point| histogram_line(metric, point)),
        ),
        MetricData::ExponentialHistogram(histogram) => lines.extend(
            histogram
                .data_points()
                .map(|point| exponential_histogram_line(metric, point)),
        ),
    }
}

/// `metric NAME unit=UNIT kind=KIND`
fn metric_start(metric: &Metric, kind: &str) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("metric ");
    push_token(&mut line, metric.name());
    line.push_str(" unit=");
    push_token(&mut line, metric.unit());
    line.push_str(" kind=");
    line.push_str(kind);
    line
}

/// Appends the attributes and the line end.
fn metric_end<'a>(mut line: String, attributes: impl Iterator<Item = &'a KeyValue>) -> String {
    attributes.for_each(|kv| push_attribute(&mut line, kv.key.as_str(), &kv.value));
    line.push('\n');
    line
}

fn value_line<'a, T: Number>(
    metric: &Metric,
    kind: &str,
    value: T,
    attributes: impl Iterator<Item = &'a KeyValue>,
) -> String {
    let mut line = metric_start(metric, kind);
    line.push_str(" value=");
    value.push(&mut line);
    metric_end(line, attributes)
}

fn histogram_line<T: Number>(metric: &Metric, point: &HistogramDataPoint<T>) -> String {
    let mut line = metric_start(metric, "histogram");
    push_stats(
        &mut line,
        point.count(),
        point.sum(),
        point.min(),
        point.max(),
    );
    line.push_str(" buckets=");
    let mut cumulative = 0;
    let bounds = point.bounds().chain(std::iter::once(f64::INFINITY));
    for (i, (bound, count)) in bounds.zip(point.bucket_counts()).enumerate() {
        cumulative += count;
        if i > 0 {
            line.push(',');
        }
        bound.push(&mut line);
        let _ = write!(line, ":{cumulative}");
    }
    metric_end(line, point.attributes())
}

fn exponential_histogram_line<T: Number>(
    metric: &Metric,
    point: &ExponentialHistogramDataPoint<T>,
) -> String {
    let mut line = metric_start(metric, "exponential_histogram");
    push_stats(
        &mut line,
        point.count() as u64,
        point.sum(),
        point.min(),
        point.max(),
    );
    let _ = write!(
        line,
        " scale={} zero_count={}",
        point.scale(),
        point.zero_count()
    );
    for (field, range) in [
        ("negative", point.negative_bucket()),
        ("buckets", point.positive_bucket()),
    ] {
        let counts: Vec<String> = range.counts().map(|c| c.to_string()).collect();
        let _ = write!(line, " {field}={}:{}", range.offset(), counts.join(","));
    }
    metric_end(line, point.attributes())
}

fn push_stats<T: Number>(line: &mut String, count: u64, sum: T, min: Option<T>, max: Option<T>) {
    let _ = write!(line, " count={count} sum=");
    sum.push(line);
    for (field, value) in [(" min=", min), (" max=", max)] {
        if let Some(value) = value {
            line.push_str(field);
            value.push(line);
        }
    }
}

/// The value types of metric data points.
trait Number: Copy {
    fn push(self, line: &mut String);
}

impl Number for u64 {
    fn push(self, line: &mut String) {
        let _ = write!(line, "{self}");
    }
}

impl Number for i64 {
    fn push(self, line: &mut String) {
        let _ = write!(line, "{self}");
    }
}

impl Number for f64 {
    /// The shortest decimal that reads back as the same value, never in exponent form;
    /// infinities as Prometheus writes them.
    fn push(self, line: &mut String) {
        if self.is_nan() {
            line.push_str("NaN");
        } else if self.is_infinite() {
            line.push_str(if self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(line, "{self}");
        }
    }
}

fn push_attribute(line: &mut String, key: &str, value: &Value) {
    line.push(' ');
    push_token(line, key);
    line.push('=');
    match value {
        Value::String(text) => push_token(line, text.as_str()),
        Value::Bool(flag) => line.push_str(if *flag { "true" } else { "false" }),
        Value::I64(number) => number.push(line),
        Value::F64(number) => number.push(line),
        Value::Array(array) => push_token(line, &array_text(array)),
        other => push_token(line, &other.to_string()),
    }
}

/// `[1,2]`, `[true,false]`, `["a","b"]` (elements as JSON strings).
fn array_text(array: &Array) -> String {
    fn text(push: impl FnOnce(&mut String)) -> String {
        let mut text = String::new();
        push(&mut text);
        text
    }
    let items: Vec<String> = match array {
        Array::Bool(values) => values.iter().map(bool::to_string).collect(),
        Array::I64(values) => values.iter().map(i64::to_string).collect(),
        Array::F64(values) => values.iter().map(|v| text(|t| v.push(t))).collect(),
        Array::String(values) => values
            .iter()
            .map(|v| text(|t| push_quoted(t, v.as_str())))
            .collect(),
        other => return other.to_string(),
    };
    format!("[{}]", items.join(","))
}

/// Appends `text` bare if it can be read back unchanged, quoted otherwise.
fn push_token(line: &mut String, text: &str) {
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if bare {
        line.push_str(text);
    } else {
        push_quoted(line, text);
    }
}

/// Appends `text` as a JSON string literal, with U+2028 and U+2029 escaped too.
fn push_quoted(line: &mut String, text: &str) {
    line.push('"');
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::console::samples;

    fn token(text: &str) -> String {
        let mut line = String::new();
        push_token(&mut line, text);
        line
    }

    fn attribute(value: impl Into<Value>) -> String {
        let mut line = String::new();
        push_attribute(&mut line, "k", &value.into());
        line
    }

    #[test]
    fn a_span_line_has_every_field_in_order() {
        let line = span_line(&samples::server_span());

        assert_eq!(
            line,
            "span \"GET /do_task\" trace_id=0af7651916cd43dd8448eb211c80319c \
             span_id=5c1c63257de34c67 parent_span_id=b7ad6b7169203331 kind=server status=unset \
             duration_ms=201.302 http.request.method=GET http.route=/do_task \
             http.response.status_code=200\n"
        );
    }

    #[test]
    fn a_failed_root_span_has_an_empty_parent_the_status_message_and_its_event_count() {
        let line = span_line(&samples::failed_root_span());

        assert_eq!(
            line,
            "span \"do_task work\" trace_id=0af7651916cd43dd8448eb211c80319c \
             span_id=5c1c63257de34c67 parent_span_id=\"\" kind=internal status=error \
             status_message=\"upstream said \\\"no\\\"\" events=1 duration_ms=201.302 \
             task.seconds=0.25\n"
        );
    }

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        let cases = [
            ("GET", "GET"),
            ("/do_task?x=1", "\"/do_task?x=1\""),
            ("GET /", "\"GET /\""),
            ("", "\"\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("C:\\temp", "\"C:\\\\temp\""),
            ("two\nlines\r\n", "\"two\\nlines\\r\\n\""),
            ("tab\there", "\"tab\\there\""),
            ("bell\u{7}", "\"bell\\u0007\""),
            ("next\u{85}line", "\"next\\u0085line\""),
            ("para\u{2029}graph", "\"para\\u2029graph\""),
            ("café/ü", "café/ü"),
            ("non\u{a0}breaking", "\"non\u{a0}breaking\""),
        ];

        for (text, expected) in cases {
            assert_eq!(token(text), expected, "{text:?}");
        }
    }

    #[test]
    fn quoted_values_read_back_as_json_strings() {
        for text in [
            "a b",
            "",
            "q\"uote",
            "back\\slash",
            "\u{0}\u{1f}\u{7f}",
            "\u{2028}é=x",
        ] {
            let quoted = token(text);

            let read: String = serde_json::from_str(&quoted).unwrap();

            assert_eq!(read, text, "{quoted}");
            assert!(
                !quoted.contains('\n') && !quoted.contains('\u{2028}'),
                "{quoted}"
            );
        }
    }

    #[test]
    fn attribute_values_of_every_type() {
        assert_eq!(attribute("a b"), " k=\"a b\"");
        assert_eq!(attribute(true), " k=true");
        assert_eq!(attribute(-42_i64), " k=-42");
        assert_eq!(attribute(0.5), " k=0.5");
        assert_eq!(attribute(1e21), " k=1000000000000000000000");
        assert_eq!(attribute(f64::INFINITY), " k=+Inf");
        assert_eq!(attribute(f64::NEG_INFINITY), " k=-Inf");
        assert_eq!(attribute(f64::NAN), " k=NaN");
        assert_eq!(attribute(Value::Array(Array::I64(vec![1, 2]))), " k=[1,2]");
        assert_eq!(
            attribute(Value::Array(Array::String(vec!["a".into(), "b c".into()]))),
            " k=\"[\\\"a\\\",\\\"b c\\\"]\""
        );

        let mut line = String::new();
        push_attribute(&mut line, "odd key=", &Value::from("v"));
        assert_eq!(line, " \"odd key=\"=v");
    }

    #[test]
    fn one_metric_line_per_data_point_of_every_kind() {
        let lines = metric_lines(&samples::collected_metrics());

        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "metric idle unit=1 kind=sum value=0\n",
                "metric in_flight unit=\"\" kind=nonmonotonic_sum value=-2\n",
                "metric latency unit=s kind=histogram count=3 sum=4.75 min=0.25 max=4 \
                 buckets=0.3:1,1:2,+Inf:3 http.route=/\n",
                "metric requests unit=1 kind=sum value=3\n",
                "metric sizes unit=By kind=exponential_histogram count=3 sum=7 min=1 max=4 \
                 scale=0 zero_count=0 negative=0: buckets=-1:1,1,1\n",
                "metric temperature unit=Cel kind=gauge value=1.5\n",
            ]
        );
        assert!(lines.iter().all(|l| l.matches('\n').count() == 1));
    }

    #[test]
    fn attributes_follow_the_own_fields_even_when_named_like_them() {
        let mut span = samples::server_span();
        span.attributes = vec![KeyValue::new("status", "error")];

        let line = span_line(&span);

        assert!(
            line.ends_with("status=unset duration_ms=201.302 status=error\n"),
            "{line}"
        );
    }
}
