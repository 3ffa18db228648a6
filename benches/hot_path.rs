//! Micro-benchmarks of the per-request hot path and of `/metrics`:
//!
//! - recording one counted request in each metrics backend (with and without an exemplar for the
//!   Prometheus backend, which adds one when the request was served in a sampled span, and with
//!   its native histograms off, classic buckets only);
//! - encoding the Prometheus exposition (0.0.4 text, OpenMetrics, protobuf with native buckets)
//!   with the default series, and with 10,000 series of the labelled histogram (more than the
//!   app's bounded labels reach through HTTP);
//! - encoding 10,000 synthetic gauge series in each format, and the same series held in a
//!   prometheus-client registry and encoded by its encoders: the baseline that the synthetic
//!   encoder replaces.
//!
//! `cargo bench --bench hot_path` (add a filter such as `record/` to run some of them). Criterion
//! prints the mean; the median of each is in `target/criterion/GROUP/NAME/new/estimates.json`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::{
    metrics::MeterProvider as _,
    trace::{SpanId, TraceId},
};
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};
use prom_metrics_app::{
    config::{Backend, Config, Exporter, NativeHistograms},
    conventions::ErrorType,
    http::max_server_series,
    metrics::{
        Format, MetricsBackend, RequestRecord, TraceRef,
        otel::{self, OtelBackend},
        prometheus::PrometheusBackend,
    },
    telemetry::{self, Losses, MetricsTap, SCOPE},
};

/// A `GET /` answered 200 in 3 ms, as the counting middleware records it.
fn home(trace: Option<TraceRef>) -> RequestRecord {
    RequestRecord {
        method: "GET",
        route: "/",
        status: 200,
        error_type: None,
        duration: Duration::from_micros(3_000),
        trace,
        at: std::time::SystemTime::now(),
    }
}

fn sampled() -> Option<TraceRef> {
    Some(TraceRef {
        trace_id: TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("valid hex"),
        span_id: SpanId::from_hex("b7ad6b7169203331").expect("valid hex"),
    })
}

/// The Prometheus backend as `METRICS_BACKEND=prometheus` builds it.
fn prometheus() -> PrometheusBackend {
    PrometheusBackend::new().with_losses(Arc::new(Losses::default()))
}

/// The OpenTelemetry backend on the meter provider that `METRICS_BACKEND=otel` builds with
/// `OTEL_EXPORTER=none`. The provider is returned too: dropping it would stop the instruments.
fn otel() -> (SdkMeterProvider, OtelBackend) {
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
    .expect("a provider without an exporter builds");
    let backend = OtelBackend::new(&provider.meter(SCOPE), tap, Arc::new(Losses::default()));
    (provider, backend)
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    let backend = prometheus();
    let (plain, exemplar) = (home(None), home(sampled()));
    group.bench_function("prometheus", |b| {
        b.iter(|| backend.record(black_box(&plain)))
    });
    group.bench_function("prometheus_exemplar", |b| {
        b.iter(|| backend.record(black_box(&exemplar)))
    });
    let classic = PrometheusBackend::with_native_histograms(NativeHistograms::Off);
    group.bench_function("prometheus_classic_only", |b| {
        b.iter(|| classic.record(black_box(&plain)))
    });
    let (_provider, backend) = otel();
    group.bench_function("otel", |b| b.iter(|| backend.record(black_box(&plain))));
    group.finish();
}

/// Records one request into each of about `series` distinct (route, status) series of the labelled
/// histogram. Routes are leaked: the backend takes `&'static str`, as the app's are.
fn fill(backend: &PrometheusBackend, series: usize) {
    const STATUSES: [u16; 10] = [200, 201, 204, 301, 304, 400, 404, 429, 500, 503];
    for i in 0..series.div_ceil(STATUSES.len()) {
        let route: &'static str = Box::leak(format!("/synthetic/{i}").into_boxed_str());
        for status in STATUSES {
            backend.record(&RequestRecord {
                route,
                status,
                error_type: ErrorType::of(status, false),
                ..home(None)
            });
        }
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let default = prometheus();
    default.record(&home(sampled()));
    let large = prometheus();
    fill(&large, 10_000);
    for (name, backend) in [("default", &default), ("10000_series", &large)] {
        for (format_name, format) in [
            ("text", Format::Text),
            ("openmetrics", Format::OpenMetrics),
            ("protobuf", Format::Protobuf),
        ] {
            group.bench_function(format!("{name}_{format_name}"), |b| {
                b.iter(|| backend.encode(black_box(format)))
            });
        }
    }
    group.finish();
}

/// Series of the synthetic benchmarks, in one family.
const SYNTHETIC_SERIES: u64 = 10_000;

fn synthetic(c: &mut Criterion) {
    use prom_metrics_app::synthetic::{Settings, Synthetic};
    use prometheus_client::{
        encoding::{prometheus_protobuf, prometheus_text, text},
        metrics::{family::Family, gauge::Gauge},
        registry::Registry,
    };
    use prost::Message as _;

    let mut group = c.benchmark_group("synthetic");
    let backend = PrometheusBackend::new();
    let synthetic = Arc::new(Synthetic::new(Settings {
        metrics: 1,
        series_per_metric: SYNTHETIC_SERIES,
        ..Settings::default()
    }));
    backend.attach_synthetic(synthetic.clone());
    // The baseline: the same series and values in a registry.
    let frame = synthetic.run().frame();
    let family =
        Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for id in 0..SYNTHETIC_SERIES {
        let series = frame.series(0, id);
        family
            .get_or_create(&vec![
                ("series_id".to_string(), id.to_string()),
                ("generation".to_string(), series.generation.to_string()),
            ])
            .set(frame.gauge(&series));
    }
    let mut registry = Registry::default();
    registry.register("synthetic_gauge_0", "Synthetic series", family);
    for (format_name, format) in [
        ("text", Format::Text),
        ("openmetrics", Format::OpenMetrics),
        ("protobuf", Format::Protobuf),
    ] {
        group.bench_function(format!("gauges_10000_{format_name}"), |b| {
            b.iter(|| {
                let chunks = backend.synthetic_exposition(black_box(format)).unwrap();
                chunks.map(|chunk| chunk.len()).sum::<usize>()
            })
        });
        group.bench_function(
            format!("prometheus_client_gauges_10000_{format_name}"),
            |b| {
                b.iter(|| match format {
                    Format::Text => {
                        let mut out = String::new();
                        prometheus_text::encode(&mut out, black_box(&registry)).unwrap();
                        out.len()
                    }
                    Format::OpenMetrics => {
                        let mut out = String::new();
                        text::encode(&mut out, black_box(&registry)).unwrap();
                        out.len()
                    }
                    Format::Protobuf => {
                        let mut out = Vec::new();
                        for family in prometheus_protobuf::encode(black_box(&registry)).unwrap() {
                            family.encode_length_delimited(&mut out).unwrap();
                        }
                        out.len()
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, record, encode, synthetic);
criterion_main!(benches);
