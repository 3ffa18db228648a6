//! Both backends hold the same series of `http_server_request_duration_seconds`, up to the most
//! that any traffic can create (`http::max_server_series`): the OpenTelemetry SDK folds nothing
//! into its overflow series. Once in-process, over the whole bound; once over HTTP, with every
//! method on every `/status/{code}`, against the real binary and an OTLP receiver.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};
use prom_metrics_app::{
    config::{Backend, Config, Exporter},
    conventions::{ErrorType, METHODS as METHOD_LABELS, UNMATCHED_ROUTE},
    http::{self, max_server_series},
    metrics::{
        MetricsBackend, RequestRecord, Snapshot,
        otel::{self, OtelBackend},
        prometheus::PrometheusBackend,
    },
    telemetry::{self, Losses, MetricsTap, SCOPE},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{
    helpers::{eventually, parse_exposition, spawn_app, spawn_binary},
    otel::terminate,
    otlp::{self, histogram_points, sum_of},
};

/// A series as both backends name it: method, route, status and error type.
type Key = (String, String, u16, Option<String>);

fn keys(snapshot: &Snapshot) -> BTreeSet<Key> {
    snapshot
        .series
        .iter()
        .map(|s| {
            (
                s.method.clone(),
                s.route.clone(),
                s.status,
                s.error_type.clone(),
            )
        })
        .collect()
}

/// A few of the series in `a` and not in `b`, for a readable failure.
fn missing(a: &BTreeSet<Key>, b: &BTreeSet<Key>) -> Vec<Key> {
    a.difference(b).take(5).cloned().collect()
}

/// The otel backend on the meter provider the app builds, its view included, with
/// `OTEL_EXPORTER=none`. The provider is returned too: its `force_flush` makes a collection.
fn otel_backend() -> (SdkMeterProvider, OtelBackend) {
    let mut config = Config::defaults();
    config.metrics_backend = Backend::Otel;
    config.otel_exporter = Exporter::None;
    let tap = MetricsTap::new();
    let provider = telemetry::meter_provider(
        &config,
        Resource::builder_empty().build(),
        &Arc::new(Losses::default()),
        &tap,
        otel::view(max_server_series(), None),
    )
    .unwrap();
    let backend = OtelBackend::new(&provider.meter(SCOPE), tap, Arc::new(Losses::default()));
    (provider, backend)
}

/// One record of each series the counting middleware can make: each method label, on each
/// counted route and `unmatched`, with each status from 200 to 599, and the two requests left
/// unanswered (client gone: 499; shutdown: 503), whose error types differ from their status's.
fn every_server_series() -> Vec<RequestRecord> {
    let routes: Vec<&'static str> = http::counted_routes()
        .into_iter()
        .map(|(route, _)| route)
        .chain([UNMATCHED_ROUTE])
        .collect();
    let mut records = Vec::new();
    for method in METHOD_LABELS {
        for &route in &routes {
            let record = |status, error_type| RequestRecord {
                method,
                route,
                status,
                error_type,
                duration: Duration::from_millis(3),
                trace: None,
                at: std::time::SystemTime::now(),
            };
            records.extend((200..=599).map(|status| record(status, ErrorType::of(status, false))));
            records.push(record(499, Some(ErrorType::ClientClosed)));
            records.push(record(503, Some(ErrorType::Shutdown)));
        }
    }
    records
}

#[test]
fn both_backends_keep_every_series_up_to_the_bound_and_otel_folds_none() {
    let prometheus = PrometheusBackend::new();
    let (provider, otel) = otel_backend();
    let records = every_server_series();

    for record in &records {
        prometheus.record(record);
        otel.record(record);
    }
    provider.force_flush().expect("a collection");

    let (from_prometheus, from_otel) = (keys(&prometheus.snapshot()), keys(&otel.snapshot()));
    assert_eq!(from_prometheus.len(), max_server_series());
    assert!(
        from_otel.iter().all(|(method, ..)| !method.is_empty()),
        "an overflow series (no attributes of the app's own)"
    );
    assert_eq!(
        (
            missing(&from_prometheus, &from_otel),
            missing(&from_otel, &from_prometheus)
        ),
        (vec![], vec![]),
        "series of one backend only"
    );
}

/// The methods sent: the standard ones, and two that are not (both labelled `_OTHER`).
const METHODS: [&str; 11] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND",
    "XYZZY",
];

