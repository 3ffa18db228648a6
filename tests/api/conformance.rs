//! Exported telemetry exactly as OpenTelemetry's HTTP semantic conventions and docs/telemetry.md say:
//! the attributes of every span and metric point as an independent receiver gets them, and
//! settings that take effect as documented (a flag beats its variable; the app is the only reader
//! of its variables).

use std::{collections::BTreeSet, time::Duration};

use crate::{
    helpers::{TestApp, panicking_handler, spawn_app_with, spawn_binary, spawn_binary_with_args},
    otel::terminate,
    otlp::{self, Received, SpanView},
};

/// Every attribute a server span may carry; docs/telemetry.md lists the same.
const SERVER_SPAN_ATTRIBUTES: [&str; 16] = [
    "client.address",
    "error.type",
    "http.request.method",
    "http.request.method_original",
    "http.response.status_code",
    "http.route",
    "network.peer.address",
    "network.peer.port",
    "network.protocol.version",
    "server.address",
    "server.port",
    "url.path",
    "url.query",
    "url.scheme",
    "user_agent.original",
    // The child span of /do_task carries this one alone.
    "task.seconds",
];

fn keys(span: &SpanView) -> BTreeSet<&str> {
    span.attributes.keys().map(String::as_str).collect()
}

fn find<'a>(spans: &'a [SpanView], name: &str) -> &'a SpanView {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

/// Sends a request of every kind the binary can answer without a fault: a page with a query and a
/// user agent, a task, an unknown path, an unknown method, a probe and a scrape.
async fn send_every_kind(base: &str) {
    let client = reqwest::Client::new();
    client
        .get(format!("{base}/?lang=en"))
        .header("user-agent", "conformance/1.0")
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/do_task?seconds=0.01"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/no-such-page"))
        .send()
        .await
        .unwrap();
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    client
        .request(purge, format!("{base}/"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/view_metrics"))
        .send()
        .await
        .unwrap();
}

async fn spans_exported_over(protocol: &str) -> Vec<SpanView> {
    let (address, received) = match protocol {
        "grpc" => otlp::start_grpc(None).await,
        _ => otlp::start_http().await,
    };
    let endpoint = format!("http://{address}");
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
    ]);

    send_every_kind(&app.url("")).await;
    terminate(app).await;

    received.spans()
}

fn assert_spans_follow_the_conventions(spans: &[SpanView]) {
    let allowed: BTreeSet<&str> = SERVER_SPAN_ATTRIBUTES.into_iter().collect();
    assert!(spans.len() >= 6, "{spans:#?}");
    for span in spans {
        let present = keys(span);
        let extra: Vec<&&str> = present.difference(&allowed).collect();
        assert!(extra.is_empty(), "{}: unexpected {extra:?}", span.name);
    }
    for span in spans.iter().filter(|s| s.kind == 2) {
        for required in [
            "http.request.method",
            "url.path",
            "url.scheme",
            "http.response.status_code",
        ] {
            assert!(
                span.attributes.contains_key(required),
                "{}: no {required}",
                span.name
            );
        }
        assert!(
            !span.attributes.contains_key("task.seconds"),
            "{}",
            span.name
        );
    }

    let home = find(spans, "GET /");
    assert_eq!(home.attributes["url.query"], "lang=en");
    assert_eq!(home.attributes["user_agent.original"], "conformance/1.0");
    assert!(
        !home.attributes.contains_key("error.type"),
        "a 200 is no error"
    );
    assert!(!home.attributes.contains_key("http.request.method_original"));

    let purge = find(spans, "HTTP /");
    assert_eq!(purge.attributes["http.request.method"], "_OTHER");
    assert_eq!(purge.attributes["http.request.method_original"], "PURGE");
    assert!(!spans.iter().any(|s| s.name.starts_with("_OTHER")));

    let work = find(spans, "do_task work");
    assert_eq!(keys(work), BTreeSet::from(["task.seconds"]));
    let missing = find(spans, "GET");
    assert_eq!(missing.attributes["url.path"], "/no-such-page");
    assert!(
        !missing.attributes.contains_key("error.type"),
        "a 404 is the client's error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_over_grpc_carry_the_http_conventions_attributes_and_nothing_else() {
    let spans = spans_exported_over("grpc").await;

    assert_spans_follow_the_conventions(&spans);
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_over_http_carry_the_http_conventions_attributes_and_nothing_else() {
    let spans = spans_exported_over("http/protobuf").await;

    assert_spans_follow_the_conventions(&spans);
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_scrapes_get_no_span_by_default_and_every_other_path_does() {
    let spans = spans_exported_over("grpc").await;
    let (address, received) = otlp::start_grpc(None).await;
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
    ]);

    for path in ["/healthz", "/readyz", "/metrics", "/"] {
        reqwest::get(app.url(path)).await.unwrap();
    }
    terminate(app).await;

    let names: Vec<String> = received.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["GET /"], "probes and scrapes are not traced");
    assert!(spans.iter().any(|s| s.name == "GET /view_metrics"));
}

