//! The OpenTelemetry SDK environment against independent OTLP receivers: per-signal endpoints and
//! exporters, gzip, mTLS, the batch span processor's settings, export time limits, the attribute
//! count limit, exponential histograms and their temporality.

use std::time::{Duration, Instant};

use super::terminate;
use crate::{
    helpers::{Binary, eventually, get_text, parse_exposition, spawn_binary, value},
    otlp::{self, Received},
};

/// Sends `GET /` `n` times.
async fn requests(binary: &Binary, n: usize) {
    let client = reqwest::Client::new();
    for _ in 0..n {
        let answer = client.get(binary.url("/")).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    }
}

/// The value of a series of `/metrics` (the Prometheus backend) once `ready` holds for it.
async fn loss_reaches(binary: &Binary, series: &str, ready: impl Fn(f64) -> bool) -> Option<f64> {
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(15), || async {
        let text = get_text(&client, &binary.url("/metrics")).await?;
        let found = value(&parse_exposition(&text), series);
        ready(found).then_some(found)
    })
    .await
}

fn has_span(received: &Received, name: &str) -> bool {
    received.spans().iter().any(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_compresses_grpc_exports_and_the_receiver_reads_them() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ]);

    requests(&binary, 1).await;
    terminate(binary).await;

    assert!(has_span(&received, "GET /"), "{:?}", received.spans());
    assert_eq!(received.sum("http_requests"), Some(1));
    let headers = received.headers();
    assert!(headers.len() >= 2, "{headers:?}");
    assert!(
        headers
            .iter()
            .all(|h| h.get("grpc-encoding").map(String::as_str) == Some("gzip")),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_compresses_http_exports_and_the_receiver_decodes_them() {
    let (address, received) = otlp::start_http().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        // Per signal beats general: metrics compressed, spans not.
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
    ]);

    requests(&binary, 1).await;
    terminate(binary).await;

    assert!(has_span(&received, "GET /"));
    assert_eq!(received.sum("http_requests"), Some(1));
    let encodings: Vec<(String, Option<String>)> = received
        .paths()
        .into_iter()
        .zip(received.headers())
        .map(|(path, headers)| (path, headers.get("content-encoding").cloned()))
        .collect();
    assert!(
        encodings.contains(&("/v1/metrics".into(), Some("gzip".into())))
            && encodings.contains(&("/v1/traces".into(), None))
            && !encodings.contains(&("/v1/metrics".into(), None)),
        "{encodings:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_signal_goes_to_its_own_endpoint_and_a_per_signal_http_path_is_used_as_given() {
    let (metrics_address, metrics) = otlp::start_http().await;
    let (traces_address, traces) = otlp::start_grpc(None).await;
    let metrics_url = format!("http://{metrics_address}/api/v1/otlp/v1/metrics");
    let traces_url = format!("http://{traces_address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("METRICS_BACKEND", "otel"),
        // The general endpoint is nobody's: each signal has its own.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics_url),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url),
    ]);

    requests(&binary, 2).await;
    terminate(binary).await;

    assert_eq!(metrics.sum("http_requests"), Some(2));
    assert!(metrics.spans().is_empty());
    assert!(
        metrics
            .paths()
            .iter()
            .all(|p| p == "/api/v1/otlp/v1/metrics"),
        "{:?}",
        metrics.paths()
    );
    assert!(has_span(&traces, "GET /"));
    assert!(traces.metrics().is_empty());
}

