//! Log records over OTLP, end to end: the real binary exports to the receiver built on the
//! official protos, over gRPC and HTTP, and every access record is checked against the server
//! span it belongs to and the requests counted.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use super::{TRACE_ID, terminate, traceparent};
use crate::{
    helpers::{Binary, eventually, get_text, parse_exposition, spawn_binary, value},
    otlp::{self, Received, RecordView, SpanView},
};

/// The routes counted by the original's rule; a request that matched none is counted too.
const COUNTED: [&str; 5] = ["/", "/index", "/do_task", "/chain", "/status/{code}"];

/// Sends a known mix: pages, tasks (one continuing a caller's trace), 404s, 4xx and 5xx on
/// purpose, an uncounted page, probes and scrapes. Returns the requests sent.
async fn send_known_mix(binary: &Binary) -> usize {
    let client = reqwest::Client::new();
    let mut sent = 0;
    let mut get = |path: String| {
        sent += 1;
        client.get(binary.url(&path)).send()
    };
    for _ in 0..6 {
        get("/".into()).await.unwrap();
    }
    for i in 0..3 {
        get(format!("/missing/{i}")).await.unwrap();
    }
    for status in [404, 418, 500, 503] {
        get(format!("/status/{status}")).await.unwrap();
    }
    for probe in ["/healthz", "/readyz", "/metrics", "/healthz"] {
        get(probe.into()).await.unwrap();
    }
    get("/view_metrics".into()).await.unwrap();
    get("/do_task?seconds=0".into()).await.unwrap();
    let task = client
        .get(binary.url("/do_task?seconds=0.01"))
        .header("traceparent", traceparent())
        .header("user-agent", "logs-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), 200);
    let posted = client.post(binary.url("/index")).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    sent + 2
}

fn otlp_logs_env<'a>(endpoint: &'a str, protocol: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
    ]
}

/// `http_requests_total` as the app counts it.
async fn counted(binary: &Binary) -> f64 {
    let text = get_text(&reqwest::Client::new(), &binary.url("/metrics"))
        .await
        .unwrap();
    value(&parse_exposition(&text), "http_requests_total")
}

/// The access records, by span id; fails on a span id seen twice.
fn access_records(received: &Received) -> HashMap<String, RecordView> {
    let mut records = HashMap::new();
    for record in received
        .records()
        .into_iter()
        .filter(|r| r.scope == "access")
    {
        let span_id = record.span_id.clone();
        if let Some(earlier) = records.insert(span_id.clone(), record) {
            panic!("two access records for span {span_id}: {earlier:?}");
        }
    }
    records
}

/// Checks every access record against its server span and the access line in the log.
fn assert_records_match_spans(received: &Received, stdout: &str) -> HashMap<String, RecordView> {
    let spans: HashMap<String, SpanView> = received
        .spans()
        .into_iter()
        .filter(|s| s.kind == 2)
        .map(|s| (s.span_id.clone(), s))
        .collect();
    let records = access_records(received);

    let span_ids: HashSet<&String> = spans.keys().collect();
    let record_ids: HashSet<&String> = records.keys().collect();
    assert_eq!(record_ids, span_ids, "one access record per server span");
    for (span_id, record) in &records {
        let span = &spans[span_id];
        assert_eq!(record.trace_id, span.trace_id, "{record:?}");
        assert_eq!(record.flags & 0xff, 1, "sampled: {record:?}");
        for key in [
            "http.request.method",
            "url.path",
            "http.response.status_code",
            "client.address",
        ] {
            assert_eq!(
                record.attributes.get(key),
                span.attributes.get(key),
                "{key}"
            );
        }
        assert_eq!(
            record.attributes.get("http.route"),
            span.attributes.get("http.route")
        );
        assert_eq!(
            record.attributes.get("user_agent.original"),
            span.attributes.get("user_agent.original")
        );
        let status: u16 = span.attributes["http.response.status_code"]
            .trim_start_matches("int:")
            .parse()
            .unwrap();
        let severity = match status {
            500.. => (17, "ERROR"),
            400..500 => (13, "WARN"),
            _ => (9, "INFO"),
        };
        assert_eq!(
            (record.severity_number, record.severity_text.as_str()),
            severity,
            "{record:?}"
        );
        assert!(
            record.attributes["http.server.request.duration"]
                .parse::<f64>()
                .is_ok_and(|d| (0.0..5.0).contains(&d)),
            "{record:?}"
        );
        assert!(record.time_unix_nano > 1_700_000_000_000_000_000);
        assert_eq!(record.observed_time_unix_nano, record.time_unix_nano);
        assert_eq!(
            record.resource.get("service.name").map(String::as_str),
            Some("prom-metrics-app")
        );
        let line = stdout
            .lines()
            .find(|l| l.contains("access: ") && l.ends_with(&format!("span_id={span_id}")))
            .unwrap_or_else(|| panic!("no access line for {span_id}"));
        let summary = line
            .split("access: ")
            .nth(1)
            .and_then(|rest| rest.split(" trace_id=").next())
            .unwrap();
        assert_eq!(record.body, summary, "the body is the access line's");
    }
    records
}

