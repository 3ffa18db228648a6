//! Synthetic series: the JSON API and the form, the families on `/metrics` in every format and
//! gzip, a real Prometheus ingesting a million of them and their churn, and the same series over
//! OTLP.

use std::{io::Read, time::Duration};

use prom_metrics_app::{config::Config, http, metrics::prometheus::PrometheusBackend};
use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;
use prost::Message;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, eventually, spawn_app, spawn_app_configured, spawn_binary},
    otlp,
    prometheus::Prometheus,
};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";
const PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn document(app: &TestApp) -> Value {
    json(app.get("/api/synthetic").await).await
}

async fn post_form(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/synthetic"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn put(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .put(app.url("/api/synthetic"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// `/metrics` as `accept` asks for it, without compression.
async fn scrape(app: &TestApp, accept: &str) -> Vec<u8> {
    let response = app
        .client
        .get(app.url("/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// The sample lines of synthetic families in a text exposition.
fn synthetic_samples(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("synthetic_"))
        .collect()
}

#[tokio::test]
async fn synthetic_series_are_off_by_default_and_the_api_says_so() {
    let app = spawn_app().await;

    let doc = document(&app).await;
    let text = String::from_utf8(scrape(&app, "text/plain").await).unwrap();

    assert_eq!(doc["metrics"], 0);
    assert_eq!(doc["series_per_metric"], 10);
    assert_eq!(doc["type"], "gauge");
    assert_eq!(doc["value_interval"], "10s");
    assert_eq!(doc["churn"], "0s");
    assert_eq!(doc["churn_ratio"], 1.0);
    assert_eq!(doc["truth"]["series"], 0);
    assert!(synthetic_samples(&text).is_empty());
}

#[tokio::test]
async fn put_exposes_exactly_the_announced_series_in_every_format() {
    let app = spawn_app().await;

    let response = put(
        &app,
        r#"{"metrics": 3, "series_per_metric": 7, "labels": 2, "type": "histogram"}"#,
    )
    .await;
    let doc = json(response).await;
    let text = String::from_utf8(scrape(&app, "text/plain").await).unwrap();
    let openmetrics = String::from_utf8(scrape(&app, OPENMETRICS).await).unwrap();
    let protobuf = scrape(&app, PROTOBUF).await;

    assert_eq!(doc["truth"]["series"], 21);
    assert_eq!(doc["truth"]["samples"], 21 * 17);
    assert_eq!(synthetic_samples(&text).len(), 21 * 17);
    assert_eq!(synthetic_samples(&openmetrics).len(), 21 * 17);
    assert!(openmetrics.ends_with("# EOF\n"));
    assert_eq!(openmetrics.matches("# EOF").count(), 1);
    assert!(text.contains(
        "synthetic_histogram_2_count{series_id=\"6\",generation=\"0\",label_0=\"value_0\",label_1=\"value_1\"} 4\n"
    ));
    assert!(
        text.contains("http_requests_total 0\n"),
        "the app's own families stay"
    );
    let mut rest = protobuf.as_slice();
    let mut families = Vec::new();
    while !rest.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut rest).unwrap());
    }
    let synthetic: Vec<_> = families
        .iter()
        .filter(|f| f.name.starts_with("synthetic_"))
        .collect();
    assert_eq!(synthetic.len(), 3);
    assert!(synthetic.iter().all(|f| f.metric.len() == 7));
    assert!(families.iter().any(|f| f.name == "http_requests_total"));
}

