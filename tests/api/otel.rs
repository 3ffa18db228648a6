//! OpenTelemetry end to end: the real binary exports to a real OTLP receiver over gRPC and HTTP.

use std::{collections::HashMap, time::Duration};

use crate::{
    helpers::{Binary, eventually, spawn_binary},
    otlp::{self, Received},
};

mod console;
mod environment;
mod logs;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// Sends the standard mix: one traced `/do_task`, two home pages, one unknown path.
async fn send_mix(binary: &Binary) {
    let client = reqwest::Client::new();
    let task = client
        .get(binary.url("/do_task?seconds=0.05"))
        .header("traceparent", traceparent())
        .header("user-agent", "otel-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), 200);
    for path in ["/", "/index", "/missing"] {
        client.get(binary.url(path)).send().await.unwrap();
    }
}

/// SIGTERM, then waits for exit code 0: everything the receiver has came from the shutdown flush
/// (the export interval and batch delay are far longer than the test).
pub async fn terminate(mut binary: Binary) -> String {
    binary.signal(libc::SIGTERM);
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(20));
        (code, binary.stdout())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stdout}");
    stdout
}

fn span<'a>(spans: &'a [otlp::SpanView], name: &str) -> &'a otlp::SpanView {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn assert_exported_mix(received: &Received, port: u16, stdout: &str) {
    let spans = received.spans();

    let server = span(&spans, "GET /do_task");
    assert_eq!(server.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(server.trace_id, TRACE_ID, "continues the caller's trace");
    assert_eq!(server.parent_span_id, PARENT_ID);
    let expected: HashMap<&str, String> = HashMap::from([
        ("http.request.method", "GET".to_string()),
        ("http.route", "/do_task".to_string()),
        ("url.path", "/do_task".to_string()),
        ("url.scheme", "http".to_string()),
        ("http.response.status_code", "int:200".to_string()),
        ("server.address", "127.0.0.1".to_string()),
        ("server.port", format!("int:{port}")),
        ("client.address", "127.0.0.1".to_string()),
        ("user_agent.original", "otel-test/1.0".to_string()),
        ("network.protocol.version", "1.1".to_string()),
    ]);
    for (key, value) in &expected {
        assert_eq!(
            server.attributes.get(*key),
            Some(value),
            "{key} in {:?}",
            server.attributes
        );
    }
    assert_eq!(server.status_code, 0, "unset status for a 200");

    let work = span(&spans, "do_task work");
    assert_eq!(work.trace_id, TRACE_ID);
    assert_eq!(
        work.parent_span_id, server.span_id,
        "the work is a child of the server span"
    );

    let missing = span(&spans, "GET");
    assert_eq!(
        missing
            .attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("int:404")
    );
    assert!(
        !missing.attributes.contains_key("http.route"),
        "no route template for unknown paths"
    );
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name == "GET /" || s.name == "GET /index")
            .count(),
        2
    );

    assert_eq!(
        server.resource.get("service.version").map(String::as_str),
        Some(prom_metrics_app::VERSION)
    );
    assert!(
        server
            .resource
            .get("service.instance.id")
            .is_some_and(|id| id.len() >= 32)
    );

    let access = stdout
        .lines()
        .find(|l| l.contains("access: GET /do_task 200"))
        .expect("an access line");
    assert!(
        access.contains(&format!("trace_id={TRACE_ID} span_id={}", server.span_id)),
        "{access}"
    );

    assert_eq!(received.sum("http_requests"), Some(4));
    assert_eq!(received.sum("http_successful_request"), Some(3));
    assert_eq!(received.sum("http_error_4xx"), Some(1));
    assert!(matches!(received.sum("http_error_5xx"), None | Some(0)));
    let (unit, points) = received
        .histogram("request_processing_seconds")
        .expect("request_processing_seconds");
    assert_eq!(unit, "s");
    assert_eq!(points.iter().map(|(_, count)| count).sum::<u64>(), 4);
    let (unit, points) = received
        .histogram("http.server.request.duration")
        .expect("http.server.request.duration");
    assert_eq!(unit, "s");
    let task_point = points
        .iter()
        .find(|(attributes, _)| {
            attributes.get("http.route").map(String::as_str) == Some("/do_task")
        })
        .expect("a /do_task data point");
    assert_eq!(
        task_point.0.get("http.request.method").map(String::as_str),
        Some("GET")
    );
    assert_eq!(
        task_point
            .0
            .get("http.response.status_code")
            .map(String::as_str),
        Some("int:200")
    );
    assert_eq!(task_point.1, 1);
    let counter = received
        .metrics()
        .into_iter()
        .find(|(m, _)| m.name == "http_requests")
        .unwrap()
        .0;
    assert_eq!(counter.unit, "1");
    assert!(!counter.description.is_empty());
}

