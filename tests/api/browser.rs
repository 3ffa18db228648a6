//! Pages in a real headless Chromium (Debian's `chromium`), on a closed network: through its
//! command line (`--dump-dom`, `--screenshot`) here, and through the DevTools protocol ([`cdp`])
//! for the layout at desktop and phone sizes ([`layout`]).

mod cdp;
mod layout;

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use prom_metrics_app::{
    chaos::ChaosSettings,
    config::Config,
    http,
    metrics::{
        ClientRecord, Format, Forward, MetricsBackend, RequestRecord, RouteMetrics, Snapshot,
        prometheus::PrometheusBackend,
    },
};
use serde_json::Value;

use crate::helpers::{
    eventually, parse_exposition, spawn_app, spawn_app_recording_into, spawn_binary, value,
};

/// Other origins resolve to nothing, so a page that reached for one would log a failure.
const CLOSED_NETWORK: &str = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1";

/// Runs headless Chromium on `url` with extra `args`; returns stdout.
fn chromium(url: &str, args: &[&str]) -> String {
    chromium_with_log(url, args).0
}

/// Runs headless Chromium on `url` with extra `args`, logging to stderr; returns stdout and the
/// log.
fn chromium_with_log(url: &str, args: &[&str]) -> (String, String) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("pma-chromium-{}-{run}", std::process::id()));
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is installed by the test command (Debian package chromium)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Console messages, CSP reports and blocked loads in a Chromium log, except `allowed` ones.
fn page_errors(log: &str, allowed: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|line| {
            [
                "CONSOLE",
                "Uncaught",
                "Refused",
                "Content Security Policy",
                "net::ERR_",
            ]
            .iter()
            .any(|needle| line.contains(needle))
        })
        .filter(|line| !allowed.iter().any(|a| line.contains(a)))
        .map(str::to_string)
        .collect()
}