fn is_counted(record: &RecordView) -> bool {
    record
        .attributes
        .get("http.route")
        .is_none_or(|route| COUNTED.contains(&route.as_str()))
}

fn probes(records: &HashMap<String, RecordView>) -> usize {
    records
        .values()
        .filter(|r| {
            ["/healthz", "/readyz", "/metrics"].contains(&r.attributes["url.path"].as_str())
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn over_grpc_each_counted_request_has_one_access_record_with_its_span_s_ids() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&otlp_logs_env(&endpoint, "grpc"));

    send_known_mix(&binary).await;
    let total = counted(&binary).await;
    let stdout = terminate(binary).await;

    let records = assert_records_match_spans(&received, &stdout);
    let counted_records = records.values().filter(|r| is_counted(r)).count();
    assert_eq!(counted_records as f64, total, "records of counted requests");
    assert_eq!(total, 16.0);
    assert_eq!(probes(&records), 0, "probes and scrapes are not traced");
    assert!(
        records
            .values()
            .any(|r| r.attributes.get("http.route") == Some(&"/view_metrics".to_string())),
        "an uncounted page that is traced has its record"
    );
    assert_eq!(
        records
            .values()
            .filter(
                |r| r.attributes.get("user_agent.original") == Some(&"logs-test/1.0".to_string())
            )
            .map(|r| r.trace_id.as_str())
            .collect::<Vec<_>>(),
        [TRACE_ID],
        "the caller's trace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_http_probes_and_scrapes_get_records_when_they_get_spans() {
    let (address, received) = otlp::start_http().await;
    let endpoint = format!("http://{address}");
    let mut env = otlp_logs_env(&endpoint, "http/protobuf");
    env.push(("TRACES_EXCLUDED_PATHS", "none"));
    let binary = spawn_binary(&env);

    let sent = send_known_mix(&binary).await;
    let total = counted(&binary).await;
    let stdout = terminate(binary).await;

    let records = assert_records_match_spans(&received, &stdout);
    let counted_records = records.values().filter(|r| is_counted(r)).count();
    assert_eq!(counted_records as f64, total);
    assert_eq!(
        records.len(),
        sent + 1,
        "every request, the last scrape too"
    );
    assert_eq!(
        probes(&records),
        5,
        "four probes and scrapes, and the last scrape"
    );
    assert!(
        received.paths().iter().any(|p| p == "/v1/logs"),
        "{:?}",
        received.paths()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_logs_its_start_and_end_inside_its_child_span() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&otlp_logs_env(&endpoint, "grpc"));

    let task = reqwest::Client::new()
        .get(binary.url("/do_task?seconds=0.05"))
        .header("traceparent", traceparent())
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), 200);
    terminate(binary).await;

    let spans = received.spans();
    let work = spans.iter().find(|s| s.name == "do_task work").unwrap();
    let records = received.records();
    let task_records: Vec<&RecordView> = records
        .iter()
        .filter(|r| r.body.starts_with("task "))
        .collect();
    let bodies: Vec<&str> = task_records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["task started", "task finished"]);
    for record in &task_records {
        assert_eq!(record.trace_id, TRACE_ID);
        assert_eq!(record.span_id, work.span_id, "inside the child span");
        assert_eq!(record.severity_text, "INFO");
        assert_eq!(
            record.attributes.get("task.seconds").map(String::as_str),
            Some("0.05")
        );
        assert_eq!(
            record.scope, "prom_metrics_app::http::pages",
            "the event's target"
        );
    }
    assert!(task_records[0].time_unix_nano < task_records[1].time_unix_nano);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_s_own_events_become_records_with_their_fields_as_attributes() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&otlp_logs_env(&endpoint, "grpc"));
    let listening = binary.address.to_string();

    reqwest::Client::new()
        .put(binary.url("/api/chaos"))
        .header("content-type", "application/json")
        .body(r#"{"error_rate": 0.5}"#)
        .send()
        .await
        .unwrap();
    terminate(binary).await;

    let records = received.records();
    let started = records
        .iter()
        .find(|r| r.body == "prom-metrics-app started")
        .unwrap_or_else(|| panic!("no start record in {records:#?}"));
    assert_eq!(started.attributes.get("address"), Some(&listening));
    assert_eq!(
        started.attributes.get("logs_exporter").map(String::as_str),
        Some("otlp")
    );
    assert_eq!(started.trace_id, "", "outside any request");
    assert!(
        records
            .iter()
            .any(|r| r.body.contains("chaos") && r.attributes.contains_key("error_rate")),
        "the chaos change: {records:#?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.body.starts_with("listener closed")),
        "a step of the shutdown: {records:#?}"
    );
    assert!(
        records.iter().all(|r| !r.scope.starts_with("opentelemetry")
            && !r.scope.starts_with("tonic")
            && !r.scope.starts_with("h2")),
        "no record of the exporter's own libraries"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn otel_logs_exporter_none_sends_no_record_while_spans_still_go() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let mut env = otlp_logs_env(&endpoint, "grpc");
    env.push(("OTEL_LOGS_EXPORTER", "none"));
    let binary = spawn_binary(&env);

    reqwest::get(binary.url("/")).await.unwrap();
    terminate(binary).await;

    assert!(received.spans().iter().any(|s| s.name == "GET /"));
    assert!(received.records().is_empty(), "{:?}", received.records());
}

/// Serves `requests` of `/` at concurrency 8 and returns the slowest answer.
async fn serve_fast(binary: &Binary, requests: usize) -> Duration {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), binary.url("/"));
        tasks.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for _ in 0..requests / 8 {
                let start = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                slowest = slowest.max(start.elapsed());
            }
            slowest
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.unwrap());
    }
    slowest
}