fn otlp_env<'a>(endpoint: &'a str, protocol: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret%20value"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_export_carries_spans_metrics_and_resource_flushed_at_shutdown() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&otlp_env(&endpoint, "grpc"));
    let port = binary.address.port();

    send_mix(&binary).await;
    let stdout = terminate(binary).await;

    assert_exported_mix(&received, port, &stdout);
    let spans = received.spans();
    assert_eq!(
        span(&spans, "GET /do_task")
            .resource
            .get("service.name")
            .map(String::as_str),
        Some("prom-metrics-app")
    );
    let headers = received.headers();
    assert!(!headers.is_empty(), "no export arrived");
    assert!(
        headers
            .iter()
            .all(|h| h.get("x-api-key").map(String::as_str) == Some("s3cret value"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_protobuf_export_carries_the_same_with_resource_overrides() {
    let (address, received) = otlp::start_http().await;
    let endpoint = format!("http://{address}");
    let mut env = otlp_env(&endpoint, "http/protobuf");
    env.push((
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=test,service.name=overridden",
    ));
    env.push(("OTEL_SERVICE_NAME", "checkout"));
    let binary = spawn_binary(&env);
    let port = binary.address.port();

    send_mix(&binary).await;
    let stdout = terminate(binary).await;

    assert_exported_mix(&received, port, &stdout);
    let spans = received.spans();
    let resource = &span(&spans, "GET /do_task").resource;
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(
        resource.get("deployment.environment").map(String::as_str),
        Some("test")
    );
    let headers = received.headers();
    assert!(!headers.is_empty());
    assert!(
        headers
            .iter()
            .all(|h| h.get("x-api-key").map(String::as_str) == Some("s3cret value"))
    );
    assert!(
        headers
            .iter()
            .all(|h| h.get("content-type").map(String::as_str) == Some("application/x-protobuf"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_export_reaches_a_receiver_with_a_certificate_from_a_test_ca() {
    let (ca_file, identity) = otlp::test_ca_file();
    let (address, received) = otlp::start_grpc(Some(identity)).await;
    // An http:// URL: OTEL_EXPORTER_OTLP_INSECURE=false still means TLS, as in the original.
    let endpoint = format!("http://localhost:{}", address.port());
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_INSECURE", "false"),
        ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
    ]);

    reqwest::get(binary.url("/")).await.unwrap();
    terminate(binary).await;

    assert!(
        received.spans().iter().any(|s| s.name == "GET /"),
        "{:?}",
        received.spans()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_traceparent_starts_a_new_trace_without_error() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
    ]);

    let response = reqwest::Client::new()
        .get(binary.url("/"))
        .header("traceparent", "00-not-a-trace-id-zz")
        .send()
        .await
        .unwrap();
    terminate(binary).await;

    assert_eq!(response.status(), 200);
    let spans = received.spans();
    let home = span(&spans, "GET /");
    assert_eq!(home.trace_id.len(), 32);
    assert_ne!(home.trace_id, "0".repeat(32));
    assert!(home.parent_span_id.is_empty(), "a root span");
}

#[tokio::test(flavor = "multi_thread")]
async fn b3_headers_continue_the_trace_when_chosen() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_PROPAGATORS", "b3multi"),
    ]);
    let client = reqwest::Client::new();

    client
        .get(binary.url("/"))
        .header("X-B3-TraceId", TRACE_ID)
        .header("X-B3-SpanId", PARENT_ID)
        .header("X-B3-Sampled", "1")
        .send()
        .await
        .unwrap();
    client
        .get(binary.url("/index"))
        .header("traceparent", traceparent())
        .send()
        .await
        .unwrap();
    terminate(binary).await;

    let spans = received.spans();
    assert_eq!(span(&spans, "GET /").trace_id, TRACE_ID);
    assert_eq!(span(&spans, "GET /").parent_span_id, PARENT_ID);
    assert_ne!(
        span(&spans, "GET /index").trace_id,
        TRACE_ID,
        "tracecontext is not among the chosen formats"
    );
}

/// Starts the binary exporting to a fresh in-test receiver, with `OTEL_PROPAGATORS=b3`.
async fn spawn_with_b3_single_header() -> (Binary, Received) {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_PROPAGATORS", "b3"),
    ]);
    (binary, received)
}

