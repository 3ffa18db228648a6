//! An OTLP receiver built on the official protobuf definitions (`opentelemetry-proto`), serving
//! OTLP/gRPC and OTLP/HTTP with protobuf bodies (traces, metrics and logs), either optionally over TLS, optionally requiring a
//! client certificate, and accepting gzip bodies; it records what it receives.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{body::Bytes, extract::OriginalUri, http::HeaderMap, routing::post};
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{
            ExportLogsServiceRequest, ExportLogsServiceResponse,
            logs_service_server::{LogsService, LogsServiceServer},
        },
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{Metric, metric::Data},
};
use prost::Message;
use tonic::codec::CompressionEncoding;

/// Everything a receiver got, shared with the test.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    headers: Vec<HashMap<String, String>>,
    paths: Vec<String>,
}

/// A histogram data point: its attributes and its count.
pub type HistogramPoint = (HashMap<String, String>, u64);

/// One received span, flattened for assertions.
#[derive(Debug, Clone)]
pub struct SpanView {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub kind: i32,
    pub status_code: i32,
    pub attributes: HashMap<String, String>,
    pub dropped_attributes_count: u32,
    pub resource: HashMap<String, String>,
}

/// One received log record, flattened for assertions.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub scope: String,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: String,
    pub trace_id: String,
    pub span_id: String,
    pub flags: u32,
    pub attributes: HashMap<String, String>,
    pub resource: HashMap<String, String>,
}

/// One data point of an exponential histogram, with the temporality of its metric.
#[derive(Debug, Clone)]
pub struct ExponentialPoint {
    /// `AGGREGATION_TEMPORALITY_DELTA` (1) or `..._CUMULATIVE` (2).
    pub temporality: i32,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub scale: i32,
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => format!("int:{i}"),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

impl Received {
    fn record_headers(&self, headers: HashMap<String, String>) {
        self.0.lock().unwrap().headers.push(headers);
    }

    fn record_request(&self, uri: &OriginalUri, headers: &HeaderMap) {
        self.record_headers(header_map(headers));
        self.0.lock().unwrap().paths.push(uri.path().to_string());
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanView> {
        let inner = self.0.lock().unwrap();
        let mut spans = Vec::new();
        for request in &inner.traces {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                    spans.push(SpanView {
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        kind: span.kind,
                        status_code: span.status.as_ref().map(|s| s.code).unwrap_or(0),
                        attributes: attributes(&span.attributes),
                        dropped_attributes_count: span.dropped_attributes_count,
                        resource: resource.clone(),
                    });
                }
            }
        }
        spans
    }

