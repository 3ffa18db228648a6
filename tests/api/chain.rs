//! `GET /chain` across instances: one trace through every service, client spans and the client
//! histogram, failures (502), timeouts and loops (508), and the settings that drive it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{http::HeaderMap, routing::get};
use prom_metrics_app::{
    config::{Config, Downstreams, Propagator, Propagators},
    http::counted_routes,
};
use serde_json::Value;

use crate::{
    helpers::{
        Binary, binary_command, free_port, parse_exposition, spawn_app, spawn_app_configured,
        spawn_binary, value,
    },
    otel::terminate,
    otlp::{self, SpanView},
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const SPAN_KIND_SERVER: i32 = 2;
const SPAN_KIND_CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

/// Starts the binary as service `name`, calling `downstreams` (comma-separated) from `/chain`.
fn spawn_instance(name: &str, downstreams: &str, extra: &[(&str, &str)]) -> Binary {
    let mut env = vec![("OTEL_SERVICE_NAME", name), ("DOWNSTREAM_URL", downstreams)];
    env.extend_from_slice(extra);
    spawn_binary(&env)
}

/// `GET url` asking for the JSON report: the status, the report and the time it took.
async fn get_report(url: &str, headers: &[(&str, &str)]) -> (u16, Value, Duration) {
    let mut request = reqwest::Client::new()
        .get(url)
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let start = Instant::now();
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let elapsed = start.elapsed();
    let report = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, report, elapsed)
}

async fn metrics_of(binary: &Binary) -> String {
    reqwest::get(binary.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The one span of `kind` that `service` made for `/chain` (scrapes left out).
fn the_span<'a>(spans: &'a [SpanView], service: &str, kind: i32) -> &'a SpanView {
    let found: Vec<&SpanView> = spans
        .iter()
        .filter(|s| {
            s.kind == kind
                && s.name != "GET /metrics"
                && s.resource.get("service.name").map(String::as_str) == Some(service)
        })
        .collect();
    assert_eq!(found.len(), 1, "{service} kind {kind}: {spans:#?}");
    found[0]
}