/// `target/screenshots/`, where screenshots are kept for a person to look at.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_visit_loads_the_styles_and_counts_exactly_one_request() {
    let binary = spawn_binary(&[]);
    let url = binary.url("/");

    let dom = tokio::task::spawn_blocking(move || {
        chromium(&url, &["--dump-dom", "--virtual-time-budget=3000"])
    })
    .await
    .unwrap();
    let stylesheet = eventually(Duration::from_secs(5), || async {
        binary
            .stdout()
            .contains("GET /static/style.css 200")
            .then_some(())
    })
    .await;
    let metrics = parse_exposition(
        &reqwest::get(binary.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    assert!(
        dom.contains("<h1>Welcome to <span class=\"name\">prom-metrics-app</span></h1>"),
        "{dom}"
    );
    assert!(
        stylesheet.is_some(),
        "the browser loaded the embedded stylesheet: {}",
        binary.stdout()
    );
    assert!(
        binary.stdout().contains("GET /static/favicon.svg 200"),
        "{}",
        binary.stdout()
    );
    assert_eq!(
        value(&metrics, "http_requests_total"),
        1.0,
        "the page counts once; its assets count nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_page_renders_its_tables_in_a_browser() {
    let binary = spawn_binary(&[]);
    reqwest::get(binary.url("/do_task?seconds=0.02"))
        .await
        .unwrap();
    reqwest::get(binary.url("/nope")).await.unwrap();
    let screenshot =
        std::env::temp_dir().join(format!("pma-view-metrics-{}.png", std::process::id()));
    let (url, path) = (binary.url("/view_metrics"), screenshot.clone());

    let dom = tokio::task::spawn_blocking(move || {
        chromium(
            &url,
            &[
                &format!("--screenshot={}", path.display()),
                "--window-size=1100,1400",
            ],
        );
        chromium(&url, &["--dump-dom"])
    })
    .await
    .unwrap();

    assert!(
        dom.contains("<td>http_requests_total</td><td class=\"num\">2</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>http_error_4xx_total</td><td class=\"num\">1</td>"),
        "{dom}"
    );
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 20_000,
        "a page with content, not a blank image: {} bytes",
        png.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_loads_without_errors_or_requests_to_other_origins() {
    let binary = spawn_binary(&[]);

    for path in [
        "/",
        "/view_metrics",
        "/do_task?seconds=0",
        "/chain",
        "/chaos",
        "/synthetic",
        "/no-such-page",
    ] {
        let url = binary.url(path);
        let (dom, log) = tokio::task::spawn_blocking(move || {
            chromium_with_log(
                &url,
                &[
                    "--enable-logging=stderr",
                    "--v=0",
                    CLOSED_NETWORK,
                    "--virtual-time-budget=7000",
                    "--dump-dom",
                ],
            )
        })
        .await
        .unwrap();

        // The 404 page itself is reported as a failed load; nothing else may be.
        let allowed: &[&str] = match path {
            "/no-such-page" => &["status of 404"],
            _ => &[],
        };
        assert_eq!(page_errors(&log, allowed), Vec::<String>::new(), "{path}");
        assert!(dom.contains("</main>"), "{path}: {dom}");
    }
    let access = binary.stdout();
    assert!(
        access.contains("GET /static/view_metrics.js 200"),
        "the script was loaded: {access}"
    );
}

/// Per-bucket counts and cumulative counts of `request_processing_seconds` in a JSON snapshot.
fn own_counts(snapshot: &Value) -> Vec<u64> {
    let mut below = 0;
    snapshot["request_processing_seconds"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| {
            let cumulative = bucket["count"].as_u64().unwrap();
            let own = cumulative - below;
            below = cumulative;
            own
        })
        .collect()
}

/// `name="value"` of every `<rect class="bar" ...>` in a DOM, in order.
fn bar_attribute(dom: &str, name: &str) -> Vec<String> {
    dom.split("<rect class=\"bar\"")
        .skip(1)
        .map(|rect| {
            let start = rect.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            rect[start..].split('"').next().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_page_shows_the_counts_and_bars_of_the_requests_made() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.get("/do_task?seconds=0").await;
    }
    app.get("/missing").await;
    app.get("/status/503").await;
    let snapshot: Value = serde_json::from_str(
        &app.get("/view_metrics?format=json")
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let url = app.url("/view_metrics");

    let dom = tokio::task::spawn_blocking(move || {
        chromium(
            &url,
            &[CLOSED_NETWORK, "--virtual-time-budget=4000", "--dump-dom"],
        )
    })
    .await
    .unwrap();

    assert!(
        dom.contains("<td>http_requests_total</td><td class=\"num\">7</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td>http_successful_request_total</td><td class=\"num\">5</td>"));
    assert!(dom.contains("<td>http_error_4xx_total</td><td class=\"num\">1</td>"));
    assert!(dom.contains("<td>http_error_5xx_total</td><td class=\"num\">1</td>"));
    let own = own_counts(&snapshot);
    assert_eq!(own.iter().sum::<u64>(), 7);
    let counts: Vec<u64> = bar_attribute(&dom, "data-count")
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(counts, own, "one bar per bucket, with its own count");
    let highest = *own.iter().max().unwrap() as f64;
    let heights: Vec<f64> = bar_attribute(&dom, "height")
        .iter()
        .map(|h| h.parse().unwrap())
        .collect();
    for (height, count) in heights.iter().zip(&own) {
        assert!(
            (height - *count as f64 / highest * 160.0).abs() < 0.01,
            "{heights:?} {own:?}"
        );
    }
    for route in ["/do_task", "/status/{code}", "unmatched"] {
        assert!(dom.contains(&format!("<td>{route}</td>")), "{route}");
    }
}

/// A Prometheus backend that, on its second snapshot (the page's first poll, after the page's
/// own), first serves `extra` more requests through the app: requests made between the page's
/// load and its refresh, at a known moment.
struct RequestsBeforeFirstPoll {
    inner: PrometheusBackend,
    snapshots: AtomicUsize,
    extra: usize,
    url: std::sync::OnceLock<String>,
}

impl MetricsBackend for RequestsBeforeFirstPoll {
    fn route(self: std::sync::Arc<Self>, _route: &'static str) -> std::sync::Arc<dyn RouteMetrics> {
        std::sync::Arc::new(Forward(self))
    }
    fn record(&self, request: &RequestRecord) {
        self.inner.record(request)
    }
    fn record_client(&self, call: &ClientRecord) {
        self.inner.record_client(call)
    }
    fn set_chaos(&self, settings: &ChaosSettings) {
        self.inner.set_chaos(settings)
    }
    fn snapshot(&self) -> Snapshot {
        if self.snapshots.fetch_add(1, Ordering::SeqCst) == 1 {
            let url = self.url.get().expect("set before the page loads").clone();
            let extra = self.extra;
            // Off the runtime: the blocking client must not run on a tokio thread.
            tokio::task::block_in_place(|| {
                std::thread::spawn(move || {
                    for _ in 0..extra {
                        reqwest::blocking::get(&url).expect("a request");
                    }
                })
                .join()
                .unwrap()
            });
        }
        self.inner.snapshot()
    }
    fn encode(&self, format: Format) -> Option<Result<Vec<u8>, std::fmt::Error>> {
        self.inner.encode(format)
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_metrics_page_refreshes_itself_after_more_requests() {
    let backend = Arc::new(RequestsBeforeFirstPoll {
        inner: PrometheusBackend::new(),
        snapshots: AtomicUsize::new(0),
        extra: 3,
        url: std::sync::OnceLock::new(),
    });
    let app =
        spawn_app_recording_into(backend.clone(), Config::defaults(), http::counted_routes()).await;
    backend.url.set(app.url("/do_task?seconds=0")).unwrap();
    for _ in 0..2 {
        app.get("/").await;
    }
    let url = app.url("/view_metrics");

    let dom = tokio::task::spawn_blocking(move || {
        chromium(
            &url,
            &[CLOSED_NETWORK, "--virtual-time-budget=8000", "--dump-dom"],
        )
    })
    .await
    .unwrap();

    assert!(
        backend.snapshots.load(Ordering::SeqCst) >= 2,
        "the page polled"
    );
    assert!(
        dom.contains("<td>http_requests_total</td><td class=\"num\">5</td>"),
        "2 before the page, 3 after, shown without a reload: {dom}"
    );
    assert!(
        dom.contains(
            "<td>/do_task</td><td data-label=\"Method\">GET</td><td class=\"num\" data-label=\"Status\">200</td><td class=\"num\" data-label=\"Count\">3</td>"
        ),
        "{dom}"
    );
    let counts: u64 = bar_attribute(&dom, "data-count")
        .iter()
        .map(|c| c.parse::<u64>().unwrap())
        .sum();
    assert_eq!(counts, 5);
}
