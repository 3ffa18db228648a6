//! The Prometheus backend: a prometheus-client registry, pulled from `/metrics`.
//!
//! Histogram observations made inside a sampled span carry its `trace_id` and `span_id` as an
//! exemplar (OpenMetrics and protobuf), so a dashboard can jump from a latency bucket to a trace.
//! The two request histograms are also native histograms unless `NATIVE_HISTOGRAM_BUCKET_FACTOR`
//! is `off`; those are carried by the protobuf format only (see [`dual`]).

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, OnceLock, atomic::AtomicU64},
    time::SystemTime,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, prometheus_protobuf},
    metrics::{
        counter::{ConstCounter, Counter},
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::Gauge,
    },
    registry::{Registry, Unit},
};
use prost::Message;

use crate::{
    chaos::ChaosSettings, config::NativeHistograms, synthetic::Synthetic, telemetry::Losses,
};

mod dual;
mod labels;
mod native;
mod parse;
pub mod synthetic;

use super::{
    BUCKETS, Chunks, ClientRecord, Format, MetricsBackend, Outcome, RefusedRequests, RequestRecord,
    RouteMetrics, Snapshot,
    own::{CHAOS_GAUGES, LOSS_COUNTERS},
    process,
};
use crate::conventions::METHODS;
use dual::{DualFamily, DualHistogram};
use labels::{BuildLabels, ClientLabels, HttpLabels, TraceExemplar};
use native::Schema;

/// The names of the request histograms, as exposed.
const PROCESSING: &str = "request_processing_seconds";
const DURATION: &str = "http_server_request_duration_seconds";
/// The original's counters, made with the backend and never reset.
const COUNTERS: [&str; 4] = [
    "http_requests_total",
    "http_successful_request_total",
    "http_error_4xx_total",
    "http_error_5xx_total",
];

type Histogram = HistogramWithExemplars<TraceExemplar>;

fn new_histogram() -> Histogram {
    HistogramWithExemplars::new(BUCKETS.into_iter())
}

/// Prometheus backend: owns its registry, so every instance (and every test) starts from zero.
#[derive(Debug)]
pub struct PrometheusBackend {
    registry: Registry,
    requests: Counter,
    successful: Counter,
    error_4xx: Counter,
    error_5xx: Counter,
    processing: DualHistogram,
    duration: DualFamily<HttpLabels>,
    client_duration: Family<ClientLabels, Histogram, fn() -> Histogram>,
    /// The chaos settings in force, in the order of [`CHAOS_GAUGES`].
    chaos: [Gauge<f64, AtomicU64>; CHAOS_GAUGES.len()],
    /// When the counters were made: their created timestamp in the protobuf format.
    created: SystemTime,
    /// The synthetic series, served after the app's own.
    synthetic: OnceLock<Arc<Synthetic>>,
}

impl Default for PrometheusBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusBackend {
    /// A fresh registry with the original's families, the semantic-convention histogram, process
    /// metrics and build information; the request histograms are also native ones, at the
    /// default bucket factor (1.1).
    pub fn new() -> Self {
        Self::with_native_histograms(NativeHistograms::default())
    }