#[tokio::test(flavor = "multi_thread")]
async fn excluded_paths_are_configurable_and_never_change_counting() {
    let (address, received) = otlp::start_grpc(None).await;
    let app = spawn_binary_with_args(
        &[
            ("OTEL_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
            ("TRACES_EXCLUDED_PATHS", "/healthz"),
        ],
        // The flag beats the variable: the probes are traced, the home page is not.
        &["--traces-excluded-paths", "/,/index"],
    );
    let client = reqwest::Client::new();

    for path in ["/", "/index", "/healthz"] {
        client.get(app.url(path)).send().await.unwrap();
    }
    let metrics = crate::helpers::get_text(&client, &app.url("/metrics"))
        .await
        .unwrap();
    terminate(app).await;

    let names: BTreeSet<String> = received.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        BTreeSet::from(["GET /healthz".to_string(), "GET /metrics".to_string()]),
        "a list set by hand replaces the default: /metrics is traced again"
    );
    let metrics = crate::helpers::parse_exposition(&metrics);
    assert_eq!(crate::helpers::value(&metrics, "http_requests_total"), 2.0);
}

/// The labels of every `http_server_request_duration_seconds` series in a scrape.
fn duration_label_sets(exposition: &str) -> Vec<BTreeSet<String>> {
    exposition
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .map(|l| {
            let labels = &l[l.find('{').unwrap() + 1..l.find('}').unwrap()];
            labels.split(',').map(str::to_string).collect()
        })
        .collect()
}

#[tokio::test]
async fn prometheus_series_carry_url_scheme_and_error_type_on_a_5xx_only() {
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push(("/boom", axum::routing::get(panicking_handler)));
    let app: TestApp = spawn_app_with(routes).await;

    app.get("/").await;
    app.get("/boom").await;
    app.get("/missing").await;
    let text = app.get("/metrics").await.text().await.unwrap();

    let sets = duration_label_sets(&text);
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(sets.len(), 3, "{text}");
    assert!(
        sets.contains(&set(&[
            "http_request_method=\"GET\"",
            "http_route=\"/\"",
            "http_response_status_code=\"200\"",
            "url_scheme=\"http\"",
        ])),
        "{sets:?}"
    );
    assert!(
        sets.contains(&set(&[
            "http_request_method=\"GET\"",
            "http_route=\"/boom\"",
            "http_response_status_code=\"500\"",
            "url_scheme=\"http\"",
            "error_type=\"500\"",
        ])),
        "{sets:?}"
    );
    assert!(
        sets.contains(&set(&[
            "http_request_method=\"GET\"",
            "http_route=\"unmatched\"",
            "http_response_status_code=\"404\"",
            "url_scheme=\"http\"",
        ])),
        "{sets:?}"
    );
    for family in [
        "http_requests_total",
        "http_successful_request_total",
        "http_error_4xx_total",
        "http_error_5xx_total",
        "request_processing_seconds_count",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{family} "))),
            "{family} has labels:\n{text}"
        );
    }
}