/// Every method on every `/status/{code}` from 200 to 599.
fn every_method_on_every_status() -> Vec<(&'static str, String)> {
    METHODS
        .iter()
        .flat_map(|&method| (200..=599).map(move |code| (method, format!("/status/{code}"))))
        .collect()
}

/// Sends `request` on a connection of its own and returns the status of the answer. Written by
/// hand: an HTTP client sends CONNECT to a host and port, not to a path, and a server answers a
/// successful CONNECT by turning the connection into a tunnel.
async fn send_raw(address: SocketAddr, (method, path): &(&str, String)) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 256];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "{method} {path}: closed without an answer");
        answer.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: {line}"))
}

/// Sends every request, 32 at a time, and checks that each got its own status.
async fn send_all(address: SocketAddr, requests: Arc<Vec<(&'static str, String)>>) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (requests, next) = (requests.clone(), next.clone());
        workers.spawn(async move {
            while let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
                let status = send_raw(address, request).await;
                assert_eq!(format!("/status/{status}"), request.1, "{}", request.0);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
}

/// The series of `http_server_request_duration_seconds` in a text exposition.
fn exposed(text: &str) -> BTreeSet<Key> {
    parse_exposition(text)
        .into_keys()
        .filter_map(|series| {
            let labels = series.strip_prefix("http_server_request_duration_seconds_count{")?;
            Some(key(&labels_of(labels)))
        })
        .collect()
}

/// `name="value"` pairs; the app's label values hold no quote.
fn labels_of(text: &str) -> HashMap<String, String> {
    text.split("\",")
        .filter_map(|pair| {
            let (name, value) = pair.split_once("=\"")?;
            Some((name.to_string(), value.trim_end_matches("\"}").to_string()))
        })
        .collect()
}

/// The key of a series from its labels or attributes, by either naming.
fn key(labels: &HashMap<String, String>) -> Key {
    let get = |names: [&str; 2]| names.iter().find_map(|name| labels.get(*name)).cloned();
    (
        get(["http_request_method", "http.request.method"]).unwrap_or_default(),
        get(["http_route", "http.route"]).unwrap_or_default(),
        get(["http_response_status_code", "http.response.status_code"])
            .and_then(|status| status.trim_start_matches("int:").parse().ok())
            .unwrap_or(0),
        get(["error_type", "error.type"]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_method_on_every_status_makes_the_same_series_in_both_backends() {
    let app = spawn_app().await;
    let (receiver, received) = otlp::start_grpc(None).await;
    let otel = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{receiver}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ("TRACES_EXCLUDED_PATHS", "/*"),
    ]);
    let requests = Arc::new(every_method_on_every_status());

    tokio::join!(
        send_all(app.address, requests.clone()),
        send_all(otel.address, requests.clone())
    );
    let from_prometheus = exposed(&app.get("/metrics").await.text().await.unwrap());
    let from_otel = eventually(Duration::from_secs(20), || async {
        let total = received.last("http_requests").as_ref().and_then(sum_of);
        if total != Some(requests.len() as i64) {
            return None;
        }
        let points = histogram_points(&received.last("http.server.request.duration")?)?;
        Some(
            points
                .iter()
                .map(|(attributes, _)| key(attributes))
                .collect::<BTreeSet<_>>(),
        )
    })
    .await
    .expect("every request was exported");
    terminate(otel).await;

    assert_eq!(from_prometheus.len(), (METHOD_LABELS.len() * 400));
    assert_eq!(
        (
            missing(&from_prometheus, &from_otel),
            missing(&from_otel, &from_prometheus)
        ),
        (vec![], vec![]),
        "series of one backend only ({} and {})",
        from_prometheus.len(),
        from_otel.len()
    );
}
