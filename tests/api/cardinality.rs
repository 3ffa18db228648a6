//! Cardinality: many requests to distinct random paths, with unusual methods and query strings,
//! add no series to `/metrics` and no metric stream to the OTLP export. The test sends 20,000
//! to each backend to stay quick; `scripts/soak.sh` sends far more (see docs/reliability.md).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rand::Rng as _;
use reqwest::Method;

use crate::{
    helpers::{eventually, spawn_app, spawn_binary},
    otel::terminate,
    otlp::{self, Received},
};

const REQUESTS: usize = 20_000;

/// The methods used: standard ones, and two that are not (both exported as `_OTHER`).
fn methods() -> Vec<Method> {
    [
        "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "XYZZY",
    ]
    .iter()
    .map(|m| Method::from_bytes(m.as_bytes()).unwrap())
    .collect()
}

/// Request `i`: a random method, and a random unknown path, a random bad `/do_task` query or a
/// random `/status/{code}`, each with a random query string.
fn request(i: usize) -> (Method, String) {
    let mut rng = rand::rng();
    let methods = methods();
    let method = methods[rng.random_range(0..methods.len())].clone();
    let (a, b): (u64, u64) = (rng.random(), rng.random());
    let path = match i % 3 {
        0 => format!("/r/{a:x}/{b:x}?q={i}&{a}={b}"),
        1 => format!("/do_task?seconds=x{a:x}&z={b}"),
        _ => format!("/status/{}?n={a}", 400 + (a % 100)),
    };
    (method, path)
}

async fn send(base: &str, requests: Vec<(Method, String)>) {
    let client = reqwest::Client::new();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, requests, next, base) = (
            client.clone(),
            requests.clone(),
            next.clone(),
            base.to_string(),
        );
        workers.spawn(async move {
            while let Some((method, path)) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
                let status = client
                    .request(method.clone(), format!("{base}{path}"))
                    .send()
                    .await
                    .expect("answered")
                    .status();
                assert!(
                    status.as_u16() < 500 || path.starts_with("/status/5"),
                    "{path}: {status}"
                );
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
}

/// The warm-up: every method on every kind of path once, so every series that can exist does.
fn every_kind() -> Vec<(Method, String)> {
    let mut all = Vec::new();
    for method in methods() {
        for path in ["/r/warm", "/do_task?seconds=x"] {
            all.push((method.clone(), path.to_string()));
        }
        for code in 400..500 {
            all.push((method.clone(), format!("/status/{code}")));
        }
    }
    all
}

/// The series of an exposition: each sample's name and labels.
fn series(text: &str) -> HashSet<String> {
    crate::helpers::parse_exposition(text).into_keys().collect()
}

/// Each metric stream of the last export: metric name and data point attributes.
fn streams(received: &Received) -> HashSet<String> {
    let names: HashSet<String> = received
        .metrics()
        .into_iter()
        .map(|(m, _)| m.name)
        .collect();
    names
        .into_iter()
        .flat_map(|name| {
            received
                .point_attributes(&name)
                .into_iter()
                .map(move |attributes| {
                    let mut pairs: Vec<_> = attributes.into_iter().collect();
                    pairs.sort();
                    format!("{name}{pairs:?}")
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn random_paths_methods_and_queries_add_no_series_or_streams() {
    let app = spawn_app().await;
    let (receiver, received) = otlp::start_grpc(None).await;
    let otel = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{receiver}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("TRACES_EXCLUDED_PATHS", "/*"),
    ]);
    let (app_base, otel_base) = (app.url(""), otel.url(""));
    tokio::join!(
        send(&app_base, every_kind()),
        send(&otel_base, every_kind())
    );
    let series_before = series(&app.get("/metrics").await.text().await.unwrap());
    let before = eventually(Duration::from_secs(10), || async {
        let streams = streams(&received);
        (received.sum("http_requests") == Some(every_kind().len() as i64)).then_some(streams)
    })
    .await
    .expect("the warm-up was exported");

    let random: Vec<_> = (0..REQUESTS).map(request).collect();
    tokio::join!(send(&app_base, random.clone()), send(&otel_base, random));
    let series_after = series(&app.get("/metrics").await.text().await.unwrap());
    let total = (every_kind().len() + REQUESTS) as i64;
    let after = eventually(Duration::from_secs(20), || async {
        let streams = streams(&received);
        (received.sum("http_requests") == Some(total)).then_some(streams)
    })
    .await
    .expect("the random requests were exported");
    terminate(otel).await;

    let new_series: Vec<_> = series_after.difference(&series_before).collect();
    assert!(new_series.is_empty(), "new series: {new_series:?}");
    assert_eq!(series_after.len(), series_before.len());
    let new_streams: Vec<_> = after.difference(&before).collect();
    assert!(new_streams.is_empty(), "new streams: {new_streams:?}");
    assert_eq!(after.len(), before.len());
}