/// Polls `/metrics` until `series` is at least `least`; returns the exposition.
async fn metrics_once(binary: &Binary, series: &str, least: f64) -> Option<HashMap<String, f64>> {
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let text = get_text(&client, &binary.url("/metrics")).await?;
        let metrics = parse_exposition(&text);
        (value(&metrics, series) >= least).then_some(metrics)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_collector_costs_requests_nothing_and_its_lost_records_are_counted() {
    let port = crate::helpers::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
    ]);

    let slowest = serve_fast(&binary, 800).await;
    let metrics = metrics_once(
        &binary,
        "prom_metrics_app_telemetry_failed_log_records_total",
        800.0,
    )
    .await
    .expect("the records of the failed exports are counted");
    let warned = eventually(Duration::from_secs(10), || async {
        let out = binary.stdout();
        out.lines()
            .find(|l| l.contains("telemetry is being lost") && l.contains("failed_log_records="))
            .map(str::to_string)
    })
    .await;
    terminate(binary).await;

    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?}"
    );
    assert_eq!(value(&metrics, "http_requests_total"), 800.0);
    assert_eq!(
        value(
            &metrics,
            "prom_metrics_app_telemetry_dropped_log_records_total"
        ),
        0.0
    );
    assert_eq!(
        value(&metrics, "prom_metrics_app_telemetry_failed_spans_total"),
        0.0,
        "spans go nowhere"
    );
    assert!(warned.is_some(), "a warning names the lost records");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_collector_fills_the_queue_and_the_dropped_records_are_counted() {
    let address = otlp::silent_listener().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "64"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
    ]);

    let slowest = serve_fast(&binary, 800).await;
    let metrics = metrics_once(
        &binary,
        "prom_metrics_app_telemetry_dropped_log_records_total",
        1.0,
    )
    .await
    .expect("the dropped records are counted");
    terminate(binary).await;

    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?}"
    );
    let dropped = value(
        &metrics,
        "prom_metrics_app_telemetry_dropped_log_records_total",
    );
    assert!(
        (800.0 - 64.0..=800.0).contains(&dropped),
        "{dropped} of 800 records dropped with a queue of 64"
    );
}