/// Exports to a receiver that requires a client certificate signed by its CA, with and without
/// the client's key and certificate: what the receiver got, and the failed spans counted.
async fn mutual_tls(protocol: &str, with_client_certificate: bool) -> (Received, f64) {
    let (pki, ca, cert, key) = otlp::test_pki_files();
    let (address, received) = match protocol {
        "grpc" => otlp::start_grpc_with(Some(pki.server), Some(pki.ca_pem.clone())).await,
        _ => otlp::start_https_with(pki.server, Some(pki.ca_pem.clone())).await,
    };
    let endpoint = format!("https://localhost:{}", address.port());
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let mut envs = vec![
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    if with_client_certificate {
        envs.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", key));
        envs.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert));
    }
    let binary = spawn_binary(&envs);

    requests(&binary, 1).await;
    let failed = match with_client_certificate {
        true => {
            eventually(Duration::from_secs(10), || async {
                has_span(&received, "GET /").then_some(())
            })
            .await;
            loss_reaches(
                &binary,
                "prom_metrics_app_telemetry_failed_spans_total",
                |_| true,
            )
            .await
        }
        false => {
            loss_reaches(
                &binary,
                "prom_metrics_app_telemetry_failed_spans_total",
                |n| n >= 1.0,
            )
            .await
        }
    };
    drop(binary);
    (received, failed.expect("/metrics answers"))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_client_certificate_grpc_exports_reach_a_receiver_that_requires_one() {
    let (received, failed) = mutual_tls("grpc", true).await;

    assert!(has_span(&received, "GET /"));
    assert_eq!(failed, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_certificate_grpc_exports_fail_and_are_counted_as_lost() {
    let (received, failed) = mutual_tls("grpc", false).await;

    assert!(received.spans().is_empty());
    assert!(failed >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_client_certificate_http_exports_reach_a_receiver_that_requires_one() {
    let (received, failed) = mutual_tls("http/protobuf", true).await;

    assert!(has_span(&received, "GET /"));
    assert_eq!(failed, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_certificate_http_exports_fail_and_are_counted_as_lost() {
    let (received, failed) = mutual_tls("http/protobuf", false).await;

    assert!(received.spans().is_empty());
    assert!(failed >= 1.0);
}

/// Runs the otel backend with `envs` against a gRPC receiver: what it got, and the app's stdout.
async fn export_with(envs: &[(&str, &str)]) -> (Received, String) {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let mut all = vec![
        ("OTEL_EXPORTER", "otlp"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ];
    all.extend_from_slice(envs);
    let binary = spawn_binary(&all);
    requests(&binary, 1).await;
    let stdout = terminate(binary).await;
    (received, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_signal_has_its_own_exporter_and_a_disabled_sdk_exports_nothing() {
    let (spans_only, _) = export_with(&[("OTEL_METRICS_EXPORTER", "none")]).await;
    let (metrics_only, _) = export_with(&[("OTEL_TRACES_EXPORTER", "none")]).await;
    let (nothing, stdout) = export_with(&[("OTEL_SDK_DISABLED", "true")]).await;

    assert!(has_span(&spans_only, "GET /") && spans_only.metrics().is_empty());
    assert!(metrics_only.spans().is_empty());
    assert_eq!(metrics_only.sum("http_requests"), Some(1));
    assert!(nothing.spans().is_empty() && nothing.metrics().is_empty());
    let access = stdout
        .lines()
        .find(|l| l.contains("access: GET / 200"))
        .expect("the app served and logged the request");
    assert!(access.contains("trace_id="), "ids still made: {access}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_delay_sets_how_soon_spans_are_exported() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ]);

    let start = Instant::now();
    requests(&binary, 1).await;
    let arrived = eventually(Duration::from_secs(4), || async {
        has_span(&received, "GET /").then(|| start.elapsed())
    })
    .await;

    // The default, 5 s, would not have sent it yet.
    let arrived = arrived.expect("the span within 4 s");
    assert!(arrived < Duration::from_secs(2), "{arrived:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_batch_size_bounds_the_spans_of_each_export() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ]);

    requests(&binary, 5).await;
    terminate(binary).await;

    let batches = received.span_batches();
    assert_eq!(batches.iter().sum::<usize>(), 5, "{batches:?}");
    assert!(batches.iter().all(|&n| n <= 2), "{batches:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_span_queue_drops_and_counts_what_it_cannot_hold() {
    let address = otlp::silent_listener().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "2"),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ]);

    requests(&binary, 20).await;
    let dropped = loss_reaches(
        &binary,
        "prom_metrics_app_telemetry_dropped_spans_total",
        |n| n >= 18.0,
    )
    .await;

    assert_eq!(dropped, Some(18.0), "2 queued, 18 dropped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_span_export_past_the_export_timeout_is_given_up_and_counted() {
    let address = otlp::silent_listener().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "300"),
    ]);

    let start = Instant::now();
    requests(&binary, 1).await;
    let failed = loss_reaches(
        &binary,
        "prom_metrics_app_telemetry_failed_spans_total",
        |n| n >= 1.0,
    )
    .await;

    assert_eq!(failed, Some(1.0));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metric_export_past_the_export_timeout_is_given_up_and_counted() {
    let address = otlp::silent_listener().await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "300"),
    ]);

    let warned = eventually(Duration::from_secs(8), || async {
        let stdout = binary.stdout();
        stdout
            .lines()
            .find(|l| {
                l.contains("telemetry is being lost") && l.contains("failed_metric_exports=1")
            })
            .map(str::to_string)
    })
    .await;

    assert!(warned.is_some(), "{}", binary.stdout());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_attribute_count_limit_drops_span_attributes_and_counts_them() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "3"),
    ]);

    requests(&binary, 1).await;
    terminate(binary).await;

    let spans = received.spans();
    let home = spans.iter().find(|s| s.name == "GET /").expect("the span");
    assert_eq!(home.attributes.len(), 3, "{:?}", home.attributes);
    assert!(home.dropped_attributes_count >= 5, "{home:?}");
}

/// Runs the otel backend with exponential histograms and `temporality` against a receiver of
/// `protocol`, with a request before each of three exports; what it received, and the totals of
/// `/view_metrics` at the end.
async fn exponential_exports(protocol: &str, temporality: &str) -> (Received, serde_json::Value) {
    let (address, received) = match protocol {
        "grpc" => otlp::start_grpc(None).await,
        _ => otlp::start_http().await,
    };
    let endpoint = format!("http://{address}");
    let binary = spawn_binary(&[
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "base2_exponential_bucket_histogram",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            temporality,
        ),
    ]);
    let client = reqwest::Client::new();

    for round in 1..=3u64 {
        requests(&binary, 1).await;
        // Wait for an export that holds this request.
        let exported = eventually(Duration::from_secs(10), || async {
            let points = received.exponential("request_processing_seconds");
            let seen: u64 = match temporality {
                "cumulative" => points.last().map_or(0, |p| p.count),
                _ => points.iter().map(|p| p.count).sum(),
            };
            (seen >= round).then_some(())
        })
        .await;
        assert!(
            exported.is_some(),
            "round {round}: {:?}",
            received.metrics()
        );
    }
    let view = eventually(Duration::from_secs(10), || async {
        let text = get_text(&client, &binary.url("/view_metrics?format=json")).await?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        (json["request_processing_seconds"]["count"] == 3).then_some(json)
    })
    .await
    .expect("/view_metrics shows the three requests");
    drop(binary);
    (received, view)
}

/// The distinct start times of `points`, in order.
fn start_times(points: &[otlp::ExponentialPoint]) -> Vec<u64> {
    let mut starts: Vec<u64> = points.iter().map(|p| p.start_time_unix_nano).collect();
    starts.dedup();
    starts
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_exponential_histograms_over_grpc_start_each_interval_anew() {
    let (received, view) = exponential_exports("grpc", "delta").await;

    let points = received.exponential("request_processing_seconds");
    assert!(points.len() >= 3, "{points:?}");
    assert!(
        points.iter().all(|p| p.temporality == 1),
        "DELTA: {points:?}"
    );
    assert!(
        start_times(&points).len() >= 3,
        "start times move: {points:?}"
    );
    assert!(
        points
            .windows(2)
            .all(|w| w[1].start_time_unix_nano >= w[0].time_unix_nano)
    );
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 3);
    let server = received.exponential("http.server.request.duration");
    assert!(!server.is_empty() && server.iter().all(|p| p.temporality == 1));
    assert_eq!(view["counters"]["http_requests_total"], 3, "{view}");
    assert_eq!(
        view["request_processing_seconds"]["buckets"]
            .as_array()
            .and_then(|b| b.last())
            .map(|b| b["count"].clone()),
        Some(3.into()),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cumulative_exponential_histograms_over_http_keep_their_start() {
    let (received, view) = exponential_exports("http/protobuf", "cumulative").await;

    let points = received.exponential("request_processing_seconds");
    assert!(points.len() >= 3, "{points:?}");
    assert!(
        points.iter().all(|p| p.temporality == 2),
        "CUMULATIVE: {points:?}"
    );
    assert_eq!(start_times(&points).len(), 1, "one start: {points:?}");
    assert_eq!(points.last().unwrap().count, 3);
    assert!(points.iter().all(|p| (-10..=20).contains(&p.scale)));
    assert_eq!(view["counters"]["http_requests_total"], 3, "{view}");
    assert!(view["quantiles"]["p50"].as_f64().is_some(), "{view}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lowmemory_sends_counters_and_histograms_as_deltas_and_observed_counters_cumulative() {
    let (received, _) = exponential_exports("grpc", "lowmemory").await;

    let histogram = received.exponential("request_processing_seconds");
    assert!(
        histogram.iter().all(|p| p.temporality == 1),
        "{histogram:?}"
    );
    let temporality = |name: &str| {
        received.last(name).and_then(|m| match m.data {
            Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) => {
                Some(sum.aggregation_temporality)
            }
            _ => None,
        })
    };
    assert_eq!(temporality("http_requests"), Some(1), "a counter: delta");
    assert_eq!(
        temporality("prom_metrics_app.telemetry.dropped_spans"),
        Some(2),
        "an observable counter: cumulative"
    );
}