async fn get_with_b3(binary: &Binary, path: &str, b3: &str) {
    let response = reqwest::Client::new()
        .get(binary.url(path))
        .header("b3", b3)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_b3_single_header_continues_the_trace_when_chosen() {
    let (binary, received) = spawn_with_b3_single_header().await;

    get_with_b3(&binary, "/", &format!("{TRACE_ID}-{PARENT_ID}-1")).await;
    terminate(binary).await;

    let spans = received.spans();
    assert_eq!(span(&spans, "GET /").trace_id, TRACE_ID);
    assert_eq!(span(&spans, "GET /").parent_span_id, PARENT_ID);
    assert_ne!(
        span(&spans, "GET /").span_id,
        PARENT_ID,
        "the server span gets an id of its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_64_bit_b3_trace_id_becomes_the_left_padded_128_bit_trace_id() {
    let (binary, received) = spawn_with_b3_single_header().await;

    get_with_b3(&binary, "/", &format!("a3ce929d0e0e4736-{PARENT_ID}-1")).await;
    terminate(binary).await;

    let spans = received.spans();
    assert_eq!(
        span(&spans, "GET /").trace_id,
        "0000000000000000a3ce929d0e0e4736"
    );
    assert_eq!(span(&spans, "GET /").parent_span_id, PARENT_ID);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_b3_deny_decision_drops_the_span_and_a_debug_decision_keeps_it() {
    let (binary, received) = spawn_with_b3_single_header().await;
    let debug_trace = "463ac35c9f6413ad48485a3953bb6124";

    get_with_b3(&binary, "/", &format!("{TRACE_ID}-{PARENT_ID}-0")).await;
    get_with_b3(&binary, "/index", &format!("{debug_trace}-{PARENT_ID}-d")).await;
    reqwest::get(binary.url("/missing")).await.unwrap();
    terminate(binary).await;

    let spans = received.spans();
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id != TRACE_ID && s.name != "GET /"),
        "the caller denied sampling: {spans:#?}"
    );
    assert_eq!(
        span(&spans, "GET /index").trace_id,
        debug_trace,
        "debug implies sampled"
    );
    assert!(
        span(&spans, "GET").parent_span_id.is_empty(),
        "a request without B3 headers starts a sampled trace of its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn always_off_sampler_exports_no_spans() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_TRACES_SAMPLER", "always_off"),
        ("METRICS_BACKEND", "otel"),
    ]);

    reqwest::get(binary.url("/")).await.unwrap();
    terminate(binary).await;

    assert!(received.spans().is_empty(), "{:?}", received.spans());
    assert_eq!(received.sum("http_requests"), Some(1), "metrics still flow");
}

/// A TCP listener that accepts connections and never answers.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