#[tokio::test]
async fn every_format_is_gzipped_when_asked_and_decompresses_to_the_same_series() {
    let app = spawn_app().await;
    put(
        &app,
        r#"{"metrics": 2, "series_per_metric": 500, "value_interval": "0s"}"#,
    )
    .await;

    for accept in ["text/plain", OPENMETRICS, PROTOBUF] {
        let plain = scrape(&app, accept).await;
        let response = app
            .client
            .get(app.url("/metrics"))
            .header("accept", accept)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();

        assert_eq!(response.headers()["content-encoding"], "gzip", "{accept}");
        let compressed = response.bytes().await.unwrap();
        let mut unpacked = Vec::new();
        flate2::read::MultiGzDecoder::new(&compressed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert!(
            compressed.len() * 3 < unpacked.len(),
            "{accept}: compressed"
        );
        // The process figures change between two scrapes: compare the synthetic part.
        let tail = |body: &[u8]| body[body.len() - 20_000..].to_vec();
        assert_eq!(tail(&unpacked), tail(&plain), "{accept}");
    }
    let uncompressed = app.get("/metrics").await;
    assert!(uncompressed.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn bad_settings_get_400_with_the_field_and_change_nothing() {
    let app = spawn_app().await;
    put(&app, r#"{"metrics": 2}"#).await;
    let before = document(&app).await;

    for (body, reason) in [
        (r#"{"metric": 2}"#, "unknown field `metric`"),
        (r#"{"metrics": "two"}"#, "metrics:"),
        (r#"{"labels": 33}"#, "labels:"),
        (r#"{"type": "summary"}"#, "type:"),
        (r#"{"churn": "10ms"}"#, "churn:"),
        (r#"{"churn_ratio": 0}"#, "churn_ratio:"),
        (
            r#"{"metrics": 1000, "series_per_metric": 1000, "type": "histogram"}"#,
            "at most 10000000 samples",
        ),
        ("[1, 2]", "JSON object"),
        ("not json", "JSON object"),
    ] {
        let response = put(&app, body).await;

        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(reason), "{body}: {text}");
    }
    let after = document(&app).await;
    assert_eq!(after["metrics"], before["metrics"]);
    assert_eq!(
        after["truth"]["run_started"],
        before["truth"]["run_started"]
    );
    assert_eq!(
        app.metrics().await["http_requests_total"],
        0.0,
        "not counted"
    );
}

#[tokio::test]
async fn a_get_document_sent_back_changed_is_applied_and_delete_returns_to_the_start() {
    let mut config = Config::defaults();
    config.synthetic.synthetic_metrics = 1;
    config.synthetic.synthetic_series = 3;
    let app = spawn_app_configured(config, http::counted_routes()).await;

    let mut doc = document(&app).await;
    doc["series_per_metric"] = json!(40);
    doc["churn"] = json!("1m");
    let changed = json(put(&app, &doc.to_string()).await).await;
    let reset = json(
        app.client
            .delete(app.url("/api/synthetic"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(changed["series_per_metric"], 40);
    assert_eq!(changed["churn"], "1m");
    assert_eq!(changed["truth"]["series"], 40);
    assert!(changed["truth"]["next_churn"].is_string());
    assert_eq!(reset["series_per_metric"], 3);
    assert_eq!(reset["churn"], "0s");
    assert_eq!(reset["truth"]["series"], 3);
}

#[tokio::test]
async fn the_form_applies_settings_and_shows_the_truth_or_the_reason() {
    let app = spawn_app().await;

    let applied = post_form(
        &app,
        "metrics=4&series_per_metric=25&type=counter&value_interval=5s&action=apply",
    )
    .await;
    let status = applied.status();
    let page = applied.text().await.unwrap();
    let refused = post_form(&app, "metrics=lots").await;

    assert_eq!(status, 200);
    assert!(page.contains("<td>100</td>"), "the series of the truth");
    assert_eq!(document(&app).await["type"], "counter");
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("metrics must be a number")
    );
    assert_eq!(document(&app).await["metrics"], 4, "unchanged");
}

#[tokio::test]
async fn the_home_page_is_served_while_a_scrape_of_a_million_series_is_unread() {
    let app = spawn_app().await;
    put(&app, r#"{"metrics": 100, "series_per_metric": 10000}"#).await;

    // A scraper that asks, then reads nothing: the encoding fills its few chunks and waits.
    let scrape = app.client.get(app.url("/metrics")).send().await.unwrap();
    let home = app.get("/").await;

    assert_eq!(scrape.status(), 200);
    assert_eq!(home.status(), 200);
    drop(scrape);
    let doc = document(&app).await;
    assert_eq!(doc["truth"]["series"], 1_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_ingests_exactly_the_announced_million_series() {
    let app = spawn_app().await;
    let doc = json(put(&app, r#"{"metrics": 100, "series_per_metric": 10000}"#).await).await;
    let job = format!(
        "  - job_name: synthetic\n    scrape_interval: 10s\n    scrape_timeout: 10s\n    static_configs:\n      - targets: ['{}']\n",
        app.address
    );

    let prometheus = Prometheus::start_with_jobs(&job, |_| {}, &[]).await;
    let ingested = eventually(Duration::from_secs(60), || async {
        let up = prometheus.query("up{job=\"synthetic\"}").await?;
        let series = prometheus
            .query("count({__name__=~\"synthetic_gauge_.+\"})")
            .await?;
        (up == 1.0).then_some(series)
    })
    .await;

    assert_eq!(doc["truth"]["series"], 1_000_000);
    assert_eq!(ingested, Some(1_000_000.0));
    let families = prometheus
        .query("count(count by (__name__) ({__name__=~\"synthetic_gauge_.+\"}))")
        .await;
    assert_eq!(families, Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn churn_replaces_the_series_and_keeps_their_count_in_prometheus() {
    let app = spawn_app().await;
    put(
        &app,
        r#"{"metrics": 2, "series_per_metric": 50, "churn": "2s", "value_interval": "1s"}"#,
    )
    .await;

    let prometheus = Prometheus::start(app.address, &[]).await;
    let generations = || async {
        let newest = prometheus
            .samples("count by (generation) (synthetic_gauge_0)")
            .await;
        let generations: Vec<(u64, String)> = newest
            .iter()
            .filter_map(|s| {
                let generation = s["metric"]["generation"].as_str()?.parse().ok()?;
                Some((generation, s["value"][1].as_str()?.to_string()))
            })
            .collect();
        (generations.len() == 1).then(|| generations[0].clone())
    };
    let (first, _) = eventually(Duration::from_secs(30), generations)
        .await
        .expect("one generation in Prometheus");
    let (later, count) = eventually(Duration::from_secs(30), || async {
        generations().await.filter(|(g, _)| *g >= first + 2)
    })
    .await
    .expect("a later generation alone in Prometheus");

    assert_eq!(count, "50", "the count is kept");
    let doc = document(&app).await;
    assert!(doc["truth"]["generation"].as_u64().unwrap() >= later);
    let seen = prometheus
        .query("count(count_over_time(synthetic_gauge_0[1m]))")
        .await
        .unwrap();
    assert!(
        seen >= 150.0,
        "three generations of 50 were scraped, saw {seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_with_native_histograms_stores_the_synthetic_ones_as_native() {
    let app = spawn_app().await;
    let doc = json(
        put(
            &app,
            r#"{"metrics": 3, "series_per_metric": 40, "type": "native_histogram"}"#,
        )
        .await,
    )
    .await;

    let prometheus = Prometheus::start(app.address, &["--enable-feature=native-histograms"]).await;
    let stored = prometheus
        .wait_for(
            "count({__name__=~\"synthetic_native_histogram_.+\"})",
            120.0,
        )
        .await;

    assert_eq!(doc["truth"]["series"], 120);
    assert_eq!(stored, Some(120.0));
    let samples = prometheus.samples("synthetic_native_histogram_0").await;
    assert_eq!(samples.len(), 40);
    assert!(
        samples.iter().all(|s| s.get("histogram").is_some()),
        "stored as native histograms: {samples:?}"
    );
    let count = prometheus
        .query("min(histogram_count(synthetic_native_histogram_0))")
        .await;
    assert!(
        count.is_some_and(|c| c > 0.0),
        "observations counted: {count:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_series_go_out_over_otlp_as_gauges_sums_and_histograms() {
    for (kind, check) in [
        ("gauge", "gauge"),
        ("counter", "sum"),
        ("histogram", "histogram"),
        ("native_histogram", "exponential"),
    ] {
        let (address, received) = otlp::start_grpc(None).await;
        let endpoint = format!("http://{address}");
        let _binary = spawn_binary(&[
            ("METRICS_BACKEND", "otel"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("SYNTHETIC_METRICS", "2"),
            ("SYNTHETIC_SERIES", "5"),
            ("SYNTHETIC_LABELS", "1"),
            ("SYNTHETIC_TYPE", kind),
        ]);

        let metric = eventually(Duration::from_secs(20), || async {
            received.last(&format!("synthetic_{kind}_1"))
        })
        .await
        .unwrap_or_else(|| panic!("{kind}: no synthetic_{kind}_1 received"));

        let (points, attributes) = points_of(&metric, check, kind);
        assert_eq!(points, 5, "{kind}");
        let mut ids: Vec<String> = attributes
            .iter()
            .filter_map(|a| a.get("series_id").cloned())
            .collect();
        ids.sort();
        assert_eq!(ids, ["0", "1", "2", "3", "4"], "{kind}");
        assert!(
            attributes
                .iter()
                .all(|a| a.get("generation").map(String::as_str) == Some("0")
                    && a.get("label_0").map(String::as_str) == Some("value_0")),
            "{kind}"
        );
    }
}

/// The number of data points of `metric`, checked to be of the kind `check`, and their attributes.
fn points_of(
    metric: &opentelemetry_proto::tonic::metrics::v1::Metric,
    check: &str,
    kind: &str,
) -> (usize, Vec<std::collections::HashMap<String, String>>) {
    use opentelemetry_proto::tonic::{
        common::v1::{KeyValue, any_value::Value as Any},
        metrics::v1::metric::Data,
    };
    let attributes = |list: &[KeyValue]| {
        list.iter()
            .map(|kv| {
                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Any::IntValue(i)) => i.to_string(),
                    Some(Any::StringValue(s)) => s.clone(),
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), value)
            })
            .collect()
    };
    match (&metric.data, check) {
        (Some(Data::Gauge(g)), "gauge") => (
            g.data_points.len(),
            g.data_points
                .iter()
                .map(|p| attributes(&p.attributes))
                .collect(),
        ),
        (Some(Data::Sum(s)), "sum") => {
            assert!(s.is_monotonic, "{kind}");
            (
                s.data_points.len(),
                s.data_points
                    .iter()
                    .map(|p| attributes(&p.attributes))
                    .collect(),
            )
        }
        (Some(Data::Histogram(h)), "histogram") => {
            assert!(
                h.data_points
                    .iter()
                    .all(|p| p.count >= 4 && p.explicit_bounds.len() == 14),
                "{kind}"
            );
            (
                h.data_points.len(),
                h.data_points
                    .iter()
                    .map(|p| attributes(&p.attributes))
                    .collect(),
            )
        }
        (Some(Data::ExponentialHistogram(h)), "exponential") => {
            assert!(
                h.data_points.iter().all(|p| p.count >= 4 && p.scale <= 3),
                "{kind}"
            );
            (
                h.data_points.len(),
                h.data_points
                    .iter()
                    .map(|p| attributes(&p.attributes))
                    .collect(),
            )
        }
        (data, _) => panic!("{kind}: {data:?}"),
    }
}

#[tokio::test]
async fn auth_scope_all_protects_the_synthetic_controls() {
    let mut config = Config::defaults();
    config.auth.metrics_auth_token = Some("t0ken".to_string().into());
    config.auth.metrics_auth_scope = prom_metrics_app::config::Scope::All;
    let backend = std::sync::Arc::new(PrometheusBackend::new());
    let app =
        crate::helpers::spawn_app_recording_into(backend, config, http::counted_routes()).await;

    for path in ["/api/synthetic", "/synthetic"] {
        assert_eq!(app.get(path).await.status(), 401, "{path}");
        let allowed = app
            .client
            .get(app.url(path))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_variables_start_the_series_and_the_log_says_so() {
    let binary = spawn_binary(&[
        ("SYNTHETIC_METRICS", "2"),
        ("SYNTHETIC_SERIES", "3"),
        ("SYNTHETIC_TYPE", "counter"),
        ("SYNTHETIC_CHURN", "1m"),
    ]);
    let client = reqwest::Client::new();

    let doc = json(
        client
            .get(binary.url("/api/synthetic"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let scrape = client
        .get(binary.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let said = eventually(Duration::from_secs(5), || async {
        let stdout = binary.stdout();
        stdout
            .lines()
            .find(|line| line.contains("synthetic series on"))
            .map(str::to_string)
    })
    .await;

    assert_eq!(
        (
            &doc["metrics"],
            &doc["series_per_metric"],
            &doc["type"],
            &doc["churn"]
        ),
        (&json!(2), &json!(3), &json!("counter"), &json!("1m"))
    );
    assert_eq!(doc["truth"]["series"], 6);
    assert_eq!(synthetic_samples(&scrape).len(), 6);
    assert!(scrape.contains("synthetic_counter_1_total{series_id=\"2\",generation=\"0\"} "));
    let said = said.expect("a log line tells the synthetic series are on");
    assert!(
        said.contains("series=6") || said.contains("\"series\":6"),
        "{said}"
    );
}
