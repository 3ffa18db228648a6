//! The faults of a pod: readiness and liveness that fail on demand while the app keeps serving,
//! `POST /panic`, CPU and memory stress; each seen over HTTP, in the process's own figures and in
//! the gauges of both backends.

use std::{
    io::Read as _,
    process::Stdio,
    time::{Duration, Instant},
};

use prom_metrics_app::{config::Config, http};
use serde_json::Value;

use crate::{
    helpers::{
        Binary, TestApp, binary_command, eventually, get_text, parse_exposition, spawn_app,
        spawn_app_configured, spawn_binary, value,
    },
    otlp,
};

async fn spawn_with(flags: &[&str]) -> TestApp {
    let args = std::iter::once("prom-metrics-app").chain(flags.iter().copied());
    let config = Config::try_parse_args(args).expect("valid flags");
    spawn_app_configured(config, http::counted_routes()).await
}

async fn put_chaos(client: &reqwest::Client, base: &str, body: &str) -> reqwest::Response {
    client
        .put(format!("{base}/api/chaos"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn status(app: &TestApp, path: &str) -> u16 {
    app.get(path).await.status().as_u16()
}

/// `/readyz`, `/healthz` and `/` in that order.
async fn probes(app: &TestApp) -> (u16, u16, u16) {
    (
        status(app, "/readyz").await,
        status(app, "/healthz").await,
        status(app, "/").await,
    )
}

/// The gauges of readiness and liveness on `/metrics`.
async fn probe_gauges(app: &TestApp) -> (f64, f64) {
    let metrics = app.metrics().await;
    (
        value(&metrics, "prom_metrics_app_chaos_ready"),
        value(&metrics, "prom_metrics_app_chaos_healthy"),
    )
}

#[tokio::test]
async fn an_unready_pod_answers_503_on_readyz_and_keeps_serving_until_made_ready_again() {
    let app = spawn_with(&["--chaos-ready", "false"]).await;

    let unready = probes(&app).await;
    let unready_gauges = probe_gauges(&app).await;
    let put = put_chaos(&app.client, &app.url(""), r#"{"ready": true}"#).await;
    let put_status = put.status().as_u16();
    let ready = probes(&app).await;
    let ready_gauges = probe_gauges(&app).await;

    assert_eq!(unready, (503, 200, 200), "/readyz, /healthz, /");
    assert_eq!(unready_gauges, (0.0, 1.0));
    assert_eq!(put_status, 200);
    assert_eq!(ready, (200, 200, 200));
    assert_eq!(ready_gauges, (1.0, 1.0));
}

#[tokio::test]
async fn an_unhealthy_pod_answers_503_on_healthz_and_keeps_serving_until_made_healthy_again() {
    let app = spawn_app().await;

    let put = put_chaos(&app.client, &app.url(""), r#"{"healthy": false}"#).await;
    let put_status = put.status().as_u16();
    let unhealthy = probes(&app).await;
    let unhealthy_gauges = probe_gauges(&app).await;
    let reset = app
        .client
        .delete(app.url("/api/chaos"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let healthy = probes(&app).await;

    assert_eq!(put_status, 200);
    assert_eq!(unhealthy, (200, 503, 200), "/readyz, /healthz, /");
    assert_eq!(unhealthy_gauges, (1.0, 0.0));
    assert_eq!(reset, 200);
    assert_eq!(healthy, (200, 200, 200));
    assert_eq!(probe_gauges(&app).await, (1.0, 1.0));
}

#[tokio::test]
async fn the_chaos_form_makes_the_pod_unready_and_unhealthy_and_resets_it() {
    let app = spawn_app().await;
    let form = |body: &'static str| {
        app.client
            .post(app.url("/chaos"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    let page = app.get("/chaos").await.text().await.unwrap();
    let applied =
        form("ready=false&healthy=false&cpu_stress_cores=&memory_stress_bytes=&action=apply")
            .await
            .unwrap()
            .status()
            .as_u16();
    let faulty = probes(&app).await;
    let faulty_gauges = probe_gauges(&app).await;
    let bad = form("ready=perhaps").await.unwrap();
    let bad_status = bad.status().as_u16();
    let bad_reason = bad.text().await.unwrap();
    form("action=reset").await.unwrap();

    for field in [
        r#"name="ready""#,
        r#"name="healthy""#,
        r#"name="cpu_stress_cores""#,
        r#"name="memory_stress_bytes""#,
    ] {
        assert!(page.contains(field), "the form has no {field}: {page}");
    }
    assert_eq!(applied, 200);
    assert_eq!(faulty, (503, 503, 200), "/readyz, /healthz, /");
    assert_eq!(faulty_gauges, (0.0, 0.0));
    assert_eq!(bad_status, 400);
    assert!(bad_reason.contains("ready"), "{bad_reason}");
    assert_eq!(probes(&app).await, (200, 200, 200));
}

#[tokio::test]
async fn the_faults_are_in_the_chaos_json_and_bad_ones_get_400_and_change_nothing() {
    let app = spawn_with(&["--chaos-cpu-stress", "0", "--chaos-memory-stress", "0"]).await;
    let base = app.url("");
    let start: Value = json_of(app.get("/api/chaos").await).await;

    let mut refused = Vec::new();
    for (body, reason) in [
        (r#"{"ready": "no"}"#, "ready"),
        (r#"{"healthy": 0}"#, "healthy"),
        (r#"{"cpu_stress_cores": 65}"#, "cpu_stress_cores"),
        (r#"{"cpu_stress_cores": -1}"#, "cpu_stress_cores"),
        (r#"{"memory_stress_bytes": "2Ti"}"#, "memory_stress_bytes"),
        (r#"{"memory_stress_bytes": -5}"#, "memory_stress_bytes"),
        (r#"{"panic_allowed": true}"#, "CHAOS_ALLOW_PANIC"),
    ] {
        let response = put_chaos(&app.client, &base, body).await;
        refused.push((
            body,
            reason,
            response.status().as_u16(),
            response.text().await.unwrap(),
        ));
    }
    let sent_back = put_chaos(
        &app.client,
        &base,
        r#"{"ready": false, "memory_stress_bytes": "1Ki", "panic_allowed": false}"#,
    )
    .await;
    let sent_back_status = sent_back.status().as_u16();
    let changed: Value = json_of(sent_back).await;

    assert_eq!(start["ready"], true);
    assert_eq!(start["healthy"], true);
    assert_eq!(start["cpu_stress_cores"], 0.0);
    assert_eq!(start["memory_stress_bytes"], 0);
    assert_eq!(start["panic_allowed"], false);
    for (body, reason, status, text) in refused {
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    assert_eq!(sent_back_status, 200);
    assert_eq!(changed["ready"], false);
    assert_eq!(changed["memory_stress_bytes"], 1024);
    assert_eq!(changed["panic_allowed"], false);
}

#[tokio::test]
async fn every_fault_has_its_gauge_on_metrics_and_its_row_on_view_metrics() {
    let app = spawn_app().await;

    let before = app.metrics().await;
    put_chaos(
        &app.client,
        &app.url(""),
        r#"{"ready": false, "healthy": false, "cpu_stress_cores": 0.01, "memory_stress_bytes": "1Mi"}"#,
    )
    .await;
    let after = app.metrics().await;
    let json: Value = json_of(app.get("/view_metrics?format=json").await).await;
    let page = app.get("/view_metrics").await.text().await.unwrap();
    app.client
        .delete(app.url("/api/chaos"))
        .send()
        .await
        .unwrap();

    let gauges = [
        ("prom_metrics_app_chaos_ready", 1.0, 0.0),
        ("prom_metrics_app_chaos_healthy", 1.0, 0.0),
        ("prom_metrics_app_chaos_cpu_stress_cores", 0.0, 0.01),
        (
            "prom_metrics_app_chaos_memory_stress_bytes",
            0.0,
            1_048_576.0,
        ),
        ("prom_metrics_app_chaos_panic_allowed", 0.0, 0.0),
    ];
    for (name, was, is) in gauges {
        assert_eq!(
            (value(&before, name), value(&after, name)),
            (was, is),
            "{name}"
        );
    }
    let chaos = &json["chaos"];
    assert_eq!(chaos["ready"], false, "{json}");
    assert_eq!(chaos["healthy"], false);
    assert_eq!(chaos["cpu_stress_cores"], 0.01);
    assert_eq!(chaos["memory_stress_bytes"], 1_048_576);
    assert_eq!(chaos["panic_allowed"], false);
    for row in [
        r#"<td id="fault-ready" class="bad">not ready (503)</td>"#,
        r#"<td id="fault-healthy" class="bad">unhealthy (503)</td>"#,
        r#"<td id="fault-cpu" class="bad">0.01</td>"#,
        r#"<td id="fault-memory" class="bad">1048576</td>"#,
        r#"<td id="fault-panic">refused (403)</td>"#,
    ] {
        assert!(page.contains(row), "no {row} on /view_metrics");
    }
}

/// The last value of the OTel gauge `name`, as a receiver got it.
fn otlp_gauge(received: &otlp::Received, name: &str) -> Option<f64> {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    match received.last(name)?.data? {
        Data::Gauge(gauge) => match gauge.data_points.last()?.value? {
            Value::AsDouble(v) => Some(v),
            Value::AsInt(i) => Some(i as f64),
        },
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_otel_backend_the_faults_are_exported_as_gauges() {
    let (address, received) = otlp::start_http().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ("CHAOS_READY", "false"),
        ("CHAOS_ALLOW_PANIC", "true"),
        ("CHAOS_MEMORY_STRESS", "2Mi"),
    ]);
    let client = reqwest::Client::new();

    let put = put_chaos(
        &client,
        &binary.url(""),
        r#"{"ready": false, "healthy": false, "cpu_stress_cores": 0.01, "memory_stress_bytes": "2Mi"}"#,
    )
    .await;
    assert_eq!(put.status(), 200);
    crate::otel::terminate(binary).await;

    let gauges = [
        ("prom_metrics_app.chaos.ready", 0.0, ""),
        ("prom_metrics_app.chaos.healthy", 0.0, ""),
        ("prom_metrics_app.chaos.cpu_stress_cores", 0.01, "{cpu}"),
        ("prom_metrics_app.chaos.memory_stress", 2_097_152.0, "By"),
        ("prom_metrics_app.chaos.panic_allowed", 1.0, ""),
    ];
    for (name, expected, unit) in gauges {
        assert_eq!(otlp_gauge(&received, name), Some(expected), "{name}");
        assert_eq!(received.last(name).unwrap().unit, unit, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_is_refused_with_403_unless_allowed_and_the_process_lives_on() {
    let binary = spawn_binary(&[]);
    let client = reqwest::Client::new();

    let panic = client.post(binary.url("/panic")).send().await.unwrap();
    let status = panic.status().as_u16();
    let reason = panic.text().await.unwrap();
    let get = client.get(binary.url("/panic")).send().await.unwrap();
    let healthz = client.get(binary.url("/healthz")).send().await.unwrap();

    assert_eq!(status, 403);
    assert!(reason.contains("CHAOS_ALLOW_PANIC"), "{reason}");
    assert_eq!(get.status().as_u16(), 405, "only POST ends the process");
    assert_eq!(healthz.status().as_u16(), 200, "still alive");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_panic_ends_the_process_with_101_after_saying_why() {
    let binary = spawn_binary(&[("CHAOS_ALLOW_PANIC", "true")]);
    let client = reqwest::Client::new();
    let metrics = get_text(&client, &binary.url("/metrics")).await.unwrap();

    // The process ends before it answers: the request fails rather than getting a status.
    let answer = client.post(binary.url("/panic")).send().await;
    let (code, stdout, stderr) = wait_exit(binary).await;

    assert_eq!(
        value(
            &parse_exposition(&metrics),
            "prom_metrics_app_chaos_panic_allowed"
        ),
        1.0
    );
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(code, Some(101), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("POST /panic: ending the process with exit code 101"),
        "{stderr}"
    );
    assert!(stdout.contains("POST /panic"), "the log says why: {stdout}");
}

/// Waits at most 10 s for the binary to end: its exit code, stdout and stderr.
async fn wait_exit(mut binary: Binary) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(10));
        (code, binary.stdout(), binary.stderr())
    })
    .await
    .unwrap()
}

/// A figure of the binary's own `process_*` series on `/metrics`.
async fn process_figure(client: &reqwest::Client, binary: &Binary, name: &str) -> f64 {
    let text = get_text(client, &binary.url("/metrics")).await.unwrap();
    value(&parse_exposition(&text), name)
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_stress_shows_in_the_process_cpu_time_and_stops_when_lowered() {
    let binary = spawn_binary(&[("CHAOS_CPU_STRESS", "1")]);
    let client = reqwest::Client::new();
    let cpu = "process_cpu_seconds_total";
    let start = process_figure(&client, &binary, cpu).await;

    // One core kept busy: a second of CPU within a few seconds, even on a shared machine; an idle
    // process takes milliseconds.
    let busy = eventually(Duration::from_secs(20), || async {
        let now = process_figure(&client, &binary, cpu).await;
        (now - start >= 1.0).then_some(now)
    })
    .await;
    put_chaos(&client, &binary.url(""), r#"{"cpu_stress_cores": 0}"#).await;
    // Stopped: two reads half a second apart differ by little.
    let calm = eventually(Duration::from_secs(10), || async {
        let before = process_figure(&client, &binary, cpu).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = process_figure(&client, &binary, cpu).await;
        (after - before < 0.1).then_some(after - before)
    })
    .await;

    assert!(busy.is_some(), "the CPU time did not grow by a second");
    assert!(
        calm.is_some(),
        "the CPU time kept growing after the stress was lowered to 0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_stress_shows_in_the_resident_memory_and_is_given_back() {
    const STRESS: f64 = 256.0 * 1024.0 * 1024.0;
    let binary = spawn_binary(&[]);
    let client = reqwest::Client::new();
    let rss = "process_resident_memory_bytes";
    let start = process_figure(&client, &binary, rss).await;

    put_chaos(
        &client,
        &binary.url(""),
        r#"{"memory_stress_bytes": "256Mi"}"#,
    )
    .await;
    let held = eventually(Duration::from_secs(20), || async {
        let now = process_figure(&client, &binary, rss).await;
        (now - start >= 0.95 * STRESS).then_some(now)
    })
    .await;
    let gauge = process_figure(
        &client,
        &binary,
        "prom_metrics_app_chaos_memory_stress_bytes",
    )
    .await;
    put_chaos(&client, &binary.url(""), r#"{"memory_stress_bytes": 0}"#).await;
    let freed = eventually(Duration::from_secs(20), || async {
        let now = process_figure(&client, &binary, rss).await;
        (now - start < 0.25 * STRESS).then_some(now)
    })
    .await;

    assert!(
        held.is_some(),
        "the resident memory did not grow by 256 MiB from {start}"
    );
    assert_eq!(gauge, STRESS);
    assert!(freed.is_some(), "the resident memory was not given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_variables_start_the_pod_unready_unhealthy_and_stressed() {
    let binary = spawn_binary(&[
        ("CHAOS_READY", "false"),
        ("CHAOS_HEALTHY", "no"),
        ("CHAOS_CPU_STRESS", "0.01"),
        ("CHAOS_MEMORY_STRESS", "1Mi"),
    ]);
    let client = reqwest::Client::new();
    let code = |path: &'static str| {
        let client = client.clone();
        let url = binary.url(path);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };

    let statuses = (
        code("/readyz").await,
        code("/healthz").await,
        code("/").await,
    );
    let text = get_text(&client, &binary.url("/metrics")).await.unwrap();
    let metrics = parse_exposition(&text);

    assert_eq!(statuses, (503, 503, 200), "/readyz, /healthz, /");
    assert_eq!(value(&metrics, "prom_metrics_app_chaos_ready"), 0.0);
    assert_eq!(value(&metrics, "prom_metrics_app_chaos_healthy"), 0.0);
    assert_eq!(
        value(&metrics, "prom_metrics_app_chaos_cpu_stress_cores"),
        0.01
    );
    assert_eq!(
        value(&metrics, "prom_metrics_app_chaos_memory_stress_bytes"),
        1_048_576.0
    );
}

#[test]
fn bad_fault_variables_stop_the_app_with_exit_code_2_naming_the_variable_and_value() {
    for (variable, bad) in [
        ("CHAOS_READY", "perhaps"),
        ("CHAOS_HEALTHY", "2"),
        ("CHAOS_ALLOW_PANIC", "sure"),
        ("CHAOS_CPU_STRESS", "65"),
        ("CHAOS_CPU_STRESS", "-1"),
        ("CHAOS_MEMORY_STRESS", "2Ti"),
        ("CHAOS_MEMORY_STRESS", "lots"),
    ] {
        let mut command = binary_command();
        command
            .env(variable, bad)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut binary = command.spawn().unwrap();
        // An app that took the value would serve until stopped: stop it after 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = binary.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = binary.kill();
                let _ = binary.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        binary
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let code = status.and_then(|status| status.code());
        assert_eq!(code, Some(2), "{variable}={bad}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={bad}: {stderr}");
        assert!(stderr.contains(bad), "{variable}={bad}: {stderr}");
    }
}