async fn serving_stays_fast_with_collector(endpoint: String) {
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ]);
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    let mut rss_after_first_round = 0;

    for round in 0..2 {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url) = (client.clone(), binary.url("/"));
            tasks.push(tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for _ in 0..400 {
                    let start = std::time::Instant::now();
                    let response = client.get(&url).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    slowest = slowest.max(start.elapsed());
                }
                slowest
            }));
        }
        for task in tasks {
            slowest = slowest.max(task.await.unwrap());
        }
        if round == 0 {
            rss_after_first_round = resident_kib(binary.child.id());
        }
    }
    let rss = resident_kib(binary.child.id());
    let report = eventually(Duration::from_secs(15), || async {
        let out = binary.stdout();
        out.contains("telemetry is being lost").then_some(out)
    })
    .await
    .unwrap_or_else(|| binary.stdout());
    let stdout = terminate(binary).await;

    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?} for the exporter"
    );
    assert!(rss < 64 * 1024, "RSS {rss} KiB");
    assert!(
        rss < rss_after_first_round + 8 * 1024,
        "RSS grew from {rss_after_first_round} to {rss} KiB"
    );
    assert!(report.contains("telemetry is being lost"), "{report}");
    let reports = stdout
        .lines()
        .filter(|l| l.contains("telemetry is being lost"))
        .count();
    assert!(
        reports <= 3,
        "{reports} loss reports for 6400 spans: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_collector_port_does_not_hurt_serving() {
    let port = crate::helpers::free_port();

    serving_stays_fast_with_collector(format!("http://127.0.0.1:{port}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_never_answers_does_not_hurt_serving() {
    let address = otlp::silent_listener().await;

    serving_stays_fast_with_collector(format!("http://{address}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_spans_are_counted_on_the_metrics_endpoint() {
    let port = crate::helpers::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
    ]);
    let client = reqwest::Client::new();

    for _ in 0..20 {
        client.get(binary.url("/")).send().await.unwrap();
    }
    let failed = eventually(Duration::from_secs(40), || async {
        let text = crate::helpers::get_text(&client, &binary.url("/metrics")).await?;
        let metrics = crate::helpers::parse_exposition(&text);
        let failed =
            crate::helpers::value(&metrics, "prom_metrics_app_telemetry_failed_spans_total");
        (failed >= 20.0).then_some(metrics)
    })
    .await;

    let metrics = failed.expect("the failed exports are counted");
    assert_eq!(
        crate::helpers::value(&metrics, "prom_metrics_app_telemetry_dropped_spans_total"),
        0.0
    );
    assert_eq!(
        crate::helpers::value(&metrics, "http_requests_total"),
        20.0,
        "serving is unaffected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_otel_backend_view_metrics_reads_the_sdk_and_metrics_explains_its_404() {
    let binary = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ]);
    let client = reqwest::Client::new();
    let view = binary.url("/view_metrics");

    client.get(binary.url("/")).send().await.unwrap();
    client.get(binary.url("/missing")).send().await.unwrap();
    let page = eventually(Duration::from_secs(10), || async {
        let page = crate::helpers::get_text(&client, &view).await?;
        page.contains("<td>http_requests_total</td><td class=\"num\">2</td>")
            .then_some(page)
    })
    .await
    .expect("a collection after the requests");
    let scrape = client.get(binary.url("/metrics")).send().await.unwrap();

    assert!(
        page.contains("Read from the <strong>otel</strong> backend itself, as of its last"),
        "{page}"
    );
    assert!(page.contains("<time id=\"as-of\" datetime=\""), "{page}");
    assert!(
        page.contains("<td>http_error_4xx_total</td><td class=\"num\">1</td>"),
        "{page}"
    );
    assert_eq!(
        crate::counting::cumulative(&page, "+Inf"),
        Some("2"),
        "{page}"
    );
    assert_eq!(scrape.status(), 404);
    let body = scrape.text().await.unwrap();
    assert_eq!(body.trim().lines().count(), 1, "{body}");
    assert!(body.contains("METRICS_BACKEND=prometheus"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_taken_from_the_request_are_cut_at_the_attribute_value_length_limit() {
    let query = format!("q={}", "x".repeat(10_000));
    let agent = "a".repeat(6_000);
    let mut lengths = Vec::new();

    for limit in [None, Some("100")] {
        let (address, received) = otlp::start_grpc(None).await;
        let endpoint = format!("http://{address}");
        let mut envs = vec![
            ("OTEL_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ];
        if let Some(limit) = limit {
            envs.push(("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", limit));
        }
        let binary = spawn_binary(&envs);
        reqwest::Client::new()
            .get(binary.url(&format!("/?{query}")))
            .header("user-agent", &agent)
            .send()
            .await
            .unwrap();
        terminate(binary).await;

        let spans = received.spans();
        let home = spans.iter().find(|s| s.name == "GET /").expect("the span");
        lengths.push([
            home.attributes["url.query"].len(),
            home.attributes["user_agent.original"].len(),
            home.attributes["url.path"].len(),
        ]);
    }

    assert_eq!(lengths, [[4096, 4096, 1], [100, 100, 1]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_collector_holds_a_bounded_number_of_bytes_whatever_the_requests_carry() {
    // More than the 2,048 spans the queue holds, each with a query of 60 kB (a URI is at most
    // 64 kB) and a user agent of 200 kB.
    const REQUESTS: usize = 2_500;
    let address = otlp::silent_listener().await;
    let endpoint = format!("http://{address}");
    let logs = std::env::temp_dir().join(format!("pma-stuck-{}", std::process::id()));
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("MAX_HEADER_BYTES", "1048576"),
        // The first export then waits for the whole run, and the queue stays full.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "120000"),
        ("LOG_TO_STDOUT", "false"),
        ("LOG_DIR", logs.to_str().unwrap()),
    ]);
    let url = binary.url(&format!("/?q={}", "x".repeat(60_000)));
    let agent = "a".repeat(200_000);
    let client = reqwest::Client::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, agent, next) =
                (client.clone(), url.clone(), agent.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                    let answer = client.get(&url).header("user-agent", &agent).send().await;
                    let status = answer
                        .map(|a| a.status().as_u16())
                        .map_err(|e| e.is_timeout());
                    assert_eq!(status, Ok(200), "a large request was not served");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let resident = resident_kib(binary.child.id());
    let text = crate::helpers::get_text(&client, &binary.url("/metrics"))
        .await
        .unwrap();
    let metrics = crate::helpers::parse_exposition(&text);
    let _ = std::fs::remove_dir_all(&logs);

    // Uncut, 2,048 queued spans would hold about 530 MB; cut at 4,096 characters, about 17 MB.
    assert!(resident < 96 * 1024, "resident {resident} KiB");
    assert!(
        crate::helpers::value(&metrics, "prom_metrics_app_telemetry_dropped_spans_total") > 0.0,
        "the queue was full"
    );
}
