//! `/metrics` in every format, checked by promtool, by an independent OpenMetrics parser and by
//! the protobuf format's own message types.

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;
use prost::Message;

use crate::helpers::{run_with_stdin, spawn_app, value};

/// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
pub const PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test]
async fn metrics_serves_text_004_by_default() {
    let app = spawn_app().await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("# TYPE http_requests_total counter"));
    assert!(!body.contains("# EOF"));
}

#[tokio::test]
async fn metrics_serves_openmetrics_when_asked() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/metrics"))
        .header("accept", OPENMETRICS)
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("# TYPE http_requests counter"));
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_serves_protobuf_with_native_and_classic_buckets_when_asked() {
    let app = spawn_app().await;
    app.get("/").await;
    app.get("/missing").await;

    let response = app
        .client
        .get(app.url("/metrics"))
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    );
    let body = response.bytes().await.unwrap();
    let mut rest = &body[..];
    let mut families = Vec::new();
    while !rest.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut rest).unwrap());
    }
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let processing = family("request_processing_seconds").metric[0]
        .histogram
        .clone()
        .unwrap();
    assert_eq!(processing.sample_count, 2);
    assert_eq!(processing.schema, 3);
    assert_eq!(processing.bucket.len(), 15, "the classic buckets too");
    assert!(!processing.positive_span.is_empty());
    let series = &family("http_server_request_duration_seconds").metric;
    assert_eq!(series.len(), 2);
    assert!(
        series
            .iter()
            .all(|m| m.histogram.as_ref().unwrap().schema == 3)
    );
    assert_eq!(
        family("http_requests_total").metric[0]
            .counter
            .as_ref()
            .unwrap()
            .value,
        2.0
    );
}

#[tokio::test]
async fn process_and_build_metrics_are_exported() {
    let app = spawn_app().await;

    let metrics = app.metrics().await;

    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(metrics.contains_key(name), "{name} missing");
    }
    assert!(value(&metrics, "process_resident_memory_bytes") > 1e6);
    let build = metrics
        .keys()
        .find(|k| k.starts_with("prom_metrics_app_build_info{"))
        .expect("build info");
    assert!(
        build.contains(&format!("version=\"{}\"", prom_metrics_app::VERSION)),
        "{build}"
    );
    assert!(build.contains("revision=\""), "{build}");
}

#[tokio::test]
async fn promtool_finds_no_problem_in_the_text_format() {
    let app = spawn_app().await;
    app.get("/").await;
    app.get("/missing").await;
    app.get("/do_task?seconds=0").await;

    let body = app.get("/metrics").await.text().await.unwrap();
    let output = run_with_stdin("promtool", &["check", "metrics"], &body);

    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool: {report}");
    assert!(report.trim().is_empty(), "promtool reported: {report}");
}

#[tokio::test]
async fn an_independent_parser_accepts_the_openmetrics_exposition() {
    let app = spawn_app().await;
    app.get("/").await;
    app.get("/missing").await;

    let body = app
        .client
        .get(app.url("/metrics"))
        .header("accept", OPENMETRICS)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The strict OpenMetrics parser of the Python prometheus-client; prints family names and types.
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(family.name, family.type, sample.name, sample.value)
"#;
    let output = run_with_stdin("python3", &["-c", script], &body);

    let parsed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "parser rejected the exposition: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        parsed.contains("http_requests counter http_requests_total 2"),
        "{parsed}"
    );
    assert!(
        parsed.contains("http_error_4xx counter http_error_4xx_total 1"),
        "{parsed}"
    );
    assert!(
        parsed.contains("request_processing_seconds histogram request_processing_seconds_count 2"),
        "{parsed}"
    );
    assert!(
        parsed.contains("http_server_request_duration_seconds histogram"),
        "{parsed}"
    );
    assert!(
        parsed.contains("process_resident_memory_bytes gauge"),
        "{parsed}"
    );
}
