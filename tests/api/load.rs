//! The `load` command, run as the real binary against the app: its summary matches the app's own
//! counters exactly, it keeps its rate, it refuses bad flags, and off a terminal it prints nothing
//! but its summary.

use std::process::{Output, Stdio};

use prom_metrics_app::load::Mix;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;

use crate::helpers::{binary_command, free_port, spawn_app, value};

/// Runs `prom-metrics-app load ARGS` to the end.
async fn load(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(binary_command());
    command.arg("load").args(args).stdin(Stdio::null());
    command.output().await.expect("the binary runs")
}

/// The `--json` summary on stdout.
fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON line:\n{stdout}");
    serde_json::from_str(&stdout).expect("stdout is JSON")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn load_summary_matches_the_apps_counters_exactly() {
    let app = spawn_app().await;
    let mix = "/=50,/do_task?seconds=0=20,/status/500=10,/random=20";

    let output = load(&[
        "--target",
        &app.url(""),
        "--rate",
        "200",
        "--requests",
        "400",
        "--mix",
        mix,
        "--json",
        "--seed",
        "1",
    ])
    .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = summary(&output);
    let count = |field: &Value| field.as_f64().unwrap_or(0.0);
    let metrics = app.metrics().await;
    assert_eq!(summary["requests"]["sent"], 400);
    assert_eq!(summary["requests"]["completed"], 400);
    assert_eq!(
        value(&metrics, "http_requests_total"),
        count(&summary["requests"]["completed"])
    );
    assert_eq!(
        value(&metrics, "http_successful_request_total"),
        count(&summary["status_codes"]["200"])
    );
    assert_eq!(
        value(&metrics, "http_error_4xx_total"),
        count(&summary["status_codes"]["404"])
    );
    assert_eq!(
        value(&metrics, "http_error_5xx_total"),
        count(&summary["status_codes"]["500"])
    );
    // The seed decides which path each request takes: /status/500 is the only 500 and /random
    // the only 404.
    let mix = Mix::parse(mix).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let picks: Vec<usize> = (0..400).map(|_| mix.pick(&mut rng)).collect();
    let picked = |index| picks.iter().filter(|&&p| p == index).count() as f64;
    assert_eq!(count(&summary["status_codes"]["500"]), picked(2));
    assert_eq!(count(&summary["status_codes"]["404"]), picked(3));
    assert_eq!(summary["seed"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn load_keeps_the_requested_rate_on_a_short_run() {
    let app = spawn_app().await;

    let output = load(&[
        "--target",
        &app.url("/"),
        "--rate",
        "100",
        "--duration",
        "2s",
        "--json",
    ])
    .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = summary(&output);
    let achieved = summary["rate"]["achieved"].as_f64().unwrap();
    let duration = summary["duration_seconds"].as_f64().unwrap();
    assert_eq!(summary["requests"]["sent"], 200, "{summary}");
    assert!((95.0..=105.0).contains(&achieved), "{summary}");
    assert!((1.9..3.0).contains(&duration), "{summary}");
    assert_eq!(summary["errors"]["connect"], 0, "{summary}");
}

#[test]
fn load_exits_2_on_a_bad_flag_and_names_the_value() {
    let cases = [
        ("--mix", "/=abc", "abc"),
        ("--mix", "http://example.com/=1", "http://example.com/"),
        ("--mix", "//example.com/=1", "//example.com/"),
        ("--rate", "0", "'0'"),
        ("--duration", "soon", "soon"),
        ("--concurrency", "0", "'0'"),
        ("--target", "ftp://example.com", "ftp://example.com"),
    ];

    for (flag, bad, named) in cases {
        let mut args = vec!["load", "--requests", "1", flag, bad];
        if flag != "--target" {
            args.extend(["--target", "http://127.0.0.1:9"]);
        }
        let output = binary_command()
            .args(args)
            .output()
            .expect("the binary runs");

        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {bad}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {bad}: {stderr}");
        assert!(stderr.contains(named), "{flag} {bad}: {stderr}");
        assert!(
            stderr.contains("expected") || stderr.contains("paths"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn load_exits_1_when_the_target_cannot_be_reached() {
    let target = format!("http://127.0.0.1:{}", free_port());

    let output = load(&["--target", &target, "--rate", "50", "--requests", "5"]).await;

    let stderr = stderr(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("could not reach {target}/")),
        "{stderr}"
    );
    assert!(
        stderr.contains("all 5 requests failed to connect"),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stdout.contains("connect: 5"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn load_prints_only_the_summary_when_stdout_is_not_a_terminal() {
    let app = spawn_app().await;

    let output = load(&[
        "--target",
        &app.url("/"),
        "--rate",
        "50",
        "--requests",
        "20",
        "--mix",
        "/=1,/random=1",
    ])
    .await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{stdout:?}"
    );
    assert!(stdout.starts_with("target"), "{stdout}");
    assert!(
        stdout.contains("20 sent of 20 planned, 20 completed"),
        "{stdout}"
    );
    assert!(stdout.contains("latency"), "{stdout}");
}
