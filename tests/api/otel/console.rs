//! The `console` exporter on the real binary: compact lines that parse back by the documented
//! grammar, and OTLP/JSON lines, sharing stdout with the log lines without mixing into them.

use std::{collections::HashSet, time::Duration};

use serde_json::Value;

use super::{PARENT_ID, TRACE_ID, terminate, traceparent};
use crate::helpers::{Binary, eventually, spawn_binary};

/// A compact line read by the grammar of `src/telemetry/console/compact.rs`, written again here
/// so that the test does not share the app's code.
#[derive(Debug)]
struct CompactLine {
    record: String,
    name: String,
    fields: Vec<(String, String)>,
}

impl CompactLine {
    fn parse(line: &str) -> Option<Self> {
        let (record, rest) = line.split_once(' ')?;
        let (name, mut rest) = read_value(rest)?;
        let mut fields = Vec::new();
        while !rest.is_empty() {
            let (key, after) = read_value(rest.strip_prefix(' ')?)?;
            let (value, after) = read_value(after.strip_prefix('=')?)?;
            fields.push((key, value));
            rest = after;
        }
        Some(Self {
            record: record.to_string(),
            name,
            fields,
        })
    }

    /// The first field named `key`: an own field, since those come first.
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The fields after the own fields, which end with `last`.
    fn attributes(&self, last: &str) -> Vec<(&str, &str)> {
        let own = self.fields.iter().position(|(k, _)| k == last);
        self.fields[own.map_or(self.fields.len(), |i| i + 1)..]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A bare value (up to a space or `=`) or a quoted one (a JSON string), and the rest.
fn read_value(text: &str) -> Option<(String, &str)> {
    if text.starts_with('"') {
        let bytes = text.as_bytes();
        let mut end = 1;
        while *bytes.get(end)? != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let value = serde_json::from_str(text.get(..=end)?).ok()?;
        Some((value, &text[end + 1..]))
    } else {
        let end = text.find([' ', '=']).unwrap_or(text.len());
        (end > 0).then(|| (text[..end].to_string(), &text[end..]))
    }
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A log line starts with its timestamp, `2026-11-25T…`.
fn is_log_line(line: &str) -> bool {
    line.len() > 5
        && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && line[4..].starts_with('-')
}

async fn get(client: &reqwest::Client, binary: &Binary, path: &str, traced: bool) {
    let mut request = client.get(binary.url(path));
    if traced {
        request = request.header("traceparent", traceparent());
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}");
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_format_prints_one_line_per_span_and_data_point_that_parses_back() {
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "console"),
        ("METRICS_BACKEND", "otel"),
        ("LOG_TO_STDOUT", "true"),
    ]);
    let client = reqwest::Client::new();

    for _ in 0..5 {
        get(&client, &binary, "/", false).await;
    }
    get(&client, &binary, "/do_task?seconds=0", true).await;
    get(&client, &binary, "/healthz", false).await;
    let stdout = terminate(binary).await;

    let mut lines = Vec::new();
    for line in stdout.lines().filter(|l| !is_log_line(l)) {
        let parsed = CompactLine::parse(line).unwrap_or_else(|| panic!("unreadable: {line}"));
        assert!(
            ["span", "metric", "log"].contains(&parsed.record.as_str()),
            "{line}"
        );
        lines.push(parsed);
    }
    let spans = |name: &str| -> Vec<&CompactLine> {
        lines
            .iter()
            .filter(|l| l.record == "span" && l.name == name)
            .collect()
    };
    let homes = spans("GET /");
    assert_eq!(homes.len(), 5, "one line per GET /: {stdout}");
    for home in &homes {
        assert!(is_hex(home.get("trace_id").unwrap(), 32), "{home:?}");
        assert!(is_hex(home.get("span_id").unwrap(), 16), "{home:?}");
        assert_eq!(home.get("parent_span_id"), Some(""), "a root span");
        assert_eq!(home.get("kind"), Some("server"));
        assert_eq!(home.get("status"), Some("unset"));
        let duration: f64 = home.get("duration_ms").unwrap().parse().unwrap();
        assert!((0.0..10_000.0).contains(&duration), "{home:?}");
        let attributes = home.attributes("duration_ms");
        for expected in [
            ("http.route", "/"),
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("url.path", "/"),
        ] {
            assert!(attributes.contains(&expected), "{expected:?} in {home:?}");
        }
    }
    let ids: HashSet<_> = homes.iter().map(|h| h.get("span_id")).collect();
    assert_eq!(ids.len(), 5, "five different spans");
    let task = spans("GET /do_task");
    assert_eq!(task.len(), 1, "{stdout}");
    assert_eq!(task[0].get("trace_id"), Some(TRACE_ID));
    assert_eq!(task[0].get("parent_span_id"), Some(PARENT_ID));
    let work = spans("do_task work");
    assert_eq!(work[0].get("parent_span_id"), task[0].get("span_id"));
    assert_eq!(work[0].get("kind"), Some("internal"));
    assert!(
        spans("GET /healthz").is_empty(),
        "probes are not traced by default"
    );
    let access = stdout
        .lines()
        .find(|l| l.contains("access: GET /do_task 200"))
        .expect("an access line");
    assert!(
        access.ends_with(&format!("span_id={}", task[0].get("span_id").unwrap())),
        "the log line names the printed span: {access}"
    );

    let metric = |name: &str| {
        lines
            .iter()
            .rfind(|l| l.record == "metric" && l.name == name)
            .unwrap_or_else(|| panic!("no metric {name} in {stdout}"))
    };
    let requests = metric("http_requests");
    assert_eq!(requests.get("unit"), Some("1"));
    assert_eq!(requests.get("kind"), Some("sum"));
    assert_eq!(requests.get("value"), Some("6"), "the probe is not counted");
    let durations = metric("request_processing_seconds");
    assert_eq!(durations.get("kind"), Some("histogram"));
    assert_eq!(durations.get("count"), Some("6"));
    assert!(durations.get("buckets").unwrap().ends_with(",+Inf:6"));
    assert!(!stdout.contains("String(") && !stdout.contains("Static("));
}

/// The JSON lines on stdout, checking that every other line is a log line.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| !is_log_line(line))
        .map(|line| {
            let export: Value =
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
            let keys: Vec<_> = export.as_object().unwrap().keys().collect();
            assert!(
                keys == ["resourceSpans"]
                    || keys == ["resourceMetrics"]
                    || keys == ["resourceLogs"],
                "{line}"
            );
            export
        })
        .collect()
}

