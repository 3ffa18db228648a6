//! Span status and attributes on server errors, checked in-process with the SDK's in-memory
//! exporter: the app's state takes the tracer, so no global is involved.

use std::sync::Arc;

use prom_metrics_app::{
    config::Config, http::AppState, metrics::prometheus::PrometheusBackend, server::Server,
};

async fn panicking_handler() -> &'static str {
    panic!("deliberate failure")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_response_marks_the_server_span_as_an_error() {
    use opentelemetry::trace::{Status, TracerProvider as _};
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push(("/boom", axum::routing::get(panicking_handler)));
    let config = Config::defaults();
    let state = AppState::traced(
        Arc::new(PrometheusBackend::new()),
        &config,
        provider.tracer("test"),
        None,
    );
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        state,
        &config,
        Arc::default(),
    )
    .await
    .unwrap();
    let address = server.local_addr().unwrap();
    tokio::spawn(server.run_with(routes, std::future::pending::<()>()));

    reqwest::get(format!("http://{address}/boom"))
        .await
        .unwrap();
    reqwest::get(format!("http://{address}/missing"))
        .await
        .unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let boom = spans
        .iter()
        .find(|s| s.name == "GET /boom")
        .expect("a span for /boom");
    assert!(
        matches!(boom.status, Status::Error { .. }),
        "{:?}",
        boom.status
    );
    // The HTTP conventions' attributes and nothing else: no code.*, thread.*, target, busy_ns or
    // idle_ns from the bridge, and no span events copied from log lines.
    let mut keys: Vec<&str> = boom.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "client.address",
            "error.type",
            "http.request.method",
            "http.response.status_code",
            "http.route",
            "network.peer.address",
            "network.peer.port",
            "network.protocol.version",
            "server.address",
            "server.port",
            "url.path",
            "url.scheme",
        ]
    );
    let error_type = boom
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "error.type");
    assert_eq!(
        error_type.map(|kv| kv.value.to_string()).as_deref(),
        Some("500")
    );
    assert!(boom.events.is_empty(), "{:?}", boom.events);
    let missing = spans
        .iter()
        .find(|s| s.name == "GET")
        .expect("a span for the 404");
    assert_eq!(
        missing.status,
        Status::Unset,
        "a 4xx is the client's error, not the server's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_failure_says_so_on_its_span() {
    use opentelemetry::trace::{Status, TracerProvider as _};
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let config = Config::try_parse_args([
        "prom-metrics-app",
        "--chaos-error-rate",
        "1",
        "--chaos-latency",
        "1ms",
    ])
    .unwrap();
    let state = AppState::traced(
        Arc::new(PrometheusBackend::new()),
        &config,
        provider.tracer("test"),
        None,
    );
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        state,
        &config,
        Arc::default(),
    )
    .await
    .unwrap();
    let address = server.local_addr().unwrap();
    tokio::spawn(server.run_with(
        prom_metrics_app::http::counted_routes(),
        std::future::pending::<()>(),
    ));

    let response = reqwest::get(format!("http://{address}/")).await.unwrap();
    provider.force_flush().unwrap();

    assert_eq!(response.status().as_u16(), 500);
    let spans = exporter.get_finished_spans().unwrap();
    let span = spans
        .iter()
        .find(|s| s.name == "GET /")
        .expect("a span for /");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    let injected = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "chaos.injected");
    assert_eq!(
        injected.map(|kv| kv.value.to_string()).as_deref(),
        Some("true")
    );
    let events: Vec<&str> = span.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["chaos.latency", "chaos.error"]);
}