    /// As [`PrometheusBackend::new`], with the request histograms also native as `native` says.
    pub fn with_native_histograms(native: NativeHistograms) -> Self {
        let schema = Schema::of(native).map(Arc::new);
        let mut registry = Registry::default();
        let requests = Counter::default();
        let successful = Counter::default();
        let error_4xx = Counter::default();
        let error_5xx = Counter::default();
        let processing = DualHistogram::new(schema.as_ref());
        let duration = DualFamily::new(schema);

        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "http_requests",
            "Requests counted by the original's rule: home pages, /do_task and errors",
            requests.clone(),
        );
        registry.register(
            "http_successful_request",
            "Counted requests answered with a status below 400",
            successful.clone(),
        );
        registry.register(
            "http_error_4xx",
            "Counted requests answered with a 4xx status, unknown paths included",
            error_4xx.clone(),
        );
        registry.register(
            "http_error_5xx",
            "Counted requests answered with a 5xx status, handler failures included",
            error_5xx.clone(),
        );
        registry.register_with_unit(
            "request_processing",
            "Time spent serving a counted request",
            Unit::Seconds,
            processing.clone(),
        );
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests, by method, route template and status (OpenTelemetry semantic conventions)",
            Unit::Seconds,
            duration.clone(),
        );
        let client_duration =
            Family::<ClientLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                new_histogram,
            );
        registry.register_with_unit(
            "http_client_request_duration",
            "Duration of the HTTP calls /chain makes to its downstreams, by server and status (OpenTelemetry semantic conventions)",
            Unit::Seconds,
            client_duration.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: crate::VERSION,
                revision: crate::REVISION,
            })
            .set(1);
        registry.register(
            "prom_metrics_app_build_info",
            "Always 1; the labels tell the running version and revision",
            build,
        );
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        let chaos: [Gauge<f64, AtomicU64>; CHAOS_GAUGES.len()] = Default::default();
        for (row, gauge) in CHAOS_GAUGES.iter().zip(&chaos) {
            registry.register(row.prometheus, row.description, gauge.clone());
        }

        Self {
            registry,
            requests,
            successful,
            error_4xx,
            error_5xx,
            processing,
            duration,
            client_duration,
            chaos,
            created: SystemTime::now(),
            synthetic: OnceLock::new(),
        }
    }
}

impl PrometheusBackend {
    /// Also exports the running totals of telemetry lost on the way to the collector, so that an
    /// alert can catch a broken tracing pipeline.
    pub fn with_losses(mut self, losses: Arc<Losses>) -> Self {
        self.registry
            .register_collector(Box::new(LossCollector(losses)));
        self
    }

    /// Also exports the total of requests refused at the connection limit, which the server
    /// answers before the app and its counters.
    pub fn with_refused(mut self, refused: Arc<RefusedRequests>) -> Self {
        self.registry
            .register_collector(Box::new(RefusedCollector(refused)));
        self
    }
}

/// `prom_metrics_app_http_requests_refused_total`, read from [`RefusedRequests`] at each scrape.
#[derive(Debug)]
struct RefusedCollector(Arc<RefusedRequests>);

impl Collector for RefusedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let counter = ConstCounter::new(self.0.total());
        counter.encode(encoder.encode_descriptor(
            "prom_metrics_app_http_requests_refused",
            "Requests answered 503 by the server itself at its connection limit (MAX_CONNECTIONS), counted in no other family",
            None,
            counter.metric_type(),
        )?)
    }
}

/// `prom_metrics_app_telemetry_*_total` and `prom_metrics_app_log_lines_dropped_total`, read from
/// [`Losses`] at each scrape.
#[derive(Debug)]
struct LossCollector(Arc<Losses>);