/// The value of `key` in an OTLP/JSON attribute list.
fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a Value> {
    attributes
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

fn metric<'a>(export: &'a Value, name: &str) -> Option<&'a Value> {
    export["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_json_format_prints_each_export_as_one_json_line() {
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "console"),
        ("CONSOLE_FORMAT", "otlp-json"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("LOG_TO_STDOUT", "true"),
    ]);
    let client = reqwest::Client::new();

    for _ in 0..3 {
        get(&client, &binary, "/", false).await;
    }
    get(&client, &binary, "/do_task?seconds=0", true).await;
    let pushed = eventually(Duration::from_secs(10), || async {
        json_lines(&binary.stdout()).into_iter().find(|export| {
            metric(export, "http_requests")
                .is_some_and(|m| m["sum"]["dataPoints"][0]["asInt"] == "4")
        })
    })
    .await;
    let stdout = terminate(binary).await;

    let exports = json_lines(&stdout);
    let span_exports: Vec<_> = exports
        .iter()
        .filter(|e| e.get("resourceSpans").is_some())
        .collect();
    assert!(!span_exports.is_empty(), "{stdout}");
    let mut spans = Vec::new();
    for export in &span_exports {
        let resource = &export["resourceSpans"][0]["resource"]["attributes"];
        assert_eq!(
            attribute(resource, "service.name"),
            Some(&serde_json::json!({"stringValue": "prom-metrics-app"}))
        );
        spans.extend(
            export["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap(),
        );
    }
    for span in &spans {
        assert!(is_hex(span["traceId"].as_str().unwrap(), 32), "{span}");
        assert!(is_hex(span["spanId"].as_str().unwrap(), 16), "{span}");
        let start = span["startTimeUnixNano"].as_str().expect("a string");
        assert!(start.len() >= 19 && start.bytes().all(|b| b.is_ascii_digit()));
    }
    let homes: Vec<_> = spans.iter().filter(|s| s["name"] == "GET /").collect();
    assert_eq!(homes.len(), 3);
    for home in &homes {
        assert_eq!(home["kind"], 2, "SPAN_KIND_SERVER, as an integer");
        assert_eq!(home["parentSpanId"], "");
        assert_eq!(home["status"], serde_json::json!({}));
        assert_eq!(
            attribute(&home["attributes"], "http.route"),
            Some(&serde_json::json!({"stringValue": "/"}))
        );
        assert_eq!(
            attribute(&home["attributes"], "http.response.status_code"),
            Some(&serde_json::json!({"intValue": "200"}))
        );
    }
    let task = spans.iter().find(|s| s["name"] == "GET /do_task").unwrap();
    assert_eq!(task["traceId"], TRACE_ID);
    assert_eq!(task["parentSpanId"], PARENT_ID);

    let pushed = pushed.expect("a periodic export before shutdown");
    let requests = &metric(&pushed, "http_requests").unwrap()["sum"];
    assert_eq!(requests["aggregationTemporality"], 2);
    assert_eq!(requests["isMonotonic"], true);
    let last = exports
        .iter()
        .rfind(|e| e.get("resourceMetrics").is_some())
        .unwrap();
    let durations = &metric(last, "request_processing_seconds").unwrap()["histogram"];
    assert_eq!(durations["dataPoints"][0]["count"], "4");
    let resource = &last["resourceMetrics"][0]["resource"]["attributes"];
    assert!(attribute(resource, "service.instance.id").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_span_is_printed_within_a_second_of_its_request() {
    let logs = std::env::temp_dir().join(format!("pma-console-{}", std::process::id()));
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "console"),
        ("LOG_TO_STDOUT", "false"),
        ("LOG_DIR", logs.to_str().unwrap()),
    ]);

    reqwest::get(binary.url("/index")).await.unwrap();
    let answered = std::time::Instant::now();
    let printed = eventually(Duration::from_secs(10), || async {
        binary
            .stdout()
            .contains("span \"GET /index\"")
            .then(|| answered.elapsed())
    })
    .await
    .expect("the span is printed");
    let _ = std::fs::remove_dir_all(&logs);

    assert!(
        printed < Duration::from_secs(1),
        "printed after {printed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_log_records_follow_otel_exporter_to_the_console_and_name_their_span() {
    let logs = std::env::temp_dir().join(format!("pma-console-logs-{}", std::process::id()));
    // No OTEL_LOGS_EXPORTER: the logs follow OTEL_EXPORTER, as the other signals do.
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "console"),
        ("LOG_TO_STDOUT", "false"),
        ("LOG_DIR", logs.to_str().unwrap()),
    ]);
    let client = reqwest::Client::new();

    get(&client, &binary, "/do_task?seconds=0", true).await;
    client.get(binary.url("/missing")).send().await.unwrap();
    let stdout = terminate(binary).await;
    let _ = std::fs::remove_dir_all(&logs);

    let lines: Vec<CompactLine> = stdout
        .lines()
        .map(|line| CompactLine::parse(line).unwrap_or_else(|| panic!("unreadable: {line}")))
        .collect();
    let span = lines
        .iter()
        .find(|l| l.record == "span" && l.name == "GET /do_task")
        .unwrap_or_else(|| panic!("{stdout}"));
    let records: Vec<&CompactLine> = lines.iter().filter(|l| l.record == "log").collect();
    let access = |body: &str| {
        records
            .iter()
            .find(|r| {
                r.get("scope") == Some("access")
                    && r.get("body").is_some_and(|b| b.starts_with(body))
            })
            .unwrap_or_else(|| panic!("no access record {body} in {stdout}"))
    };
    let task = access("GET /do_task 200 ");
    assert_eq!(task.name, "INFO", "the severity");
    assert_eq!(task.get("trace_id"), Some(TRACE_ID));
    assert_eq!(task.get("span_id"), span.get("span_id"));
    let attributes = task.attributes("body");
    for expected in [
        ("http.request.method", "GET"),
        ("url.path", "/do_task"),
        ("http.route", "/do_task"),
        ("http.response.status_code", "200"),
        ("client.address", "127.0.0.1"),
    ] {
        assert!(attributes.contains(&expected), "{expected:?} in {task:?}");
    }
    assert_eq!(access("GET /missing 404 ").name, "WARN");
    let started = records
        .iter()
        .find(|r| r.get("body") == Some("prom-metrics-app started"))
        .expect("the start event as a record");
    assert_eq!(started.get("trace_id"), None, "outside any request");
    assert_eq!(
        started
            .attributes("body")
            .iter()
            .find(|(k, _)| *k == "logs_exporter"),
        Some(&("logs_exporter", "console"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_json_log_records_are_one_json_line_per_export() {
    let logs = std::env::temp_dir().join(format!("pma-json-logs-{}", std::process::id()));
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "console"),
        ("CONSOLE_FORMAT", "otlp-json"),
        ("LOG_TO_STDOUT", "false"),
        ("LOG_DIR", logs.to_str().unwrap()),
    ]);
    let client = reqwest::Client::new();

    get(&client, &binary, "/", true).await;
    let stdout = terminate(binary).await;
    let _ = std::fs::remove_dir_all(&logs);

    let exports = json_lines(&stdout);
    let records: Vec<&Value> = exports
        .iter()
        .flat_map(|e| e["resourceLogs"].as_array().into_iter().flatten())
        .flat_map(|r| r["scopeLogs"].as_array().into_iter().flatten())
        .filter(|s| s["scope"]["name"] == "access")
        .flat_map(|s| s["logRecords"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(records.len(), 1, "{stdout}");
    let record = records[0];
    assert_eq!(record["traceId"], TRACE_ID);
    assert!(is_hex(record["spanId"].as_str().unwrap(), 16), "{record}");
    assert_eq!(record["severityNumber"], 9);
    assert_eq!(record["severityText"], "INFO");
    assert_eq!(record["timeUnixNano"], record["observedTimeUnixNano"]);
    assert!(
        record["timeUnixNano"]
            .as_str()
            .is_some_and(|t| t.len() >= 19)
    );
    assert!(
        record["body"]["stringValue"]
            .as_str()
            .unwrap()
            .starts_with("GET / 200 ")
    );
    assert_eq!(
        attribute(&record["attributes"], "http.response.status_code"),
        Some(&serde_json::json!({"intValue": "200"}))
    );
    let started = exports
        .iter()
        .flat_map(|e| {
            e["resourceLogs"][0]["scopeLogs"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .flat_map(|s| s["logRecords"].as_array().into_iter().flatten())
        .find(|r| r["body"]["stringValue"] == "prom-metrics-app started")
        .expect("the start record");
    assert!(started.get("traceId").is_none(), "no empty ids: {started}");
}
