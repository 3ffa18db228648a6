//! Hostile input: oversized headers (431 from hyper, counted nowhere) and bodies (413, counted
//! once), slow headers, too many connections (probes and scrapes still answered from the
//! reserve, other requests refused with 503 and counted apart), and malformed propagation
//! headers, query strings and methods, which get a 4xx or are ignored, never a 5xx or a panic.

use std::time::{Duration, Instant};

use prom_metrics_app::{config::Config, http};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_configured, value};

fn config(args: &[&str]) -> Config {
    Config::try_parse_args(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
        .expect("valid test arguments")
}

async fn app_with(args: &[&str]) -> TestApp {
    spawn_app_configured(config(args), http::counted_routes()).await
}

async fn totals(app: &TestApp) -> (f64, f64) {
    let metrics = app.metrics().await;
    (
        value(&metrics, "http_requests_total"),
        value(&metrics, "http_error_4xx_total"),
    )
}

#[tokio::test]
async fn headers_over_the_limit_get_431_from_hyper_and_are_counted_nowhere() {
    let app = spawn_app().await;
    let big = "x".repeat(20 * 1024);

    let refused = app
        .client
        .get(app.url("/"))
        .header("x-big", &big)
        .send()
        .await
        .unwrap();
    let fine = app
        .client
        .get(app.url("/"))
        .header("x-big", "x".repeat(4 * 1024))
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), 431);
    assert_eq!(fine.status(), 200);
    assert_eq!(
        totals(&app).await,
        (1.0, 0.0),
        "only the small request counts"
    );
}

#[tokio::test]
async fn max_header_bytes_raises_the_header_limit() {
    let app = app_with(&["--max-header-bytes", "65536"]).await;

    let response = app
        .client
        .get(app.url("/"))
        .header("x-big", "x".repeat(40 * 1024))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_is_counted_once_as_4xx() {
    let app = app_with(&["--max-body-bytes", "1024"]).await;

    let refused = app
        .client
        .post(app.url("/"))
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    let accepted = app
        .client
        .post(app.url("/"))
        .body(vec![b'a'; 512])
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), 413);
    assert_eq!(refused.text().await.unwrap(), "length limit exceeded");
    assert_eq!(accepted.status(), 200);
    assert_eq!(totals(&app).await, (2.0, 1.0));
}

