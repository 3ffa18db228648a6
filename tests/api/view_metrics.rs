//! `/view_metrics` as JSON and as a page, without a browser: content negotiation, counting nothing,
//! security headers, escaping, and the quantiles it reports.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prom_metrics_app::{config::Config, http, metrics::histogram_quantile};
use serde_json::Value;

use crate::{
    helpers::{spawn_app, spawn_app_configured, spawn_binary},
    otel::terminate,
    otlp::{self, histogram_points, sum_of},
};

async fn json(app: &crate::helpers::TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn view_metrics_answers_json_to_accept_and_to_format_and_html_otherwise() {
    let app = spawn_app().await;

    let by_accept = json(&app, "/view_metrics", "application/json").await;
    let by_query = json(&app, "/view_metrics?format=json", "text/html").await;
    let browser = json(
        &app,
        "/view_metrics",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )
    .await;
    let forced_html = json(&app, "/view_metrics?format=html", "application/json").await;
    let bad = app.get("/view_metrics?format=xml").await;

    for response in [&by_accept, &by_query] {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["vary"], "Accept");
    }
    for response in [&browser, &forced_html] {
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(bad.status(), 400);
    let body: Value = serde_json::from_str(&by_accept.text().await.unwrap()).unwrap();
    assert_eq!(body["schema_version"], 1);
}

#[tokio::test]
async fn the_json_snapshot_reports_every_family_and_counts_nothing() {
    let app = spawn_app().await;
    for path in ["/", "/do_task?seconds=0", "/missing", "/status/503"] {
        app.get(path).await;
    }

    for _ in 0..3 {
        json(&app, "/view_metrics", "application/json").await;
        app.get("/view_metrics").await;
    }
    let body: Value = json(&app, "/view_metrics?format=json", "*/*")
        .await
        .text()
        .await
        .map(|text| serde_json::from_str(&text).expect("JSON"))
        .unwrap();

    let counters = &body["counters"];
    assert_eq!(counters["http_requests_total"], 4, "{body}");
    assert_eq!(counters["http_successful_request_total"], 2);
    assert_eq!(counters["http_error_4xx_total"], 1);
    assert_eq!(counters["http_error_5xx_total"], 1);
    let histogram = &body["request_processing_seconds"];
    assert_eq!(histogram["count"], 4);
    let buckets = histogram["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 15);
    assert_eq!(buckets[0]["le"], "0.005");
    assert_eq!(buckets[14], serde_json::json!({"le": "+Inf", "count": 4}));
    assert!(body["quantiles"]["p50"].as_f64().unwrap() <= 0.005);
    let series = body["http_server_request_duration_seconds"]
        .as_array()
        .unwrap();
    let routes: Vec<_> = series
        .iter()
        .map(|s| {
            (
                s["http_route"].as_str().unwrap(),
                s["http_response_status_code"].as_u64().unwrap(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("/", 200, 1),
            ("/do_task", 200, 1),
            ("/status/{code}", 503, 1),
            ("unmatched", 404, 1)
        ]
    );
    assert_eq!(series[2]["error_type"], "503");
    assert!(body["process"]["resident_memory_bytes"].as_f64().unwrap() > 0.0);
    assert_eq!(body["config"]["backend"], "prometheus");
    assert_eq!(body["config"]["exporter"], "console");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        body["collected_at"].as_str().unwrap().ends_with('Z'),
        "read live"
    );
}

#[tokio::test]
async fn before_any_request_the_quantiles_are_null() {
    let app = spawn_app().await;

    let body: Value = json(&app, "/view_metrics", "application/json")
        .await
        .text()
        .await
        .map(|text| serde_json::from_str(&text).expect("JSON"))
        .unwrap();

    assert_eq!(body["quantiles"]["p50"], Value::Null);
    assert_eq!(body["quantiles"]["p99"], Value::Null);
    assert_eq!(
        body["http_server_request_duration_seconds"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;

    for path in [
        "/",
        "/view_metrics",
        "/view_metrics?format=json",
        "/do_task?seconds=0",
        "/chaos",
        "/missing",
        "/metrics",
        "/healthz",
        "/static/style.css",
        "/static/view_metrics.js",
        "/do_task?seconds=abc",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();

        assert_eq!(
            headers["content-security-policy"],
            http::headers::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn the_policy_allows_only_this_origin_and_no_inline_script() {
    let policy = http::headers::CONTENT_SECURITY_POLICY;

    assert!(policy.contains("default-src 'self'"));
    assert!(policy.contains("script-src 'self'"));
    assert!(!policy.contains("unsafe-inline"));
    assert!(policy.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn pages_carry_no_inline_script_or_style() {
    let app = spawn_app().await;
    app.get("/").await;

    for path in [
        "/",
        "/view_metrics",
        "/do_task?seconds=0",
        "/chain",
        "/chaos",
        "/missing",
    ] {
        let body = app.get(path).await.text().await.unwrap();

        assert!(!body.contains("style="), "{path}");
        assert!(!body.contains("<style"), "{path}");
        for script in body.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src=\"/static/"), "{path}");
        }
        assert!(body.contains("<title>"), "{path}");
    }
}

#[tokio::test]
async fn a_hostile_configured_value_is_escaped_on_the_pages_and_in_json() {
    let mut config = Config::defaults();
    config.log_to_stdout = false;
    config.log_dir = "/tmp/<script>alert(1)</script>".into();
    let app = spawn_app_configured(config, http::counted_routes()).await;

    let home = app.get("/").await.text().await.unwrap();
    let body: Value = json(&app, "/view_metrics", "application/json")
        .await
        .text()
        .await
        .map(|text| serde_json::from_str(&text).expect("JSON"))
        .unwrap();

    assert!(!home.contains("<script>alert(1)"), "{home}");
    assert!(
        home.contains("/tmp/&#60;script&#62;alert(1)&#60;/script&#62;")
            || home.contains("/tmp/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{home}"
    );
    assert_eq!(
        body["config"]["log"],
        "/tmp/<script>alert(1)</script>/prom-metrics-app.log"
    );
}

#[tokio::test]
async fn secrets_in_the_otlp_settings_never_reach_the_pages() {
    let config = Config::try_parse_args([
        "prom-metrics-app",
        "--otel-exporter",
        "otlp",
        "--otel-exporter-otlp-endpoint",
        "https://user:pa55word@collector.example:4318",
        "--otel-exporter-otlp-headers",
        "x-api-key=t0ken",
    ])
    .unwrap();
    let state = prom_metrics_app::http::AppState::new(
        std::sync::Arc::new(prom_metrics_app::metrics::prometheus::PrometheusBackend::new()),
        &config,
    );

    let home = String::from_utf8(prom_metrics_app::http::home(&state).to_vec()).unwrap();
    let about = serde_json::to_string(&state.about).unwrap();

    for text in [&home, &about] {
        assert!(
            !text.contains("pa55word") && !text.contains("user:"),
            "{text}"
        );
        assert!(!text.contains("t0ken"), "{text}");
        assert!(text.contains("collector.example:4318"), "{text}");
        assert!(text.contains("x-api-key"), "{text}");
    }
}

#[tokio::test]
async fn the_home_page_links_every_route_and_shows_the_configuration() {
    let app = spawn_app().await;

    let home = app.get("/").await.text().await.unwrap();

    for link in [
        "href=\"/healthz\"",
        "href=\"/readyz\"",
        "href=\"/metrics\"",
        "href=\"/view_metrics\"",
        "href=\"/do_task",
        "href=\"/chain\"",
        "href=\"/status/503\"",
        "href=\"/chaos\"",
        "href=\"/api/chaos\"",
    ] {
        assert!(home.contains(link), "{link}");
    }
    for fact in [
        "Listen address",
        "Sampler",
        "Propagators",
        "tracecontext,baggage",
        "Logs",
        "Revision",
    ] {
        assert!(home.contains(fact), "{fact}");
    }
}

#[tokio::test]
async fn the_page_leaves_out_metrics_links_when_it_is_not_served() {
    let mut config = Config::defaults();
    config.metrics_backend = prom_metrics_app::config::Backend::Otel;
    let state = prom_metrics_app::http::AppState::new(
        std::sync::Arc::new(prom_metrics_app::metrics::prometheus::PrometheusBackend::new()),
        &config,
    );

    let home = String::from_utf8(prom_metrics_app::http::home(&state).to_vec()).unwrap();

    assert!(!home.contains("href=\"/metrics\""), "{home}");
    assert!(home.contains("Not served"));
}

#[test]
fn quantiles_are_interpolated_as_promql_does() {
    use prom_metrics_app::metrics::Bucket;
    let buckets =
        [(0.1, 2), (0.5, 6), (1.0, 8), (f64::INFINITY, 10)].map(|(le, count)| Bucket { le, count });

    assert_eq!(histogram_quantile(0.5, &buckets), Some(0.4));
    assert_eq!(histogram_quantile(0.99, &buckets), Some(1.0));
    assert_eq!(histogram_quantile(0.5, &buckets[..0]), None);
}

/// What one collection says: the requests, the 4xx, and the count of each route and status.
#[derive(Debug, PartialEq)]
struct Collection {
    requests: i64,
    error_4xx: i64,
    series: BTreeMap<(String, String), u64>,
}

impl Collection {
    fn of_view(body: &Value) -> Self {
        let counter = |name: &str| body["counters"][name].as_i64().unwrap();
        Self {
            requests: counter("http_requests_total"),
            error_4xx: counter("http_error_4xx_total"),
            series: body["http_server_request_duration_seconds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let route = s["http_route"].as_str().unwrap().to_string();
                    let status = s["http_response_status_code"].to_string();
                    ((route, status), s["count"].as_u64().unwrap())
                })
                .collect(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_otel_backend_the_view_shows_what_the_collector_got_in_the_same_collection() {
    let (receiver, received) = otlp::start_grpc(None).await;
    let binary = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{receiver}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("TRACES_EXCLUDED_PATHS", "/*"),
    ]);
    let client = reqwest::Client::new();
    // Steady traffic, so that the live values move on between two collections.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        let (home, missing) = (binary.url("/"), binary.url("/missing"));
        async move {
            while !stop.load(Ordering::Relaxed) {
                client.get(&home).send().await.unwrap();
                client.get(&missing).send().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let mut views = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(170)).await;
        let text = crate::helpers::get_text(&client, &binary.url("/view_metrics?format=json"))
            .await
            .unwrap();
        views.push(serde_json::from_str::<Value>(&text).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    terminate(binary).await;

    let exported: Vec<Collection> = received
        .metric_exports()
        .iter()
        .map(|export| Collection {
            requests: sum_of(&export["http_requests"]).unwrap(),
            error_4xx: sum_of(&export["http_error_4xx"]).unwrap(),
            series: export
                .get("http.server.request.duration")
                .and_then(histogram_points)
                .unwrap_or_default()
                .into_iter()
                .map(|(attributes, count)| {
                    let status = attributes["http.response.status_code"].replace("int:", "");
                    ((attributes["http.route"].clone(), status), count)
                })
                .collect(),
        })
        .collect();
    let collected: Vec<&Value> = views
        .iter()
        .filter(|view| view["collected_at"].is_string())
        .collect();
    assert!(collected.len() >= 6, "views of a collection: {views:#?}");
    let mut seen = Vec::new();
    for view in collected {
        let shown = Collection::of_view(view);
        let export = exported
            .iter()
            .find(|export| export.requests == shown.requests)
            .unwrap_or_else(|| panic!("no export of {} requests: {exported:#?}", shown.requests));
        assert_eq!(&shown, export);
        seen.push(shown.requests);
    }
    seen.dedup();
    assert!(
        seen.len() >= 3,
        "views of at least three collections: {seen:?}"
    );
}
