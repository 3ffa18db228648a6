//! End to end with a real Prometheus server (Debian's `prometheus` package) scraping the app.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::helpers::{eventually, free_port, spawn_app};

/// A Prometheus server scraping one target every second, with its own data folder.
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`, with extra command-line `flags`.
    pub async fn start(target: SocketAddr, flags: &[&str]) -> Self {
        let job =
            format!("  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n");
        Self::start_with_jobs(&job, |_| {}, flags).await
    }

    /// Starts Prometheus scraping `target` as the job `prom-metrics-app`, the one the rules select,
    /// with the repository's rules (`deploy/prometheus/rules.yml`) and extra `flags`.
    pub async fn start_with_rules(target: SocketAddr, flags: &[&str]) -> Self {
        let rules =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
        let jobs = format!(
            "  - job_name: prom-metrics-app\n    static_configs:\n      - targets: ['{target}']\nrule_files:\n  - {}\n",
            rules.display()
        );
        Self::start_with_jobs(&jobs, |_| {}, flags).await
    }

    /// Starts Prometheus with the YAML list items `jobs` as its `scrape_configs`; `prepare` may
    /// write files into its folder (such as a credentials file) before it starts.
    pub async fn start_with_jobs(
        jobs: &str,
        prepare: impl FnOnce(&std::path::Path),
        flags: &[&str],
    ) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("pma-prometheus-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed by the test command (Debian package prometheus)");
        let prometheus = Self {
            child,
            port,
            dir,
            client: reqwest::Client::new(),
        };
        let ready = eventually(Duration::from_secs(30), || async {
            let response = prometheus
                .client
                .get(prometheus.url("/-/ready"))
                .send()
                .await
                .ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        assert!(ready.is_some(), "prometheus did not become ready");
        prometheus
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Runs an API call and returns its `data`.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Option<serde_json::Value> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let body =
            crate::helpers::get_text(&self.client, &self.url(&format!("{path}?{query}"))).await?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        (json["status"] == "success").then(|| json["data"].clone())
    }

    /// The value of an instant query that returns one sample.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let data = self.api("/api/v1/query", &[("query", promql)]).await?;
        data["result"].get(0)?["value"][1].as_str()?.parse().ok()
    }

    /// The samples of an instant query, as the API returns them.
    pub async fn samples(&self, promql: &str) -> Vec<serde_json::Value> {
        self.api("/api/v1/query", &[("query", promql)])
            .await
            .and_then(|data| data["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Polls `promql` until it returns `expected`, for at most 30 s; returns the last value seen.
    pub async fn wait_for(&self, promql: &str, expected: f64) -> Option<f64> {
        let mut last = None;
        for _ in 0..150 {
            last = self.query(promql).await;
            if last == Some(expected) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_exact_values_of_every_family() {
    let app = spawn_app().await;
    let prometheus = Prometheus::start(app.address, &[]).await;
    for path in [
        "/",
        "/index",
        "/",
        "/missing",
        "/also/missing",
        "/do_task?seconds=0.1",
        "/do_task?seconds=zz",
    ] {
        app.get(path).await;
    }
    app.post("/").await;
    app.get("/view_metrics").await;

    assert_eq!(
        prometheus
            .wait_for("http_requests_total{job=\"app\"}", 8.0)
            .await,
        Some(8.0)
    );
    assert_eq!(prometheus.query("up{job=\"app\"}").await, Some(1.0));
    assert_eq!(
        prometheus.query("http_successful_request_total").await,
        Some(5.0)
    );
    assert_eq!(prometheus.query("http_error_4xx_total").await, Some(3.0));
    assert_eq!(prometheus.query("http_error_5xx_total").await, Some(0.0));
    assert_eq!(
        prometheus.query("request_processing_seconds_count").await,
        Some(8.0)
    );
    assert_eq!(
        prometheus
            .query("request_processing_seconds_bucket{le=\"+Inf\"}")
            .await,
        Some(8.0)
    );
    assert_eq!(
        prometheus
            .query("request_processing_seconds_bucket{le=\"0.075\"}")
            .await,
        Some(7.0)
    );
    assert_eq!(
        prometheus.query("sum(http_server_request_duration_seconds_count{http_route=\"unmatched\",http_response_status_code=\"404\"})").await,
        Some(2.0)
    );
    assert_eq!(
        prometheus.query("http_server_request_duration_seconds_count{http_request_method=\"POST\",http_route=\"/\"}").await,
        Some(1.0)
    );
    assert_eq!(prometheus.query("http_server_request_duration_seconds_count{http_route=\"/do_task\",http_response_status_code=\"400\"}").await, Some(1.0));
    assert_eq!(
        prometheus.query("prom_metrics_app_build_info").await,
        Some(1.0)
    );
    assert!(
        prometheus
            .query("process_resident_memory_bytes")
            .await
            .unwrap_or(0.0)
            > 1e6
    );
    assert!(
        prometheus
            .query("process_start_time_seconds")
            .await
            .unwrap_or(0.0)
            > 1.6e9
    );
}

/// The cumulative classic buckets of the unlabelled `name` in a 0.0.4 text exposition.
fn classic_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let (le, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_with_native_histograms_stores_both_request_histograms_as_native() {
    let app = spawn_app().await;
    let prometheus =
        Prometheus::start_with_rules(app.address, &["--enable-feature=native-histograms"]).await;
    // 8 fast requests and 2 of about 150 ms: the 0.9 quantile is the 9th, in (0.1, 0.25]. A
    // fast and a slow one are scraped before the others, so that the rules' rates, which count
    // nothing of a series' first sample, see the others arrive.
    app.get("/").await;
    app.get("/do_task?seconds=0.15").await;
    assert_eq!(
        prometheus
            .wait_for(
                "sum(histogram_count(http_server_request_duration_seconds))",
                2.0
            )
            .await,
        Some(2.0)
    );
    for _ in 0..6 {
        app.get("/").await;
    }
    app.get("/missing").await;
    app.get("/do_task?seconds=0.15").await;

    assert_eq!(
        prometheus
            .wait_for("histogram_count(request_processing_seconds)", 10.0)
            .await,
        Some(10.0),
        "the native histogram counts every request"
    );
    assert_eq!(
        prometheus
            .wait_for(
                "sum(histogram_count(http_server_request_duration_seconds))",
                10.0
            )
            .await,
        Some(10.0)
    );
    for family in [
        "request_processing_seconds",
        "http_server_request_duration_seconds",
    ] {
        let samples = prometheus.samples(family).await;
        assert!(!samples.is_empty(), "{family}");
        assert!(
            samples.iter().all(|s| s.get("histogram").is_some()),
            "{family} is stored as native histograms: {samples:?}"
        );
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let classic = classic_buckets(&text, "request_processing_seconds");
    let rank = 0.9 * classic.last().unwrap().1;
    let at = classic
        .iter()
        .position(|&(_, count)| count >= rank)
        .unwrap();
    let (lower, upper) = (if at == 0 { 0.0 } else { classic[at - 1].0 }, classic[at].0);
    let native = prometheus
        .query("histogram_quantile(0.9, request_processing_seconds)")
        .await
        .expect("a native quantile");
    assert!(
        lower <= native && native <= upper,
        "native p90 {native} lies in the classic bucket ({lower}, {upper}]"
    );
    assert_eq!((lower, upper), (0.1, 0.25));
    // The native recording rule of deploy/prometheus/rules.yml: once its rate has seen the 8
    // requests after the first scrape (those of the 404's new series aside), their p99 is that
    // of the slow one, in the same classic bucket (before, it may be that of fast ones alone).
    let recorded = eventually(Duration::from_secs(30), || async {
        prometheus
            .query("job:http_server_request_duration_seconds:histogram_quantile_native_rate5m{quantile=\"0.99\"}")
            .await
            .filter(|v| *v > lower)
    })
    .await
    .expect("the native recording rule records the p99 of the slow requests");
    assert!(
        lower < recorded && recorded <= upper,
        "recorded native p99 {recorded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_without_the_native_histograms_feature_stores_classic_buckets_only() {
    let app = spawn_app().await;
    let prometheus = Prometheus::start(app.address, &[]).await;

    app.get("/").await;
    app.get("/do_task?seconds=0.01").await;

    assert_eq!(
        prometheus
            .wait_for("request_processing_seconds_count", 2.0)
            .await,
        Some(2.0)
    );
    assert_eq!(
        prometheus
            .query("request_processing_seconds_bucket{le=\"+Inf\"}")
            .await,
        Some(2.0)
    );
    assert!(
        prometheus
            .samples("request_processing_seconds")
            .await
            .is_empty(),
        "no native sample"
    );
    assert!(
        prometheus
            .samples("http_server_request_duration_seconds")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_stores_the_exemplar_that_leads_to_the_exported_span() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (receiver, received) = crate::otlp::start_grpc(None).await;
    let endpoint = format!("http://{receiver}");
    let mut binary = crate::helpers::spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
    ]);
    let prometheus =
        Prometheus::start(binary.address, &["--enable-feature=exemplar-storage"]).await;

    reqwest::Client::new()
        .get(binary.url("/do_task?seconds=0.01"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (start, end) = ((now - 600).to_string(), (now + 600).to_string());
    let exemplar = eventually(Duration::from_secs(30), || async {
        let data = prometheus
            .api(
                "/api/v1/query_exemplars",
                &[
                    ("query", "request_processing_seconds_bucket"),
                    ("start", &start),
                    ("end", &end),
                ],
            )
            .await?;
        data.as_array()?
            .iter()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .find(|e| e["labels"]["trace_id"] == TRACE_ID)
    })
    .await;
    binary.signal(libc::SIGTERM);
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(20)))
        .await
        .unwrap();

    let exemplar = exemplar.expect("Prometheus returned an exemplar with the request's trace id");
    let span_id = exemplar["labels"]["span_id"].as_str().unwrap().to_string();
    assert_eq!(code, Some(0));
    let spans = received.spans();
    let span = spans
        .iter()
        .find(|s| s.span_id == span_id)
        .expect("the exemplar's span reached the receiver");
    assert_eq!(span.trace_id, TRACE_ID);
    assert_eq!(span.name, "GET /do_task");
}
