//! Configuration through the real binary: every variable, every invalid value, `--help`, `--version`.

use std::time::Duration;

use crate::helpers::{binary_command, spawn_binary};

/// Runs the binary with `envs` and `args`, expecting it to stop at once; returns code and stderr.
fn run_expecting_exit(envs: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let output = binary_command()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_TO_STDOUT", "true")
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn every_invalid_variable_stops_the_start_with_code_2_and_one_clear_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("METRICS_BACKEND", "foo", "prometheus, otel"),
        ("OTEL_EXPORTER", "kafka", "console, otlp, none"),
        ("CONSOLE_FORMAT", "yaml", "compact, otlp-json"),
        (
            "NATIVE_HISTOGRAM_BUCKET_FACTOR",
            "1",
            "off, or a bucket growth factor above 1",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "http://"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "ftp://collector:21",
            "http://",
        ),
        ("OTEL_EXPORTER_OTLP_INSECURE", "maybe", "true, false"),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            "grpc, http/protobuf",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "always_on"),
        ("OTEL_TRACES_SAMPLER_ARG", "2", "from 0 to 1"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0", "milliseconds"),
        (
            "OTEL_PROPAGATORS",
            "xray",
            "tracecontext, baggage, b3, b3multi, none",
        ),
        ("LOG_TO_STDOUT", "perhaps", "true, false"),
        ("LISTEN_ADDR", "localhost", "IP:PORT"),
        ("LISTEN_ADDR", "0.0.0.0:99999", "IP:PORT"),
        ("SHUTDOWN_GRACE_PERIOD", "forever", "30s"),
        ("SHUTDOWN_DRAIN_DELAY", "soon", "30s"),
        ("TRACES_EXCLUDED_PATHS", "healthz", "/healthz"),
        ("RUST_LOG", "info,[", "filter"),
        ("RESERVED_CONNECTIONS", "lots", "from 0 to 100000"),
    ];

    for (variable, bad, valid) in cases {
        let (code, stderr, _) = run_expecting_exit(&[(variable, bad)], &[]);

        assert_eq!(code, Some(2), "{variable}={bad}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{variable}={bad}: {stderr}"
        );
        assert!(stderr.contains(variable), "{variable}={bad}: {stderr}");
        assert!(
            stderr.contains(&format!("'{bad}'")),
            "{variable}={bad}: {stderr}"
        );
        assert!(stderr.contains(valid), "{variable}={bad}: {stderr}");
    }
}

#[test]
fn an_invalid_flag_value_names_the_flag_and_its_variable() {
    let (code, stderr, _) = run_expecting_exit(&[], &["--metrics-backend", "statsd"]);

    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--metrics-backend") && stderr.contains("METRICS_BACKEND"),
        "{stderr}"
    );
    assert!(stderr.contains("'statsd'"), "{stderr}");
}

#[test]
fn help_names_every_variable_and_default() {
    let (code, _, stdout) = run_expecting_exit(&[], &["--help"]);

    assert_eq!(code, Some(0));
    for variable in [
        "METRICS_BACKEND",
        "OTEL_EXPORTER",
        "CONSOLE_FORMAT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_INSECURE",
        "LOG_TO_STDOUT",
        "LISTEN_ADDR",
        "SHUTDOWN_GRACE_PERIOD",
    ] {
        assert!(
            stdout.contains(&format!("[env: {variable}")),
            "{variable} missing from --help: {stdout}"
        );
    }
    assert!(stdout.contains("[default: prometheus]"), "{stdout}");
    assert!(stdout.contains("[default: compact]"), "{stdout}");
    assert!(stdout.contains("[default: 0.0.0.0:5000]"), "{stdout}");
    assert!(stdout.contains("[default: 30s]"), "{stdout}");
}

#[test]
fn version_prints_the_version() {
    let (code, _, stdout) = run_expecting_exit(&[], &["--version"]);

    assert_eq!(code, Some(0));
    assert_eq!(
        stdout.trim(),
        format!("prom-metrics-app {}", prom_metrics_app::VERSION)
    );
}

#[tokio::test]
async fn values_are_case_insensitive() {
    let binary = spawn_binary(&[
        ("METRICS_BACKEND", "OTEL"),
        ("OTEL_EXPORTER", "CONSOLE"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE"),
    ]);

    let response = reqwest::get(binary.url("/metrics")).await.unwrap();

    assert_eq!(
        response.status(),
        404,
        "METRICS_BACKEND=OTEL selects the otel backend"
    );
}

#[tokio::test]
async fn a_flag_beats_its_variable() {
    let binary = crate::helpers::spawn_binary_with_args(
        &[("METRICS_BACKEND", "otel")],
        &["--metrics-backend", "prometheus"],
    );

    let response = reqwest::get(binary.url("/metrics")).await.unwrap();

    assert_eq!(
        response.status(),
        200,
        "--metrics-backend prometheus wins over METRICS_BACKEND=otel"
    );
}

#[tokio::test]
async fn listen_flag_beats_listen_addr() {
    let port = crate::helpers::free_port();
    let mut child = crate::helpers::binary_command()
        .env("LISTEN_ADDR", "127.0.0.1:1")
        .env("LOG_TO_STDOUT", "1")
        .env("OTEL_EXPORTER", "none")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let reached = crate::helpers::eventually(Duration::from_secs(10), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .ok()
            .map(|r| r.status())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(reached.map(|s| s.as_u16()), Some(200));
}

#[tokio::test]
async fn an_empty_variable_counts_as_unset() {
    let binary = crate::helpers::spawn_binary(&[
        ("METRICS_BACKEND", ""),
        ("OTEL_EXPORTER_OTLP_INSECURE", ""),
        ("OTEL_PROPAGATORS", ""),
    ]);

    let response = reqwest::get(binary.url("/metrics")).await.unwrap();

    assert_eq!(
        response.status(),
        200,
        "the default backend, prometheus, serves /metrics"
    );
}

#[test]
fn a_port_already_in_use_stops_the_start_with_code_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();

    let (code, stderr, _) =
        run_expecting_exit(&[("LISTEN_ADDR", &address), ("OTEL_EXPORTER", "none")], &[]);

    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("error: cannot listen on"), "{stderr}");
    assert!(stderr.contains(&address), "{stderr}");
}

#[tokio::test]
async fn listen_addr_accepts_a_host_name() {
    let port = crate::helpers::free_port();
    let binary = spawn_binary(&[("LISTEN_ADDR", &format!("localhost:{port}"))]);

    let response = reqwest::get(format!("http://{}/healthz", binary.address)).await;

    assert!(binary.address.ip().is_loopback(), "{}", binary.address);
    assert_eq!(binary.address.port(), port);
    assert_eq!(response.map(|r| r.status().as_u16()).ok(), Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn console_format_flag_beats_its_variable_in_any_case() {
    let binary = crate::helpers::spawn_binary_with_args(
        &[("OTEL_EXPORTER", "console"), ("CONSOLE_FORMAT", "compact")],
        &["--console-format", "OTLP-Json"],
    );

    reqwest::get(binary.url("/")).await.unwrap();
    let stdout = crate::otel::terminate(binary).await;

    assert!(
        stdout.lines().any(|l| l.starts_with("{\"resourceSpans\":")),
        "{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("span ")), "{stdout}");
}
