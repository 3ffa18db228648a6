//! Fidelity: a known mix of requests at concurrency 64 gives the same counts everywhere they are
//! reported: the client's tally, `/metrics`, a real Prometheus, the OTLP sums of the OTel backend
//! and the server spans; and a collector outage loses no cumulative count and counts nothing twice.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::{
    helpers::{Binary, eventually, spawn_app, spawn_binary, value},
    otel::terminate,
    otlp::{self, Received},
    prometheus::Prometheus,
};

/// Requests sent at once.
const CONCURRENCY: usize = 64;

/// What the client saw, by status class.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    sent: usize,
    ok: usize,
    client_errors: usize,
    server_errors: usize,
    injected: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.injected += other.injected;
    }
}

/// The path of request `i` of the mix: successes, 404s and 500s.
fn path(i: usize) -> String {
    match i % 4 {
        0 => format!("/missing/{i}"),
        1 => "/status/500".to_string(),
        _ => "/".to_string(),
    }
}

/// Sends `count` requests of the mix to `base` from 64 workers; chaos may turn any into a 500.
async fn send_mix(base: &str, count: usize) -> Tally {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next, base) = (client.clone(), next.clone(), base.to_string());
        workers.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return tally;
                }
                let response = client
                    .get(format!("{base}{}", path(i)))
                    .send()
                    .await
                    .expect("the app answers every request");
                tally.sent += 1;
                if response.headers().get("x-chaos-injected").is_some() {
                    tally.injected += 1;
                }
                match response.status().as_u16() {
                    200..=399 => tally.ok += 1,
                    400..=499 => tally.client_errors += 1,
                    _ => tally.server_errors += 1,
                }
            }
        });
    }
    let mut total = Tally::default();
    while let Some(tally) = workers.join_next().await {
        total += tally.unwrap();
    }
    total
}

async fn set_chaos(base: &str, body: &str) {
    let response = reqwest::Client::new()
        .put(format!("{base}/api/chaos"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The OTLP sums of the OTel backend, in the order of [`Tally`]'s classes.
fn otlp_sums(received: &Received) -> [Option<i64>; 4] {
    [
        "http_requests",
        "http_successful_request",
        "http_error_4xx",
        "http_error_5xx",
    ]
    .map(|name| received.sum(name))
}

fn expected_sums(tally: Tally) -> [Option<i64>; 4] {
    [
        tally.sent,
        tally.ok,
        tally.client_errors,
        tally.server_errors,
    ]
    .map(|n| Some(n as i64))
}

/// Server spans of the mix's routes (not the chaos control or the scrapes): their count and
/// whether their span ids are unique.
fn mix_spans(received: &Received) -> (usize, bool) {
    let spans: Vec<_> = received
        .spans()
        .into_iter()
        .filter(|s| s.kind == 2 && !s.name.contains("/api/chaos") && !s.name.contains("/metrics"))
        .collect();
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    (spans.len(), ids.len() == spans.len())
}

fn otel_binary(endpoint: &str, backend: &str) -> Binary {
    otel_binary_with(endpoint, backend, "parentbased_always_on")
}

/// Like [`otel_binary`], with `sampler`: `always_off` exports metrics and no span, so that the
/// receiver's spans all come from one instance.
fn otel_binary_with(endpoint: &str, backend: &str, sampler: &str) -> Binary {
    spawn_binary(&[
        ("METRICS_BACKEND", backend),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("OTEL_TRACES_SAMPLER", sampler),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_mix_gives_the_same_counts_in_every_place_they_are_reported() {
    const REQUESTS: usize = 2000;
    let app = spawn_app().await;
    let prometheus = Prometheus::start(app.address, &[]).await;
    let (receiver, received) = otlp::start_grpc(None).await;
    let otel = otel_binary(&format!("http://{receiver}"), "otel");
    let otel_base = otel.url("");
    let app_base = app.url("");
    for base in [&app_base, &otel_base] {
        set_chaos(base, r#"{"error_rate": 0.2}"#).await;
    }

    let (tally, otel_tally) = tokio::join!(
        send_mix(&app_base, REQUESTS),
        send_mix(&otel_base, REQUESTS)
    );
    let metrics = app.metrics().await;
    let scraped = prometheus
        .wait_for("http_requests_total{job=\"app\"}", REQUESTS as f64)
        .await;
    let sums = eventually(Duration::from_secs(20), || async {
        let sums = otlp_sums(&received);
        (sums == expected_sums(otel_tally)).then_some(sums)
    })
    .await;
    terminate(otel).await;

    assert_eq!(tally.sent, REQUESTS);
    assert!(tally.injected > REQUESTS / 10, "{tally:?}");
    assert!(tally.server_errors >= REQUESTS / 4, "{tally:?}");
    let local = [
        ("http_requests_total", tally.sent),
        ("http_successful_request_total", tally.ok),
        ("http_error_4xx_total", tally.client_errors),
        ("http_error_5xx_total", tally.server_errors),
    ];
    for (name, count) in local {
        assert_eq!(value(&metrics, name), count as f64, "{name} on /metrics");
        assert_eq!(
            prometheus.query(name).await,
            Some(count as f64),
            "{name} in Prometheus"
        );
    }
    assert_eq!(scraped, Some(REQUESTS as f64));
    assert_eq!(sums, Some(expected_sums(otel_tally)), "{otel_tally:?}");
    assert_eq!(mix_spans(&received), (REQUESTS, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_outage_loses_no_cumulative_count_and_counts_nothing_twice() {
    const REQUESTS: usize = 1200;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let mut stop = Some(otlp::serve_grpc_until_stopped(listener, &received));
    let endpoint = format!("http://{address}");
    // One instance for the metrics, one for the spans: each count is checked against its own.
    let metrics_binary = otel_binary_with(&endpoint, "otel", "always_off");
    let spans_binary = otel_binary(&endpoint, "prometheus");
    let (metrics_base, spans_base) = (metrics_binary.url(""), spans_binary.url(""));
    let mut tally = Tally::default();
    let mut spans_sent = 0;

    for phase in 0..3 {
        if let Some(stop) = stop.take_if(|_| phase == 1) {
            let _ = stop.send(());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (metrics_part, spans_part) = tokio::join!(
            send_mix(&metrics_base, REQUESTS / 3),
            send_mix(&spans_base, REQUESTS / 3)
        );
        tally += metrics_part;
        spans_sent += spans_part.sent;
        if phase == 1 {
            // Past several export intervals with nobody listening.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let _restarted = otlp::serve_grpc_until_stopped(listener, &received);
    let sums = eventually(Duration::from_secs(30), || async {
        let sums = otlp_sums(&received);
        (sums == expected_sums(tally)).then_some(sums)
    })
    .await;
    let losses = crate::helpers::parse_exposition(
        &reqwest::get(spans_binary.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    terminate(metrics_binary).await;
    terminate(spans_binary).await;

    assert_eq!(sums, Some(expected_sums(tally)), "{tally:?}");
    let (received_spans, unique) = mix_spans(&received);
    assert!(unique, "a span was received twice");
    assert!(
        received_spans <= spans_sent,
        "{received_spans} > {spans_sent}"
    );
    let lost = value(&losses, "prom_metrics_app_telemetry_dropped_spans_total")
        + value(&losses, "prom_metrics_app_telemetry_failed_spans_total");
    assert!(
        (spans_sent - received_spans) as f64 <= lost,
        "{} spans missing, {lost} counted as lost",
        spans_sent - received_spans
    );
}