#[tokio::test]
async fn a_chaos_body_over_the_limit_gets_413_and_changes_nothing() {
    let app = app_with(&["--max-body-bytes", "1024"]).await;
    let padded = format!(r#"{{"error_rate": 1{}}}"#, " ".repeat(2048));

    let response = app
        .client
        .put(app.url("/api/chaos"))
        .body(padded)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
    assert_eq!(app.state.chaos.settings().error_rate, 0.0);
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected() {
    let app = app_with(&["--header-read-timeout", "500ms"]).await;
    let mut slow = TcpStream::connect(app.address).await.unwrap();

    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;

    assert!(read.is_ok(), "the connection is still open after 5 s");
    let answer = String::from_utf8_lossy(&buffer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(totals(&app).await, (0.0, 0.0));
}

/// A client that opens a new connection for each request, as probes and scrapers do, and gives
/// up after 5 s rather than waiting for the slow requests to end.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// An app with `MAX_CONNECTIONS=4`, and four connections each waiting for a 10-second task, which
/// hold every regular place until they are dropped.
async fn app_at_its_limit(extra: &[&str]) -> (TestApp, Vec<TcpStream>) {
    let mut args = vec!["--max-connections", "4"];
    args.extend_from_slice(extra);
    let app = app_with(&args).await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        stream
            .write_all(b"GET /do_task?seconds=10 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    (app, slow)
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_limit_probes_and_scrapes_answer_within_100ms() {
    let (app, _slow) = app_at_its_limit(&[]).await;
    let client = fresh_connections();

    let mut answers = Vec::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let start = Instant::now();
        let response = client.get(app.url(path)).send().await.unwrap();
        let status = response.status();
        let connection = response.headers().get("connection").cloned();
        response.bytes().await.unwrap();
        answers.push((path, status, connection, start.elapsed()));
    }

    for (path, status, connection, took) in answers {
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_millis(100), "{path} took {took:?}");
        assert_eq!(
            connection.as_ref().and_then(|v| v.to_str().ok()),
            Some("close"),
            "{path}: a reserve connection serves one request"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_limit_other_requests_get_503_counted_apart() {
    let (app, _slow) = app_at_its_limit(&[]).await;
    let client = fresh_connections();

    let refused = client.get(app.url("/")).send().await.unwrap();
    let status = refused.status();
    let headers = refused.headers().clone();
    let body = refused.text().await.unwrap();
    let metrics = app.metrics().await;

    assert_eq!(status, 503);
    assert_eq!(headers["connection"], "close");
    assert_eq!(headers["retry-after"], "1");
    assert!(body.contains("MAX_CONNECTIONS"), "{body}");
    assert_eq!(
        value(&metrics, "prom_metrics_app_http_requests_refused_total"),
        1.0
    );
    assert_eq!(value(&metrics, "http_requests_total"), 0.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_served_again_once_the_connections_at_the_limit_close() {
    let (app, slow) = app_at_its_limit(&[]).await;
    let client = fresh_connections();

    let refused = client.get(app.url("/")).send().await.unwrap().status();
    drop(slow);
    let served = eventually(Duration::from_secs(5), || async {
        let status = client.get(app.url("/")).send().await.ok()?.status();
        (status == 200).then_some(status)
    })
    .await;
    // The four dropped tasks (each a 499) and the home page; the refusals stay apart.
    let counted = eventually(Duration::from_secs(5), || async {
        let total = value(&app.metrics().await, "http_requests_total");
        (total == 5.0).then_some(total)
    })
    .await;

    assert_eq!(refused, 503);
    assert!(served.is_some(), "/ was not served again");
    assert!(counted.is_some(), "{:?}", app.metrics().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_limit_metrics_still_requires_its_credentials() {
    let (app, _slow) = app_at_its_limit(&["--metrics-auth-token", "t0ken-at-the-limit"]).await;
    let client = fresh_connections();

    let anonymous = client.get(app.url("/metrics")).send().await.unwrap();
    let authorised = client
        .get(app.url("/metrics"))
        .bearer_auth("t0ken-at-the-limit")
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status(), 401);
    assert_eq!(authorised.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_limit_and_the_reserve_connections_wait_until_an_idle_one_times_out() {
    let app = app_with(&["--max-connections", "2", "--reserved-connections", "3"]).await;
    let mut idle = Vec::new();
    for _ in 0..2 + 3 {
        idle.push(TcpStream::connect(app.address).await.unwrap());
    }
    let start = Instant::now();

    let answer = fresh_connections().get(app.url("/healthz")).send().await;
    let waited = start.elapsed();

    assert_eq!(answer.unwrap().status(), 200);
    // A reserve connection that sends nothing is closed after a second, which frees its place;
    // the regular ones keep theirs for the whole HEADER_READ_TIMEOUT (10 s).
    assert!(
        waited > Duration::from_millis(500),
        "answered after {waited:?}, before the reserve had a free place"
    );
}

/// Sends a raw request and returns the status code of the answer.
async fn raw_status(app: &TestApp, head: &str) -> u16 {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buffer = Vec::new();
    stream.read_to_end(&mut buffer).await.unwrap();
    let text = String::from_utf8_lossy(&buffer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn malformed_methods_and_query_strings_get_4xx_and_the_server_carries_on() {
    let app = spawn_app().await;

    let cases = [
        ("FROB / HTTP/1.1", 405),
        ("GET\u{1} / HTTP/1.1", 400),
        ("FROB /nowhere HTTP/1.1", 404),
        ("GET /do_task?seconds=%FF%FE HTTP/1.1", 400),
        ("GET /do_task?seconds=1e309 HTTP/1.1", 400),
        ("GET /do_task?seconds=NaN HTTP/1.1", 400),
        ("GET /do_task?seconds=-0.0000001 HTTP/1.1", 400),
        ("GET /do_task?%%%&&&=== HTTP/1.1", 200),
        ("GET /status/99999999999999999999 HTTP/1.1", 400),
        ("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1", 404),
    ];
    for (head, expected) in cases {
        let head = head.replace("%%%&&&===", "seconds=0&%%%&&&===");
        assert_eq!(raw_status(&app, &head).await, expected, "{head}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn malformed_traceparent_and_b3_headers_are_ignored() {
    let app = app_with(&["--otel-propagators", "tracecontext,baggage,b3"]).await;
    let values = [
        "",
        "00",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra-extra",
        "-----",
        "\u{e9}\u{e9}\u{e9}",
    ];

    for value in values {
        for header in ["traceparent", "b3", "x-b3-traceid", "baggage", "tracestate"] {
            let response = app
                .client
                .get(app.url("/"))
                .header(header, value.as_bytes())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{header}: {value:?}");
        }
    }
    assert_eq!(totals(&app).await.0, (values.len() * 5) as f64);
}
