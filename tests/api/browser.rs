//! Pages in a real headless Chromium (Debian's `chromium`), on a closed network.

use std::{process::Command, time::Duration};

use crate::helpers::{eventually, parse_exposition, spawn_binary, value};

/// Runs headless Chromium on `url` with extra `args`; returns stdout.
fn chromium(url: &str, args: &[&str]) -> String {
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
    String::from_utf8_lossy(&output.stdout).into_owned()
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

    assert!(dom.contains("Welcome to prom-metrics-app"), "{dom}");
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