/// The OTel backend's metric points, pushed over OTLP: the original's five families without
/// attributes, the conventions' histogram with exactly the required ones.
async fn otel_metric_points(abandon_a_task: bool) -> Received {
    let (address, received) = otlp::start_grpc(None).await;
    let app = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
    ]);
    let client = reqwest::Client::new();

    client.get(app.url("/")).send().await.unwrap();
    client.get(app.url("/missing")).send().await.unwrap();
    if abandon_a_task {
        let abandoned = client
            .get(app.url("/do_task?seconds=2"))
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        assert!(abandoned.is_err(), "the client gave up");
        crate::helpers::eventually(Duration::from_secs(5), || async {
            app.stdout().contains("GET /do_task 499").then_some(())
        })
        .await
        .expect("the abandoned request's access line");
    }
    terminate(app).await;
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn otel_metric_points_carry_exactly_the_required_attributes() {
    let received = otel_metric_points(true).await;

    for family in [
        "http_requests",
        "http_successful_request",
        "http_error_4xx",
        "http_error_5xx",
        "request_processing_seconds",
    ] {
        let points = received.point_attributes(family);
        assert!(!points.is_empty(), "{family} was exported");
        assert!(points.iter().all(|p| p.is_empty()), "{family}: {points:?}");
    }
    let points = received.point_attributes("http.server.request.duration");
    let mut sets: Vec<BTreeSet<String>> = points
        .iter()
        .map(|p| p.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .collect();
    sets.sort();
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        sets,
        vec![
            set(&[
                "http.request.method=GET",
                "http.response.status_code=int:200",
                "http.route=/",
                "url.scheme=http"
            ]),
            set(&[
                "error.type=client_closed",
                "http.request.method=GET",
                "http.response.status_code=int:499",
                "http.route=/do_task",
                "url.scheme=http"
            ]),
            set(&[
                "http.request.method=GET",
                "http.response.status_code=int:404",
                "http.route=unmatched",
                "url.scheme=http"
            ]),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_otel_backend_every_counter_exists_before_its_first_request() {
    let received = otel_metric_points(false).await;

    assert_eq!(received.sum("http_error_5xx"), Some(0));
    assert_eq!(received.sum("http_requests"), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_request_sets_error_type_on_its_span() {
    let (address, received) = otlp::start_grpc(None).await;
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
    ]);

    let abandoned = reqwest::Client::new()
        .get(app.url("/do_task?seconds=2"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    // The server has seen the client go when the request's access line is out.
    crate::helpers::eventually(Duration::from_secs(5), || async {
        app.stdout().contains("GET /do_task 499").then_some(())
    })
    .await
    .expect("the abandoned request's access line");
    terminate(app).await;

    assert!(abandoned.is_err());
    let spans = received.spans();
    let task = find(&spans, "GET /do_task");
    assert_eq!(task.attributes["error.type"], "client_closed");
    assert_eq!(task.attributes["http.response.status_code"], "int:499");
    assert_eq!(
        task.status_code, 0,
        "a client that went away is not a server error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_headers_flag_beats_the_variable_and_undocumented_otel_variables_have_no_effect() {
    let (address, received) = otlp::start_http().await;
    let app = spawn_binary_with_args(
        &[
            ("OTEL_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=from-variable"),
            // Read by the OpenTelemetry SDK itself unless the app prevents it; not supported.
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1"),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "1"),
        ],
        &["--otel-exporter-otlp-headers", "x-api-key=from-flag"],
    );

    reqwest::get(app.url("/")).await.unwrap();
    let stdout = terminate(app).await;

    let spans = received.spans();
    let home = spans
        .iter()
        .find(|s| s.name == "GET /")
        .expect("spans reached the configured endpoint");
    assert!(home.attributes.len() > 1, "{home:?}");
    let headers = received.headers();
    assert!(!headers.is_empty());
    for export in &headers {
        assert_eq!(
            export.get("x-api-key").map(String::as_str),
            Some("from-flag"),
            "{export:?}"
        );
    }
    let warning = stdout
        .lines()
        .find(|l| l.contains("ignoring OpenTelemetry variables"))
        .unwrap_or_else(|| panic!("a warning in {stdout}"));
    assert!(
        warning.contains("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT,OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
        "{warning}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_over_http_with_tls_reaches_a_receiver_with_a_certificate_from_a_test_ca() {
    let (ca_file, identity) = otlp::test_ca_file();
    let (address, received) = otlp::start_https(identity).await;
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("https://localhost:{}", address.port()),
        ),
        ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
    ]);

    reqwest::get(app.url("/")).await.unwrap();
    terminate(app).await;

    assert!(
        received.spans().iter().any(|s| s.name == "GET /"),
        "{:?}",
        received.spans()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_export_queue_drops_spans_counts_them_and_warns() {
    // Accepts connections and never answers: the first export hangs, and spans pile up.
    let address = otlp::silent_listener().await;
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
        ("RUST_LOG", "info,access=off"),
    ]);
    let client = reqwest::Client::new();

    for _ in 0..3000 {
        client.get(app.url("/")).send().await.unwrap();
    }
    let scrape = crate::helpers::get_text(&client, &app.url("/metrics"))
        .await
        .unwrap();
    let warned = crate::helpers::eventually(Duration::from_secs(15), || async {
        let out = app.stdout();
        out.contains("telemetry is being lost").then_some(out)
    })
    .await;

    let metrics = crate::helpers::parse_exposition(&scrape);
    let dropped = crate::helpers::value(&metrics, "prom_metrics_app_telemetry_dropped_spans_total");
    // At most 2048 spans wait for export; of 3000, the rest are dropped.
    assert!(dropped >= 3000.0 - 2048.0 - 512.0, "dropped {dropped}");
    assert_eq!(
        crate::helpers::value(&metrics, "http_requests_total"),
        3000.0
    );
    let warned = warned.expect("a loss warning");
    assert!(warned.contains("dropped"), "{warned}");
}
