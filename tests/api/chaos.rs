//! Fault injection: `/status/{code}`, chaos settings at start and at runtime, and what they leave
//! untouched.

use std::time::{Duration, Instant};

use prom_metrics_app::{config::Config, http};
use serde_json::{Value, json};

use crate::helpers::{TestApp, binary_command, spawn_app, spawn_app_configured, value};

async fn spawn_with(flags: &[&str]) -> TestApp {
    let args = std::iter::once("prom-metrics-app").chain(flags.iter().copied());
    let config = Config::try_parse_args(args).expect("valid flags");
    spawn_app_configured(config, http::counted_routes()).await
}

async fn put_chaos(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .put(app.url("/api/chaos"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn get_chaos(app: &TestApp) -> Value {
    json_of(app.get("/api/chaos").await).await
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// Posts the `/chaos` form, `body` already form-encoded.
async fn post_form(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/chaos"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn status_route_answers_the_code_asked_for_and_counts_it_by_class() {
    let app = spawn_app().await;

    let mut seen = Vec::new();
    for code in [200, 204, 302, 418, 429, 500, 503, 599] {
        let response = app
            .client
            .get(app.url(&format!("/status/{code}")))
            .send()
            .await
            .unwrap();
        seen.push(response.status().as_u16());
    }
    let metrics = app.metrics().await;

    assert_eq!(seen, [200, 204, 302, 418, 429, 500, 503, 599]);
    assert_eq!(value(&metrics, "http_requests_total"), 8.0);
    assert_eq!(value(&metrics, "http_successful_request_total"), 3.0);
    assert_eq!(value(&metrics, "http_error_4xx_total"), 2.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 3.0);
    assert_eq!(
        value(
            &metrics,
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/status/{code}",http_response_status_code="503",url_scheme="http",error_type="503"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn status_route_refuses_codes_outside_200_to_599_with_a_reason() {
    let app = spawn_app().await;

    for bad in ["99", "100", "199", "600", "abc", "-1", "5000"] {
        let response = app.get(&format!("/status/{bad}")).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 400, "/status/{bad}");
        assert!(body.contains("200 to 599"), "{body}");
    }
    assert_eq!(value(&app.metrics().await, "http_error_4xx_total"), 7.0);
}

#[tokio::test]
async fn status_route_takes_any_method() {
    let app = spawn_app().await;

    let response = app
        .client
        .delete(app.url("/status/202"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 202);
}

#[tokio::test]
async fn chaos_settings_start_from_the_flags_and_are_served_as_json() {
    let app = spawn_with(&[
        "--chaos-error-rate",
        "0.25",
        "--chaos-error-status",
        "503",
        "--chaos-latency",
        "10ms",
        "--chaos-jitter",
        "5ms",
        "--chaos-latency-rate",
        "0.5",
    ])
    .await;

    let settings = get_chaos(&app).await;

    assert_eq!(
        settings,
        json!({
            "error_rate": 0.25,
            "error_status": 503,
            "latency_seconds": 0.01,
            "jitter_seconds": 0.005,
            "latency_rate": 0.5,
            "ready": true,
            "healthy": true,
            "cpu_stress_cores": 0.0,
            "memory_stress_bytes": 0,
            "panic_allowed": false
        })
    );
}

#[tokio::test]
async fn an_error_rate_of_one_fails_every_application_request_and_nothing_else() {
    let app = spawn_app().await;

    let put = put_chaos(&app, r#"{"error_rate": 1.0}"#).await;
    assert_eq!(put.status().as_u16(), 200);
    let home = app.get("/").await;
    let missing = app.get("/no-such-page").await;
    let task = app.get("/do_task?seconds=0").await;
    let untouched = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/view_metrics",
        "/static/style.css",
        "/favicon.ico",
        "/chaos",
        "/api/chaos",
    ];
    let mut statuses = Vec::new();
    for path in untouched {
        statuses.push((path, app.get(path).await.status().as_u16()));
    }

    assert_eq!(home.status().as_u16(), 500);
    assert_eq!(home.headers()["x-chaos-injected"], "error");
    assert_eq!(missing.status().as_u16(), 500);
    assert_eq!(task.status().as_u16(), 500);
    for (path, status) in statuses {
        assert_eq!(status, 200, "{path} must not be affected by chaos");
    }
    let metrics = app.metrics().await;
    assert_eq!(value(&metrics, "http_requests_total"), 3.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 3.0);
    assert_eq!(value(&metrics, "prom_metrics_app_chaos_error_ratio"), 1.0);
}

#[tokio::test]
async fn runtime_changes_take_effect_at_once_and_delete_restores_the_start_settings() {
    let app = spawn_with(&["--chaos-error-status", "503"]).await;
    let start = get_chaos(&app).await;

    let before = app.get("/").await.status().as_u16();
    put_chaos(&app, r#"{"error_rate": 1, "error_status": 429}"#).await;
    let during = app.get("/").await.status().as_u16();
    let gauge = value(
        &app.metrics().await,
        "prom_metrics_app_chaos_error_status_code",
    );
    let deleted = json_of(
        app.client
            .delete(app.url("/api/chaos"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let after = app.get("/").await.status().as_u16();

    assert_eq!((before, during, after), (200, 429, 200));
    assert_eq!(gauge, 429.0);
    assert_eq!(deleted, start);
    assert_eq!(get_chaos(&app).await, start);
}

#[tokio::test]
async fn injected_failures_follow_the_configured_rate_and_are_counted_exactly() {
    let app = spawn_with(&["--chaos-error-rate", "0.3", "--chaos-seed", "42"]).await;

    let n = 1000;
    let mut failed = 0;
    for _ in 0..n {
        let response = app.get("/").await;
        if response.status().as_u16() == 500 {
            assert_eq!(response.headers()["x-chaos-injected"], "error");
            failed += 1;
        }
    }
    let metrics = app.metrics().await;

    // Binomial(1000, 0.3): mean 300, standard deviation 14.5; four of them either side.
    assert!((242..=358).contains(&failed), "{failed} of {n} failed");
    assert_eq!(value(&metrics, "http_error_5xx_total"), f64::from(failed));
    assert_eq!(
        value(&metrics, "http_successful_request_total"),
        f64::from(n - failed)
    );
}

#[tokio::test]
async fn added_latency_delays_application_routes_only() {
    let app = spawn_app().await;

    put_chaos(&app, r#"{"latency_seconds": 0.3}"#).await;
    let started = Instant::now();
    let home = app.get("/").await.status().as_u16();
    let slow = started.elapsed();
    let started = Instant::now();
    app.get("/healthz").await;
    app.get("/metrics").await;
    let fast = started.elapsed();
    let metrics = app.metrics().await;

    assert_eq!(home, 200);
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    assert!(fast < Duration::from_millis(300), "{fast:?}");
    assert_eq!(
        value(&metrics, r#"request_processing_seconds_bucket{le="0.25"}"#),
        0.0,
        "the delay is inside the measured time"
    );
    assert_eq!(
        value(&metrics, "prom_metrics_app_chaos_latency_seconds"),
        0.3
    );
}

#[tokio::test]
async fn bad_chaos_settings_get_400_with_a_reason_and_change_nothing() {
    let app = spawn_with(&["--chaos-error-rate", "0.1"]).await;
    let start = get_chaos(&app).await;

    for (body, reason) in [
        (r#"{"error_rate": 2}"#, "error_rate"),
        (r#"{"error_status": 200}"#, "error_status"),
        (r#"{"latency_seconds": -1}"#, "latency_seconds"),
        (r#"{"latency_seconds": 50, "jitter_seconds": 20}"#, "60"),
        (r#"{"error_rat": 0.5}"#, "unknown field"),
        (r#"{"error_rate": "half"}"#, "error_rate"),
        ("not json", "invalid chaos settings"),
    ] {
        let response = put_chaos(&app, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    let form = post_form(&app, "error_rate=7").await;

    assert_eq!(form.status().as_u16(), 400);
    assert!(form.text().await.unwrap().contains("error_rate"));
    assert_eq!(get_chaos(&app).await, start);
}

#[tokio::test]
async fn the_chaos_page_applies_and_resets_the_settings() {
    let app = spawn_app().await;

    let page = app.get("/chaos").await.text().await.unwrap();
    let applied = post_form(
        &app,
        "error_rate=0.5&error_status=502&latency_seconds=0&jitter_seconds=&latency_rate=1&action=apply",
    )
    .await;
    let applied_status = applied.status().as_u16();
    let after_apply = get_chaos(&app).await;
    post_form(&app, "action=reset").await;

    assert!(
        page.contains(r#"<form method="post" action="/chaos""#),
        "{page}"
    );
    assert!(
        page.contains(r#"href="/chaos""#),
        "the navigation links the page"
    );
    assert_eq!(applied_status, 200);
    assert_eq!(after_apply["error_rate"], 0.5);
    assert_eq!(after_apply["error_status"], 502);
    assert_eq!(get_chaos(&app).await["error_rate"], 0.0);
}

#[test]
fn invalid_chaos_variables_stop_the_app_with_exit_code_2() {
    for (envs, named) in [
        (vec![("CHAOS_ERROR_RATE", "1.5")], "CHAOS_ERROR_RATE"),
        (vec![("CHAOS_ERROR_STATUS", "200")], "CHAOS_ERROR_STATUS"),
        (vec![("CHAOS_LATENCY", "2m")], "CHAOS_LATENCY"),
        (
            vec![("CHAOS_LATENCY", "40s"), ("CHAOS_JITTER", "30s")],
            "CHAOS_JITTER",
        ),
    ] {
        let output = binary_command()
            .envs(envs.iter().copied())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{envs:?}: {stderr}");
        assert!(stderr.contains(named), "{envs:?}: {stderr}");
    }
}