impl Collector for LossCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let totals = self.0.totals();
        for row in &LOSS_COUNTERS {
            let counter = ConstCounter::new((row.read)(&totals));
            counter.encode(encoder.encode_descriptor(
                row.prometheus,
                row.description,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl PrometheusBackend {
    /// Counts `request` by the original's rule and observes its duration, then hands the
    /// labelled observation to `labelled`.
    fn count(&self, request: &RequestRecord, labelled: impl FnOnce(f64, Option<SystemTime>)) {
        self.requests.inc();
        match request.outcome() {
            Outcome::Success => self.successful.inc(),
            Outcome::ClientError => self.error_4xx.inc(),
            Outcome::ServerError => self.error_5xx.inc(),
        };
        let seconds = request.duration.as_secs_f64();
        let at = request.trace.map(|_| request.at);
        self.processing.observe(seconds, request.trace, at);
        labelled(seconds, at);
    }

    /// The series of `http_server_request_duration_seconds` that `request` belongs to.
    fn series(&self, request: &RequestRecord) -> DualHistogram {
        let labels = HttpLabels {
            http_request_method: request.method,
            http_route: request.route,
            http_response_status_code: request.status,
            error_type: request.error_type,
        };
        self.duration.get_or_create(&labels)
    }

    /// The Prometheus protobuf format, length-delimited `MetricFamily` messages: prometheus-client
    /// encodes every family, then the request histograms' messages are replaced by the app's own,
    /// which carry the native buckets too (see [`dual`]). Without native histograms the crate's
    /// classic messages stay.
    fn protobuf(&self) -> Result<Vec<u8>, fmt::Error> {
        let mut families = prometheus_protobuf::encode(&self.registry)?;
        for family in &mut families {
            match family.name.as_str() {
                PROCESSING => {
                    if let Some(metric) = self.processing.protobuf(Vec::new()) {
                        family.metric = vec![metric];
                    }
                }
                DURATION => {
                    let metrics: Option<Vec<_>> = self
                        .duration
                        .series()
                        .into_iter()
                        .map(|(labels, series)| series.protobuf(labels.protobuf()))
                        .collect();
                    if let Some(metrics) = metrics {
                        family.metric = metrics;
                    }
                }
                // prometheus-client writes no created timestamp of a counter: the backend's own.
                name if COUNTERS.contains(&name) => {
                    for counter in family.metric.iter_mut().filter_map(|m| m.counter.as_mut()) {
                        counter.start_timestamp = Some(self.created.into());
                    }
                }
                _ => {}
            }
        }
        let mut body = Vec::with_capacity(families.iter().map(|f| f.encoded_len() + 4).sum());
        for family in families {
            // Writing into a `Vec` cannot run out of room, the only failure prost reports.
            family
                .encode_length_delimited(&mut body)
                .map_err(|_| fmt::Error)?;
        }
        Ok(body)
    }
}

/// The recorder of one counted route: the handle of each method's series of successful (200)
/// answers, by far the most frequent, found once and kept (a handle shares its series with the
/// family), so that most requests skip the family's hashing and lock.
struct PrometheusRoute {
    backend: Arc<PrometheusBackend>,
    ok: [OnceLock<DualHistogram>; METHODS.len()],
}

impl RouteMetrics for PrometheusRoute {
    fn record(&self, request: &RequestRecord) {
        let method = METHODS.iter().position(|m| *m == request.method);
        let cached = match method {
            Some(i) if request.status == 200 && request.error_type.is_none() => {
                Some(self.ok[i].get_or_init(|| self.backend.series(request)))
            }
            _ => None,
        };
        self.backend.count(request, |seconds, at| match cached {
            Some(series) => series.observe(seconds, request.trace, at),
            None => self
                .backend
                .series(request)
                .observe(seconds, request.trace, at),
        });
    }
}

impl MetricsBackend for PrometheusBackend {
    fn route(self: Arc<Self>, _route: &'static str) -> Arc<dyn RouteMetrics> {
        Arc::new(PrometheusRoute {
            backend: self,
            ok: Default::default(),
        })
    }

    fn record(&self, request: &RequestRecord) {
        self.count(request, |seconds, at| {
            self.series(request).observe(seconds, request.trace, at);
        });
    }

    fn set_chaos(&self, settings: &ChaosSettings) {
        for (gauge, row) in self.chaos.iter().zip(&CHAOS_GAUGES) {
            gauge.set((row.read)(settings));
        }
    }

    fn record_client(&self, call: &ClientRecord) {
        let labels = ClientLabels {
            http_request_method: call.method,
            server_address: call.server_address.clone(),
            server_port: call.server_port,
            url_scheme: call.url_scheme,
            http_response_status_code: call.status,
            error_type: call.error_type,
        };
        let now = call.trace.map(|_| SystemTime::now());
        self.client_duration.get_or_create(&labels).observe(
            call.duration.as_secs_f64(),
            call.trace.map(TraceExemplar::from),
            now,
        );
    }

    fn snapshot(&self) -> Snapshot {
        let mut text = String::new();
        let now = SystemTime::now();
        // Reading the backend's own exposition shows exactly what a scrape would see; the native
        // buckets are not in the text, so they are read from the histograms themselves.
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return Snapshot::default();
        }
        let mut snapshot = parse::snapshot(&text);
        snapshot.native = self.processing.native();
        // By label values: a page of up to 24,120 series must not search them one by one.
        let mut native: HashMap<_, _> = self
            .duration
            .series()
            .into_iter()
            .map(|(labels, series)| {
                let key = (
                    labels.http_route,
                    labels.http_request_method,
                    labels.http_response_status_code,
                    labels.error_type.map(|e| e.to_string()),
                );
                (key, series)
            })
            .collect();
        for shown in &mut snapshot.series {
            let key = (
                shown.route.as_str(),
                shown.method.as_str(),
                shown.status,
                shown.error_type.clone(),
            );
            shown.native = native.remove(&key).and_then(|series| series.native());
        }
        Snapshot {
            collected_at: Some(now),
            ..snapshot
        }
    }

    fn encode(&self, format: Format) -> Option<Result<Vec<u8>, fmt::Error>> {
        let mut text = String::with_capacity(8 * 1024);
        let result = match format {
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut text, &self.registry)
            }
            Format::Protobuf => return Some(self.protobuf()),
        };
        Some(result.map(|()| text.into_bytes()))
    }

    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn attach_synthetic(&self, synthetic: Arc<Synthetic>) {
        let _ = self.synthetic.set(synthetic);
    }

    fn synthetic_exposition(&self, format: Format) -> Option<Chunks> {
        // One frame for the whole scrape: a churn while it is encoded cannot mix generations.
        let frame = self.synthetic.get()?.run().frame();
        (frame.settings.metrics > 0)
            .then(|| Box::new(synthetic::Chunks::new(frame, format)) as Chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;

    use crate::{
        conventions::ErrorType,
        metrics::{
            TraceRef,
            conformance::{self, record},
        },
    };

    /// A text exposition of `backend`.
    fn exposition(backend: &PrometheusBackend, format: Format) -> String {
        String::from_utf8(backend.encode(format).unwrap().unwrap()).unwrap()
    }

    /// The protobuf exposition of `backend`, decoded.
    fn families(backend: &PrometheusBackend) -> Vec<MetricFamily> {
        let body = backend.encode(Format::Protobuf).unwrap().unwrap();
        let mut rest = body.as_slice();
        let mut families = Vec::new();
        while !rest.is_empty() {
            families.push(MetricFamily::decode_length_delimited(&mut rest).unwrap());
        }
        families
    }

    fn trace() -> TraceRef {
        TraceRef {
            trace_id: opentelemetry::trace::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c")
                .unwrap(),
            span_id: opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
        }
    }

    #[test]
    fn protobuf_carries_both_request_histograms_classic_and_native_with_exemplars() {
        let backend = PrometheusBackend::new();

        backend.record(&RequestRecord {
            trace: Some(trace()),
            ..record(200, 30)
        });
        backend.record(&record(503, 3));
        let families = families(&backend);

        for name in [PROCESSING, DURATION] {
            let family = families.iter().find(|f| f.name == name).expect(name);
            let count: u64 = family
                .metric
                .iter()
                .map(|m| m.histogram.as_ref().unwrap().sample_count)
                .sum();
            assert_eq!(count, 2, "{name}");
            for metric in &family.metric {
                let h = metric.histogram.as_ref().unwrap();
                assert_eq!(h.schema, 3, "{name}: factor 1.1 is schema 3");
                assert!(h.zero_threshold > 0.0 && !h.positive_span.is_empty());
                assert_eq!(h.bucket.len(), BUCKETS.len() + 1, "{name}: classic too");
                assert!(h.start_timestamp.is_some(), "{name}: created timestamp");
            }
            let exemplars: Vec<_> = family
                .metric
                .iter()
                .flat_map(|m| &m.histogram.as_ref().unwrap().exemplars)
                .collect();
            assert_eq!(exemplars.len(), 1, "{name}: the native exemplar");
            let classic = family
                .metric
                .iter()
                .flat_map(|m| &m.histogram.as_ref().unwrap().bucket)
                .filter(|b| b.exemplar.is_some())
                .count();
            assert_eq!(classic, 1, "{name}: the classic bucket exemplar");
        }
        let ok = &families.iter().find(|f| f.name == DURATION).unwrap().metric;
        let labels: Vec<_> = ok
            .iter()
            .map(|m| {
                m.label
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert!(labels.contains(&"http_request_method=GET,http_route=/,http_response_status_code=503,url_scheme=http,error_type=503".to_string()), "{labels:?}");
        let counter = families
            .iter()
            .find(|f| f.name == "http_requests_total")
            .unwrap();
        let counter = counter.metric[0].counter.as_ref().unwrap();
        assert_eq!(counter.value, 2.0);
        assert!(counter.start_timestamp.is_some(), "created timestamp");
    }

    #[test]
    fn with_native_histograms_off_protobuf_has_classic_buckets_only() {
        let backend = PrometheusBackend::with_native_histograms(NativeHistograms::Off);

        backend.record(&RequestRecord {
            trace: Some(trace()),
            ..record(200, 30)
        });
        let families = families(&backend);

        let family = families.iter().find(|f| f.name == DURATION).unwrap();
        let h = family.metric[0].histogram.as_ref().unwrap();
        assert_eq!((h.schema, h.zero_threshold), (0, 0.0));
        assert!(h.positive_span.is_empty() && h.exemplars.is_empty());
        assert_eq!(h.sample_count, 1);
        assert!(h.bucket.iter().any(|b| b.exemplar.is_some()));
    }

    #[test]
    fn the_text_formats_are_the_same_with_native_histograms_on_or_off() {
        let on = PrometheusBackend::new();
        let off = PrometheusBackend::with_native_histograms(NativeHistograms::Off);
        let at = SystemTime::now();

        for backend in [&on, &off] {
            backend.record(&RequestRecord {
                trace: Some(trace()),
                at,
                ..record(200, 30)
            });
        }

        for format in [Format::Text, Format::OpenMetrics] {
            let (on, off) = (exposition(&on, format), exposition(&off, format));
            // The process figures differ from one read to the next: compare the rest.
            let requests = |text: &str| -> Vec<String> {
                text.lines()
                    .filter(|l| !l.contains("process_"))
                    .map(str::to_string)
                    .collect()
            };
            assert_eq!(requests(&on), requests(&off), "{format:?}");
        }
    }

    #[test]
    fn the_snapshot_has_the_native_histograms_beside_the_classic_ones() {
        let backend = PrometheusBackend::new();

        backend.record(&record(200, 30));
        backend.record(&record(200, 300));
        let snapshot = backend.snapshot();

        let native = snapshot.native.expect("native on by default");
        assert_eq!(
            (native.count, native.schema, native.buckets.len()),
            (2, 3, 2)
        );
        assert!(native.buckets[0].lower < 0.03 && 0.03 <= native.buckets[0].upper);
        let series = snapshot.series[0].native.as_ref().expect("per series too");
        assert_eq!(series.count, 2);
        assert_eq!(
            PrometheusBackend::with_native_histograms(NativeHistograms::Off)
                .snapshot()
                .native,
            None
        );
    }

    #[test]
    fn counts_by_the_rule_and_reads_its_own_exposition_back() {
        conformance::counts_by_the_rule_and_reads_back(&PrometheusBackend::new(), &|| {});
    }

    #[test]
    fn every_loss_total_is_a_counter_on_the_exposition() {
        let losses = Losses::with_totals(crate::telemetry::LossTotals {
            dropped_spans: 1,
            failed_spans: 2,
            failed_metric_exports: 3,
            dropped_log_lines: 4,
            dropped_log_records: 5,
            failed_log_records: 6,
        });
        let backend = PrometheusBackend::new().with_losses(Arc::new(losses));

        let text = exposition(&backend, Format::Text);

        for series in [
            "prom_metrics_app_telemetry_dropped_spans_total 1",
            "prom_metrics_app_telemetry_failed_spans_total 2",
            "prom_metrics_app_telemetry_failed_metric_exports_total 3",
            "prom_metrics_app_log_lines_dropped_total 4",
            "prom_metrics_app_telemetry_dropped_log_records_total 5",
            "prom_metrics_app_telemetry_failed_log_records_total 6",
            "# TYPE prom_metrics_app_log_lines_dropped_total counter",
        ] {
            assert!(text.lines().any(|l| l == series), "no {series:?} in {text}");
        }
    }

    #[test]
    fn exemplars_appear_only_in_openmetrics() {
        let backend = PrometheusBackend::new();
        backend.record(&RequestRecord {
            trace: Some(trace()),
            ..record(200, 3)
        });
        let openmetrics = exposition(&backend, Format::OpenMetrics);
        let text = exposition(&backend, Format::Text);

        assert!(
            openmetrics.contains(
                "trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\""
            ),
            "{openmetrics}"
        );
        assert!(!text.contains("trace_id"));
        assert!(openmetrics.ends_with("# EOF\n"));
    }

    #[test]
    fn duration_histogram_is_labelled_by_route_template() {
        let backend = PrometheusBackend::new();

        backend.record(&RequestRecord {
            route: "/do_task",
            method: "POST",
            ..record(200, 3)
        });
        let text = exposition(&backend, Format::Text);

        assert!(text.contains(
            "http_server_request_duration_seconds_count{http_request_method=\"POST\",http_route=\"/do_task\",http_response_status_code=\"200\",url_scheme=\"http\"} 1"
        ), "{text}");
    }

    #[test]
    fn client_calls_are_labelled_by_server_and_status_or_error() {
        let backend = PrometheusBackend::new();
        let call = |status, error_type| ClientRecord {
            method: "GET",
            server_address: Arc::from("b.example"),
            server_port: 5000,
            url_scheme: "http",
            status,
            error_type,
            duration: std::time::Duration::from_millis(3),
            trace: None,
        };

        backend.record_client(&call(Some(200), None));
        backend.record_client(&call(Some(502), Some(ErrorType::Status(502))));
        backend.record_client(&call(None, Some(ErrorType::Timeout)));
        let text = exposition(&backend, Format::Text);

        for series in [
            "http_client_request_duration_seconds_count{http_request_method=\"GET\",server_address=\"b.example\",server_port=\"5000\",url_scheme=\"http\",http_response_status_code=\"200\"} 1",
            "http_client_request_duration_seconds_count{http_request_method=\"GET\",server_address=\"b.example\",server_port=\"5000\",url_scheme=\"http\",http_response_status_code=\"502\",error_type=\"502\"} 1",
            "http_client_request_duration_seconds_count{http_request_method=\"GET\",server_address=\"b.example\",server_port=\"5000\",url_scheme=\"http\",error_type=\"timeout\"} 1",
            "http_client_request_duration_seconds_bucket{http_request_method=\"GET\",server_address=\"b.example\",server_port=\"5000\",url_scheme=\"http\",error_type=\"timeout\",le=\"0.005\"} 1",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        assert_eq!(backend.snapshot().requests, 0, "calls are not requests");
    }

    #[test]
    fn the_snapshot_lists_each_route_series_and_the_process() {
        let backend = PrometheusBackend::new();

        backend.record(&record(503, 3));
        backend.record(&record(200, 30));
        backend.record(&record(200, 300));
        let snapshot = backend.snapshot();

        let summary: Vec<_> = snapshot
            .series
            .iter()
            .map(|s| (s.route.as_str(), s.status, s.error_type.as_deref(), s.count))
            .collect();
        assert_eq!(summary, [("/", 200, None, 2), ("/", 503, Some("503"), 1)]);
        let ok = &snapshot.series[0];
        assert_eq!(
            (ok.method.as_str(), ok.url_scheme.as_str()),
            ("GET", "http")
        );
        assert_eq!(ok.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(ok.buckets[4].count, 1, "30 ms is under 75 ms");
        assert!((ok.sum - 0.33).abs() < 1e-9);
        let process = snapshot.process.expect("process figures on Linux");
        assert!(process.resident_memory_bytes > 0.0 && process.open_fds >= 3.0);
    }

    #[test]
    fn refused_requests_are_exported_apart_from_the_request_counters() {
        let refused = Arc::new(RefusedRequests::default());
        let backend = PrometheusBackend::new().with_refused(refused.clone());

        refused.add();
        refused.add();
        let text = exposition(&backend, Format::Text);

        assert!(
            text.contains("\nprom_metrics_app_http_requests_refused_total 2\n"),
            "{text}"
        );
        assert!(text.contains("\nhttp_requests_total 0\n"), "{text}");
    }

    #[test]
    fn a_failure_adds_error_type_and_a_success_has_none() {
        let backend = PrometheusBackend::new();

        backend.record(&record(503, 3));
        backend.record(&record(200, 3));
        let text = exposition(&backend, Format::Text);

        assert!(text.contains(
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/\",http_response_status_code=\"503\",url_scheme=\"http\",error_type=\"503\"} 1"
        ), "{text}");
        assert!(text.contains(
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/\",http_response_status_code=\"200\",url_scheme=\"http\"} 1"
        ), "{text}");
    }
}
