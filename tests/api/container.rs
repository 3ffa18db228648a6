//! What the `scratch` container image relies on: the `healthcheck` command (the image has no shell
//! or curl) and TLS to a collector with no CA files on disk.

use std::{process::Output, time::Duration};

use crate::helpers::{binary_command, eventually, free_port, spawn_binary};
use crate::otlp;

fn healthcheck(envs: &[(&str, &str)], args: &[&str]) -> Output {
    binary_command()
        .envs(envs.iter().copied())
        .arg("healthcheck")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn healthcheck_exits_0_when_the_instance_on_listen_addr_is_healthy() {
    let app = spawn_binary(&[]);
    // Bound to "any": the probe must read 0.0.0.0 as loopback.
    let listen = format!("0.0.0.0:{}", app.address.port());

    let by_variable = healthcheck(&[("LISTEN_ADDR", &listen)], &[]);
    // No CA files, as in the scratch image: the client must still be built.
    let no_roots = [
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
        ("SSL_CERT_DIR", "/nonexistent"),
    ];
    let by_flag = healthcheck(&no_roots, &["--listen", &listen]);

    assert_eq!(
        by_variable.status.code(),
        Some(0),
        "{}",
        stderr(&by_variable)
    );
    assert_eq!(by_flag.status.code(), Some(0), "{}", stderr(&by_flag));
    assert!(
        stderr(&by_flag).contains("/healthz answered 200"),
        "{}",
        stderr(&by_flag)
    );
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let listen = format!("127.0.0.1:{}", free_port());

    let output = healthcheck(&[("LISTEN_ADDR", &listen)], &[]);

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unhealthy"), "{}", stderr(&output));
    assert!(stderr(&output).contains("refused"), "{}", stderr(&output));
}

#[test]
fn healthcheck_exits_1_on_a_status_other_than_200() {
    let app = spawn_binary(&[]);

    let output = healthcheck(&[], &["--url", &app.url("/no-such-page")]);

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("404"), "{}", stderr(&output));
}

#[test]
fn healthcheck_gives_up_after_its_timeout_on_a_server_that_never_answers() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let start = std::time::Instant::now();

    let output = healthcheck(&[], &["--url", &url, "--timeout", "300ms"]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn healthcheck_refuses_a_url_that_is_not_http_with_code_2() {
    let output = healthcheck(&[], &["--url", "ftp://127.0.0.1/healthz"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--url"), "{}", stderr(&output));
}

/// With no CA file anywhere, as in the `scratch` image, the app still starts with TLS export and
/// falls back to the roots compiled into it, which do not trust a private test CA: so the export
/// fails, is counted, and nothing reaches the receiver.
async fn tls_export_without_ca_files_uses_the_embedded_roots(protocol: &str) {
    let (_, identity) = otlp::test_certificates();
    let (address, received) = otlp::start_grpc(Some(identity)).await;
    let endpoint = format!("https://localhost:{}", address.port());
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
        ("SSL_CERT_DIR", "/nonexistent"),
    ]);
    let client = reqwest::Client::new();

    let home = client.get(app.url("/")).send().await.unwrap();
    let failed = eventually(Duration::from_secs(40), || async {
        let text = crate::helpers::get_text(&client, &app.url("/metrics")).await?;
        let metrics = crate::helpers::parse_exposition(&text);
        let failed =
            crate::helpers::value(&metrics, "prom_metrics_app_telemetry_failed_spans_total");
        (failed >= 1.0).then_some(failed)
    })
    .await;

    assert_eq!(home.status(), 200);
    assert!(failed.is_some(), "the failed export is counted");
    assert!(received.spans().is_empty(), "{:?}", received.spans());
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_tls_export_starts_without_ca_files_and_still_verifies_the_collector() {
    tls_export_without_ca_files_uses_the_embedded_roots("grpc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_tls_export_starts_without_ca_files_and_still_verifies_the_collector() {
    tls_export_without_ca_files_uses_the_embedded_roots("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_export_works_without_ca_files() {
    // The default OTLP/HTTP client refuses to be built where the system has no roots, even for
    // http://: in the scratch image the app would not start.
    let (address, received) = otlp::start_http().await;
    let endpoint = format!("http://{address}");
    let app = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
        ("SSL_CERT_DIR", "/nonexistent"),
    ]);

    let home = reqwest::get(app.url("/")).await.unwrap();
    crate::otel::terminate(app).await;

    assert_eq!(home.status(), 200);
    assert!(
        received.spans().iter().any(|s| s.name == "GET /"),
        "{:?}",
        received.spans()
    );
}
