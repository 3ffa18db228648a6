//! Spans and collected metrics with known values, for the format tests.

use std::time::{Duration, SystemTime};

use opentelemetry::{
    InstrumentationScope, KeyValue,
    metrics::MeterProvider as _,
    trace::{Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::{
    Resource,
    metrics::{
        Aggregation, InMemoryMetricExporter, Instrument, PeriodicReader, SdkMeterProvider, Stream,
        data::ResourceMetrics,
    },
    trace::{SpanData, SpanEvents, SpanLinks},
};

pub const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
pub const SPAN_ID: &str = "5c1c63257de34c67";
pub const PARENT_ID: &str = "b7ad6b7169203331";
/// 2026-11-25T17:53:00Z, in nanoseconds since the epoch.
pub const START_NANOS: u64 = 1_795_629_180_000_000_000;

/// The server span of `GET /do_task`, 201.302 ms long, child of a remote parent.
pub fn server_span() -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(START_NANOS);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex(TRACE_ID).unwrap(),
            SpanId::from_hex(SPAN_ID).unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from_hex(PARENT_ID).unwrap(),
        parent_span_is_remote: true,
        span_kind: SpanKind::Server,
        name: "GET /do_task".into(),
        start_time: start,
        end_time: start + Duration::from_micros(201_302),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/do_task"),
            KeyValue::new("http.response.status_code", 200_i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("prom-metrics-app").build(),
    }
}

/// A root span that failed, with one event.
pub fn failed_root_span() -> SpanData {
    let mut span = server_span();
    span.parent_span_id = SpanId::INVALID;
    span.parent_span_is_remote = false;
    span.span_kind = SpanKind::Internal;
    span.name = "do_task work".into();
    span.status = Status::error("upstream said \"no\"");
    span.attributes = vec![KeyValue::new("task.seconds", 0.25)];
    let mut events = SpanEvents::default();
    events
        .events
        .push(Event::new("retry", span.start_time, Vec::new(), 0));
    span.events = events;
    span
}

pub fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([KeyValue::new("service.name", "prom-metrics-app")])
        .build()
}

/// One collection of: a counter at 3, a counter at 0, an up-down counter at -2, a gauge at 1.5,
/// a histogram of 0.25, 0.5 and 4 (bounds 0.3 and 1) and an exponential histogram (scale 0) of 1,
/// 2 and 4.
pub fn collected_metrics() -> ResourceMetrics {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .with_view(|instrument: &Instrument| {
            (instrument.name() == "sizes").then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Base2ExponentialHistogram {
                        max_size: 160,
                        max_scale: 0,
                        record_min_max: true,
                    })
                    .build()
                    .unwrap()
            })
        })
        .build();
    let meter = provider.meter("prom-metrics-app");

    meter
        .u64_counter("requests")
        .with_unit("1")
        .build()
        .add(3, &[]);
    meter.u64_counter("idle").with_unit("1").build().add(0, &[]);
    meter.i64_up_down_counter("in_flight").build().add(-2, &[]);
    meter
        .f64_gauge("temperature")
        .with_unit("Cel")
        .build()
        .record(1.5, &[]);
    let latency = meter
        .f64_histogram("latency")
        .with_unit("s")
        .with_boundaries(vec![0.3, 1.0])
        .build();
    for value in [0.25, 0.5, 4.0] {
        latency.record(value, &[KeyValue::new("http.route", "/")]);
    }
    let sizes = meter.f64_histogram("sizes").with_unit("By").build();
    for value in [1.0, 2.0, 4.0] {
        sizes.record(value, &[]);
    }

    provider.force_flush().unwrap();
    exporter.get_finished_metrics().unwrap().remove(0)
}