    /// Every log record received so far, in order.
    pub fn records(&self) -> Vec<RecordView> {
        let inner = self.0.lock().unwrap();
        let mut records = Vec::new();
        for request in &inner.logs {
            for resource_logs in &request.resource_logs {
                let resource = resource_logs
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                for scope_logs in &resource_logs.scope_logs {
                    let scope = scope_logs
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for record in &scope_logs.log_records {
                        records.push(RecordView {
                            scope: scope.clone(),
                            time_unix_nano: record.time_unix_nano,
                            observed_time_unix_nano: record.observed_time_unix_nano,
                            severity_number: record.severity_number,
                            severity_text: record.severity_text.clone(),
                            body: text(&record.body),
                            trace_id: hex(&record.trace_id),
                            span_id: hex(&record.span_id),
                            flags: record.flags,
                            attributes: attributes(&record.attributes),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
        records
    }

    /// Every metric received so far, in order, with the resource attributes of its batch.
    pub fn metrics(&self) -> Vec<(Metric, HashMap<String, String>)> {
        let inner = self.0.lock().unwrap();
        let mut metrics = Vec::new();
        for request in &inner.metrics {
            for resource_metrics in &request.resource_metrics {
                let resource = resource_metrics
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                for metric in resource_metrics
                    .scope_metrics
                    .iter()
                    .flat_map(|s| &s.metrics)
                {
                    metrics.push((metric.clone(), resource.clone()));
                }
            }
        }
        metrics
    }

    /// Each metrics export received, in order: its metrics by name.
    pub fn metric_exports(&self) -> Vec<HashMap<String, Metric>> {
        let inner = self.0.lock().unwrap();
        inner
            .metrics
            .iter()
            .map(|request| {
                request
                    .resource_metrics
                    .iter()
                    .flat_map(|resource| &resource.scope_metrics)
                    .flat_map(|scope| &scope.metrics)
                    .map(|metric| (metric.name.clone(), metric.clone()))
                    .collect()
            })
            .collect()
    }

    /// The last received instance of metric `name`, without copying the others.
    pub fn last(&self, name: &str) -> Option<Metric> {
        let inner = self.0.lock().unwrap();
        inner
            .metrics
            .iter()
            .rev()
            .flat_map(|request| request.resource_metrics.iter().rev())
            .flat_map(|resource| resource.scope_metrics.iter().rev())
            .flat_map(|scope| scope.metrics.iter().rev())
            .find(|metric| metric.name == name)
            .cloned()
    }

    /// The last cumulative value of the sum `name` (summed over its data points).
    pub fn sum(&self, name: &str) -> Option<i64> {
        self.last(name).as_ref().and_then(sum_of)
    }

    /// The last histogram `name`: its unit and each data point's attributes and count.
    pub fn histogram(&self, name: &str) -> Option<(String, Vec<HistogramPoint>)> {
        let metric = self.last(name)?;
        Some((metric.unit.clone(), histogram_points(&metric)?))
    }

    /// The attributes of every data point of the last export of metric `name`, whatever its kind.
    pub fn point_attributes(&self, name: &str) -> Vec<HashMap<String, String>> {
        let Some(metric) = self.last(name) else {
            return Vec::new();
        };
        match &metric.data {
            Some(Data::Sum(sum)) => sum
                .data_points
                .iter()
                .map(|p| attributes(&p.attributes))
                .collect(),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| attributes(&p.attributes))
                .collect(),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| attributes(&p.attributes))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Headers (or gRPC metadata) of every export request.
    pub fn headers(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().headers.clone()
    }

    /// The paths of the OTLP/HTTP export requests, in order.
    pub fn paths(&self) -> Vec<String> {
        self.0.lock().unwrap().paths.clone()
    }

    /// The number of spans in each trace export request, in order.
    pub fn span_batches(&self) -> Vec<usize> {
        let inner = self.0.lock().unwrap();
        inner
            .traces
            .iter()
            .map(|request| {
                request
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum()
            })
            .collect()
    }

    /// The points of the exponential histogram `name`, export after export, in order.
    pub fn exponential(&self, name: &str) -> Vec<ExponentialPoint> {
        self.metrics()
            .iter()
            .filter(|(metric, _)| metric.name == name)
            .filter_map(|(metric, _)| match &metric.data {
                Some(Data::ExponentialHistogram(h)) => Some(
                    h.data_points
                        .iter()
                        .map(|p| ExponentialPoint {
                            temporality: h.aggregation_temporality,
                            start_time_unix_nano: p.start_time_unix_nano,
                            time_unix_nano: p.time_unix_nano,
                            count: p.count,
                            scale: p.scale,
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// The value of a sum, added up over its data points; `None` for another kind of metric.
pub fn sum_of(metric: &Metric) -> Option<i64> {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
    match &metric.data {
        Some(Data::Sum(sum)) => Some(
            sum.data_points
                .iter()
                .map(|p| match p.value {
                    Some(Number::AsInt(i)) => i,
                    Some(Number::AsDouble(d)) => d as i64,
                    None => 0,
                })
                .sum(),
        ),
        _ => None,
    }
}

/// Each data point of a histogram: its attributes and its count; `None` for another kind.
pub fn histogram_points(metric: &Metric) -> Option<Vec<HistogramPoint>> {
    match &metric.data {
        Some(Data::Histogram(h)) => Some(
            h.data_points
                .iter()
                .map(|p| (attributes(&p.attributes), p.count))
                .collect(),
        ),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.record_headers(header_map(&request.metadata().clone().into_headers()));
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.record_headers(header_map(&request.metadata().clone().into_headers()));
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.record_headers(header_map(&request.metadata().clone().into_headers()));
        self.0.lock().unwrap().logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A TLS identity for the gRPC receiver: certificate chain and key, PEM.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Starts an OTLP/gRPC receiver on a free loopback port, with TLS when `tls` is given.
pub async fn start_grpc(tls: Option<Identity>) -> (SocketAddr, Received) {
    start_grpc_with(tls, None).await
}

/// Like [`start_grpc`]; with `client_ca`, TLS requires a client certificate signed by it.
pub async fn start_grpc_with(
    tls: Option<Identity>,
    client_ca: Option<String>,
) -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let mut builder = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        let identity = tonic::transport::Identity::from_pem(identity.cert_pem, identity.key_pem);
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = client_ca {
            // tonic checks client certificates with the process's provider: the test binary has
            // two (ring, and reqwest's aws-lc), so none is chosen by itself.
            let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder.tls_config(config).unwrap();
    }
    let router = builder
        .add_service(
            TraceServiceServer::new(received.clone()).accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            MetricsServiceServer::new(received.clone())
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            LogsServiceServer::new(received.clone()).accept_compressed(CompressionEncoding::Gzip),
        );
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (address, received)
}

/// Serves OTLP/gRPC on `listener` into `received` until the returned sender is used or dropped,
/// so that a test can stop the collector and start it again on the same port.
pub fn serve_grpc_until_stopped(
    listener: tokio::net::TcpListener,
    received: &Received,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .add_service(MetricsServiceServer::new(received.clone()))
        .add_service(LogsServiceServer::new(received.clone()));
    tokio::spawn(router.serve_with_incoming_shutdown(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        async move {
            let _ = stopped.await;
        },
    ));
    stop
}

/// Starts an OTLP/HTTP receiver (protobuf bodies on `/v1/traces`, `/v1/metrics` and `/v1/logs`).
pub async fn start_http() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let app = http_receiver(&received);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, received)
}

/// Like [`start_http`], over TLS with `identity`.
pub async fn start_https(identity: Identity) -> (SocketAddr, Received) {
    start_https_with(identity, None).await
}

/// Like [`start_https`]; with `client_ca`, TLS requires a client certificate signed by it.
pub async fn start_https_with(
    identity: Identity,
    client_ca: Option<String>,
) -> (SocketAddr, Received) {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let certificates = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(certificate.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certificates, key).unwrap();
    let tls = TlsListener {
        listener,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let received = Received::default();
    let app = http_receiver(&received);
    tokio::spawn(async move { axum::serve(tls, app).await });
    (address, received)
}

/// A listener that completes the TLS handshake before handing a connection to axum; failed
/// handshakes (an untrusting client) are skipped.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(stream) = self.acceptor.accept(stream).await {
                return (stream, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

fn http_receiver(received: &Received) -> axum::Router {
    let (traces, metrics, logs) = (received.clone(), received.clone(), received.clone());
    let metrics = post(
        move |uri: OriginalUri, headers: HeaderMap, body: Bytes| async move {
            metrics.record_request(&uri, &headers);
            let request = ExportMetricsServiceRequest::decode(decoded(&headers, body))
                .expect("a valid OTLP metrics request");
            metrics.0.lock().unwrap().metrics.push(request);
            protobuf(ExportMetricsServiceResponse::default().encode_to_vec())
        },
    );
    axum::Router::new()
        .route(
            "/v1/traces",
            post(
                move |uri: OriginalUri, headers: HeaderMap, body: Bytes| async move {
                    traces.record_request(&uri, &headers);
                    let request = ExportTraceServiceRequest::decode(decoded(&headers, body))
                        .expect("a valid OTLP trace request");
                    traces.0.lock().unwrap().traces.push(request);
                    protobuf(ExportTraceServiceResponse::default().encode_to_vec())
                },
            ),
        )
        .route("/v1/metrics", metrics.clone())
        .route(
            "/v1/logs",
            post(
                move |uri: OriginalUri, headers: HeaderMap, body: Bytes| async move {
                    logs.record_request(&uri, &headers);
                    let request = ExportLogsServiceRequest::decode(decoded(&headers, body))
                        .expect("a valid OTLP logs request");
                    logs.0.lock().unwrap().logs.push(request);
                    protobuf(ExportLogsServiceResponse::default().encode_to_vec())
                },
            ),
        )
        // Prometheus's OTLP receiver, whose URL a per-signal endpoint names as it is.
        .route("/api/v1/otlp/v1/metrics", metrics)
}

/// The body, gunzipped when its `Content-Encoding` says gzip.
fn decoded(headers: &HeaderMap, body: Bytes) -> Bytes {
    match headers.get("content-encoding").map(|v| v.as_bytes()) {
        Some(b"gzip") => {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
                .expect("a gzip body");
            plain.into()
        }
        None => body,
        Some(other) => panic!("unexpected Content-Encoding {other:?}"),
    }
}

fn protobuf(body: Vec<u8>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
}

/// [`test_certificates`] with the CA written to a file of its own: (CA file, server identity).
pub fn test_ca_file() -> (std::path::PathBuf, Identity) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (ca_pem, identity) = test_certificates();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pma-ca-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    (ca_file, identity)
}

/// A collector that accepts connections and never answers.
pub async fn silent_listener() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    address
}

/// A CA, a `localhost` server certificate and a client certificate, both signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub server: Identity,
    pub client: Identity,
}

/// [`Pki`], with the CA, the client's certificate and its key in files of their own:
/// (the PKI, the CA file, the client certificate file, the client key file).
pub fn test_pki_files() -> (
    Pki,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pki = test_pki();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pma-pki-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    std::fs::write(&files.0, &pki.ca_pem).unwrap();
    std::fs::write(&files.1, &pki.client.cert_pem).unwrap();
    std::fs::write(&files.2, &pki.client.key_pem).unwrap();
    (pki, files.0, files.1, files.2)
}

/// A fresh [`Pki`].
pub fn test_pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "prom-metrics-app test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, usage| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(
            vec!["localhost".to_string()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(
            vec!["prom-metrics-app".to_string()],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ),
    }
}

/// A CA and a `localhost` certificate signed by it: (CA PEM, server identity).
pub fn test_certificates() -> (String, Identity) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "prom-metrics-app test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (
        ca_cert.pem(),
        Identity {
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        },
    )
}