fn assert_client_attributes(span: &SpanView, port: u16, status: &str) {
    assert_eq!(span.name, "GET");
    let expected = HashMap::from([
        ("http.request.method", "GET".to_string()),
        ("server.address", "127.0.0.1".to_string()),
        ("server.port", format!("int:{port}")),
        ("url.full", format!("http://127.0.0.1:{port}/chain")),
        ("http.response.status_code", status.to_string()),
        ("network.protocol.version", "1.1".to_string()),
    ]);
    let actual: HashMap<&str, String> = span
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(actual, expected, "{span:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_makes_one_trace_across_three_services_with_client_spans() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let otlp = [
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ];
    let c = spawn_instance("c", "", &otlp);
    let b = spawn_instance("b", &c.url(""), &otlp);
    let a = spawn_instance("a", &b.url(""), &otlp);
    let (b_port, c_port) = (b.address.port(), c.address.port());

    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (status, report, _) = get_report(&a.url("/chain"), &[("traceparent", &traceparent)]).await;
    for instance in [a, b, c] {
        terminate(instance).await;
    }

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["service"], "a");
    let b_hop = &report["calls"][0]["hop"];
    assert_eq!(report["calls"][0]["status"], 200);
    assert_eq!(b_hop["service"], "b");
    assert_eq!(b_hop["path"], serde_json::json!([report["instance"]]));
    assert_eq!(b_hop["calls"][0]["hop"]["service"], "c");
    assert_eq!(b_hop["calls"][0]["hop"]["calls"], serde_json::json!([]));

    let spans = received.spans();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == TRACE_ID), "{spans:#?}");
    let a_server = the_span(&spans, "a", SPAN_KIND_SERVER);
    let a_client = the_span(&spans, "a", SPAN_KIND_CLIENT);
    let b_server = the_span(&spans, "b", SPAN_KIND_SERVER);
    let b_client = the_span(&spans, "b", SPAN_KIND_CLIENT);
    let c_server = the_span(&spans, "c", SPAN_KIND_SERVER);
    assert_eq!(a_server.parent_span_id, PARENT_ID);
    assert_eq!(a_client.parent_span_id, a_server.span_id);
    assert_eq!(b_server.parent_span_id, a_client.span_id);
    assert_eq!(b_client.parent_span_id, b_server.span_id);
    assert_eq!(c_server.parent_span_id, b_client.span_id);
    for server in [a_server, b_server, c_server] {
        assert_eq!(server.name, "GET /chain");
        assert_eq!(server.attributes["http.response.status_code"], "int:200");
    }
    assert_client_attributes(a_client, b_port, "int:200");
    assert_client_attributes(b_client, c_port, "int:200");
    assert_eq!((a_client.status_code, b_client.status_code), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_histogram_is_on_metrics_and_chain_is_counted_once_per_request() {
    let b = spawn_instance("b", "", &[]);
    let a = spawn_instance("a", &b.url(""), &[]);
    let b_port = b.address.port();

    let page = reqwest::get(a.url("/chain")).await.unwrap();
    let (status, page) = (page.status(), page.text().await.unwrap());
    let a_metrics = metrics_of(&a).await;
    let b_metrics = metrics_of(&b).await;

    assert_eq!(status, 200);
    assert!(page.contains("<h1>Chain: 200 OK</h1>"), "{page}");
    assert!(
        page.contains(&format!("http://127.0.0.1:{b_port}/chain")),
        "{page}"
    );
    let labels = format!(
        "http_request_method=\"GET\",server_address=\"127.0.0.1\",server_port=\"{b_port}\",url_scheme=\"http\",http_response_status_code=\"200\""
    );
    let parsed = parse_exposition(&a_metrics);
    assert_eq!(
        value(
            &parsed,
            &format!("http_client_request_duration_seconds_count{{{labels}}}")
        ),
        1.0,
        "{a_metrics}"
    );
    let bounds: Vec<&str> = a_metrics
        .lines()
        .filter(|l| l.starts_with("http_client_request_duration_seconds_bucket{"))
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        bounds,
        [
            "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5",
            "5", "7.5", "10", "+Inf"
        ]
    );
    assert_eq!(value(&parsed, "http_requests_total"), 1.0);
    assert_eq!(
        value(
            &parsed,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/chain\",http_response_status_code=\"200\",url_scheme=\"http\"}"
        ),
        1.0
    );
    let b_parsed = parse_exposition(&b_metrics);
    assert_eq!(value(&b_parsed, "http_requests_total"), 1.0);
    assert!(
        !b_metrics.contains("http_client_request_duration_seconds_count"),
        "a leaf calls nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_otel_backend_calls_feed_http_client_request_duration() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let b = spawn_instance("b", "", &[]);
    let a = spawn_instance(
        "a",
        &b.url(""),
        &[
            ("METRICS_BACKEND", "otel"),
            ("OTEL_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ],
    );
    let b_port = b.address.port();

    let (status, _, _) = get_report(&a.url("/chain"), &[]).await;
    terminate(a).await;

    assert_eq!(status, 200);
    let (unit, points) = received
        .histogram("http.client.request.duration")
        .expect("http.client.request.duration was exported");
    assert_eq!(unit, "s");
    let expected = HashMap::from([
        ("http.request.method".to_string(), "GET".to_string()),
        ("server.address".to_string(), "127.0.0.1".to_string()),
        ("server.port".to_string(), format!("int:{b_port}")),
        ("url.scheme".to_string(), "http".to_string()),
        (
            "http.response.status_code".to_string(),
            "int:200".to_string(),
        ),
    ]);
    assert_eq!(points, vec![(expected, 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_that_is_down_gives_502_and_an_error_client_span() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let down = format!("http://127.0.0.1:{}", free_port());
    let a = spawn_instance(
        "a",
        &down,
        &[
            ("OTEL_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ],
    );

    let page = reqwest::get(a.url("/chain")).await.unwrap();
    let (status, page) = (page.status(), page.text().await.unwrap());
    let metrics = metrics_of(&a).await;
    terminate(a).await;

    assert_eq!(status, 502);
    assert!(
        page.contains(&format!("{down}/chain: cannot connect")),
        "names the downstream and the cause: {page}"
    );
    let spans = received.spans();
    let client = the_span(&spans, "a", SPAN_KIND_CLIENT);
    assert_eq!(client.status_code, STATUS_ERROR);
    assert_eq!(client.attributes["error.type"], "connection_failed");
    assert!(!client.attributes.contains_key("http.response.status_code"));
    let server = the_span(&spans, "a", SPAN_KIND_SERVER);
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(server.attributes["http.response.status_code"], "int:502");
    assert_eq!(server.status_code, STATUS_ERROR);
    assert!(
        metrics.contains("url_scheme=\"http\",error_type=\"connection_failed\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        value(&parse_exposition(&metrics), "http_error_5xx_total"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_that_hangs_gives_502_within_the_timeout() {
    let silent = otlp::silent_listener().await;
    let a = spawn_binary(&[
        ("DOWNSTREAM_URL", &format!("http://{silent}")),
        ("DOWNSTREAM_TIMEOUT", "500ms"),
    ]);

    let (status, report, elapsed) = get_report(&a.url("/chain"), &[]).await;
    let metrics = metrics_of(&a).await;

    assert_eq!(status, 502, "{report}");
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(
        report["reason"],
        format!("http://{silent}/chain: timed out after 500ms (DOWNSTREAM_TIMEOUT)")
    );
    assert!(report["calls"][0].get("status").is_none(), "{report}");
    assert!(
        metrics.contains(&format!(
            "server_address=\"127.0.0.1\",server_port=\"{}\",url_scheme=\"http\",error_type=\"timeout\"",
            silent.port()
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loop_between_two_instances_is_answered_508_quickly() {
    let (a_port, b_port) = (free_port(), free_port());
    let a_listen = format!("127.0.0.1:{a_port}");
    let b_listen = format!("127.0.0.1:{b_port}");
    let a = spawn_instance(
        "a",
        &format!("http://{b_listen}"),
        &[("LISTEN_ADDR", &a_listen)],
    );
    let _b = spawn_instance(
        "b",
        &format!("http://{a_listen}"),
        &[("LISTEN_ADDR", &b_listen)],
    );

    let (status, report, elapsed) = get_report(&a.url("/chain"), &[]).await;
    let page = reqwest::get(a.url("/chain")).await.unwrap();
    let (page_status, page) = (page.status(), page.text().await.unwrap());

    assert_eq!(status, 508, "{report}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let a_id = report["instance"].as_str().unwrap();
    let b_hop = &report["calls"][0]["hop"];
    let again = &b_hop["calls"][0]["hop"];
    assert_eq!(
        (b_hop["service"].as_str(), b_hop["status"].as_u64()),
        (Some("b"), Some(508))
    );
    assert_eq!(again["instance"], a_id, "the loop came back to a");
    assert_eq!(again["calls"], serde_json::json!([]), "and stopped there");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("loop detected") && reason.contains(&format!("{a_id} -> ")),
        "{reason}"
    );
    assert_eq!(page_status, 508);
    assert!(page.contains("508 Loop Detected"), "{page}");
}

#[tokio::test]
async fn without_downstreams_chain_answers_200_with_its_own_hop_only() {
    let app = spawn_app().await;

    let (status, report, _) = get_report(&app.url("/chain"), &[]).await;
    let page = app.get("/chain").await;
    let (page_status, page) = (page.status(), page.text().await.unwrap());
    let metrics = app.metrics().await;

    assert_eq!(status, 200);
    assert_eq!(report["service"], "prom-metrics-app");
    assert_eq!(report["instance"], app.state.chain.instance());
    assert_eq!(report["calls"], serde_json::json!([]));
    assert_eq!(page_status, 200);
    assert!(page.contains(app.state.chain.instance()), "{page}");
    assert!(!page.contains("http://"), "{page}");
    assert_eq!(value(&metrics, "http_requests_total"), 2.0);
    assert_eq!(value(&metrics, "http_successful_request_total"), 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_that_holds_this_instance_or_is_full_is_answered_508() {
    let app = spawn_app().await;
    let own = app.state.chain.instance().to_string();
    let full: Vec<String> = (0..8).map(|i| format!("other{i}")).collect();

    let (looped, looped_report, _) = get_report(
        &app.url("/chain"),
        &[("x-chain-path", &format!("x1,{own}"))],
    )
    .await;
    let (deep, deep_report, _) =
        get_report(&app.url("/chain"), &[("X-Chain-Path", &full.join(","))]).await;
    let malformed = app
        .client
        .get(app.url("/chain"))
        .header("x-chain-path", "a b")
        .send()
        .await
        .unwrap();

    assert_eq!(looped, 508);
    assert_eq!(
        looped_report["reason"],
        format!(
            "loop detected: instance {own} (prom-metrics-app) is already on the path x1 -> {own}"
        )
    );
    assert_eq!(deep, 508);
    assert!(
        deep_report["reason"]
            .as_str()
            .unwrap()
            .contains("8 instances"),
        "{deep_report}"
    );
    assert_eq!(malformed.status(), 400);
}

/// A downstream that is not an instance: records the headers it gets and answers `body`.
async fn recording_downstream(body: &'static str) -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/base/chain",
        get(move |headers: HeaderMap| async move {
            recorded.lock().unwrap().push(headers);
            body
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/base/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn config_calling(url: &str, propagators: Vec<Propagator>) -> Config {
    let mut config = Config::defaults();
    config.downstream_url = Downstreams(vec![url.parse().unwrap()]);
    config.otel_propagators = Propagators(propagators);
    config
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn calls_carry_the_configured_propagation_headers_and_the_path() {
    let (url, seen) = recording_downstream("not a chain report").await;
    let app = spawn_app_configured(
        config_calling(&url, vec![Propagator::TraceContext]),
        counted_routes(),
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");

    let (status, report, _) =
        get_report(&app.url("/chain"), &[("traceparent", &traceparent)]).await;

    assert_eq!(status, 200, "a 2xx from any server is a success: {report}");
    assert_eq!(report["calls"][0]["url"], format!("{url}chain"));
    assert!(report["calls"][0].get("hop").is_none(), "{report}");
    let seen = seen.lock().unwrap();
    let headers = &seen[0];
    let sent = header(headers, "traceparent").expect("a traceparent");
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");
    assert!(!sent.contains(PARENT_ID), "the parent is the client span");
    assert!(sent.ends_with("-01"));
    assert_eq!(
        header(headers, "x-chain-path"),
        Some(app.state.chain.instance())
    );
    assert_eq!(header(headers, "accept"), Some("application/json"));
    assert!(
        header(headers, "user-agent").is_some_and(|ua| ua.starts_with("prom-metrics-app/")),
        "{headers:?}"
    );
}

#[tokio::test]
async fn b3_propagation_is_used_for_calls_when_chosen() {
    let (url, seen) = recording_downstream("{}").await;
    let app = spawn_app_configured(
        config_calling(&url, vec![Propagator::B3Multi]),
        counted_routes(),
    )
    .await;

    let response = app
        .client
        .get(app.url("/chain"))
        .header("X-B3-TraceId", TRACE_ID)
        .header("X-B3-SpanId", PARENT_ID)
        .header("X-B3-Sampled", "1")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let seen = seen.lock().unwrap();
    let headers = &seen[0];
    assert_eq!(header(headers, "x-b3-traceid"), Some(TRACE_ID));
    assert_eq!(header(headers, "x-b3-sampled"), Some("1"));
    assert!(header(headers, "x-b3-spanid").is_some_and(|id| id != PARENT_ID));
    assert!(header(headers, "traceparent").is_none(), "{headers:?}");
}

#[test]
fn invalid_downstream_settings_stop_the_start_with_code_2_naming_them() {
    for (variable, bad, valid) in [
        ("DOWNSTREAM_URL", "ftp://b:21", "http:// or https://"),
        (
            "DOWNSTREAM_URL",
            "http://b:5000,b:5000",
            "http:// or https://",
        ),
        ("DOWNSTREAM_TIMEOUT", "0s", "1ms to 60s"),
        ("DOWNSTREAM_TIMEOUT", "soon", "1ms to 60s"),
    ] {
        let output = binary_command()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env(variable, bad)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);

        assert_eq!(output.status.code(), Some(2), "{variable}={bad}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        assert!(stderr.contains(&format!("'{bad}'")), "{stderr}");
        assert!(stderr.contains(valid), "{stderr}");
    }
}
