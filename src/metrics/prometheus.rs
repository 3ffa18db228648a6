//! The Prometheus backend: a prometheus-client registry, pulled from `/metrics`.
//!
//! Histogram observations made inside a sampled span carry its `trace_id` and `span_id` as an
//! exemplar (OpenMetrics only), so a dashboard can jump from a latency bucket to a trace.

use std::{
    fmt,
    sync::{Arc, OnceLock, atomic::AtomicU64},
    time::SystemTime,
};

use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
        LabelSetEncoder, LabelValueEncoder,
    },
    metrics::{
        counter::{ConstCounter, Counter},
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::Gauge,
    },
    registry::{Registry, Unit},
};

use crate::{chaos::ChaosSettings, telemetry::Losses};

mod parse;

use super::{
    BUCKETS, ClientRecord, Format, MetricsBackend, Outcome, RefusedRequests, RequestRecord,
    RouteMetrics, Snapshot, TraceRef, process,
};
use crate::conventions::{ErrorType, METHODS, URL_SCHEME};

/// Labels of `http_server_request_duration_seconds`, the attributes OpenTelemetry's HTTP server
/// metric conventions require. Every value is bounded: a method from a fixed set, a route template
/// from the route table, a status code, and an error type from a fixed set.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct HttpLabels {
    http_request_method: &'static str,
    http_route: &'static str,
    http_response_status_code: u16,
    error_type: Option<ErrorType>,
}

impl EncodeLabelSet for HttpLabels {
    // By hand, so that `error_type` is left out when there is none: the derive would write
    // `error_type=""` on every successful series.
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("http_request_method", self.http_request_method).encode(encoder.encode_label())?;
        ("http_route", self.http_route).encode(encoder.encode_label())?;
        ("http_response_status_code", self.http_response_status_code)
            .encode(encoder.encode_label())?;
        ("url_scheme", URL_SCHEME).encode(encoder.encode_label())?;
        if let Some(error_type) = self.error_type {
            ("error_type", Displayed(error_type)).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Labels of `http_client_request_duration_seconds`, the attributes of OpenTelemetry's HTTP client
/// metric conventions. Bounded: the server address and port come from `DOWNSTREAM_URL`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct ClientLabels {
    http_request_method: &'static str,
    server_address: Arc<str>,
    server_port: u16,
    url_scheme: &'static str,
    http_response_status_code: Option<u16>,
    error_type: Option<ErrorType>,
}

impl EncodeLabelSet for ClientLabels {
    // By hand, so that a call without an answer has no status label, and a success no error_type.
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("http_request_method", self.http_request_method).encode(encoder.encode_label())?;
        ("server_address", &*self.server_address).encode(encoder.encode_label())?;
        ("server_port", self.server_port).encode(encoder.encode_label())?;
        ("url_scheme", self.url_scheme).encode(encoder.encode_label())?;
        if let Some(status) = self.http_response_status_code {
            ("http_response_status_code", status).encode(encoder.encode_label())?;
        }
        if let Some(error_type) = self.error_type {
            ("error_type", Displayed(error_type)).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The exemplar label set; written as hex straight from the ids, without allocating.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: Displayed<opentelemetry::trace::TraceId>,
    span_id: Displayed<opentelemetry::trace::SpanId>,
}

/// A label value written through `Display`, without allocating.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Displayed<T>(T);

impl<T: fmt::Display> EncodeLabelValue for Displayed<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_fmt(encoder, format_args!("{}", self.0))
    }
}

impl From<TraceRef> for TraceExemplar {
    fn from(trace: TraceRef) -> Self {
        Self {
            trace_id: Displayed(trace.trace_id),
            span_id: Displayed(trace.span_id),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
}

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
    processing: Histogram,
    duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    client_duration: Family<ClientLabels, Histogram, fn() -> Histogram>,
    /// The chaos settings in force, in the order of [`CHAOS_GAUGES`].
    chaos: [Gauge<f64, AtomicU64>; 5],
}

/// Names and help of the chaos settings' gauges.
const CHAOS_GAUGES: [(&str, &str); 5] = [
    (
        "prom_metrics_app_chaos_error_ratio",
        "Share of application requests answered with an injected failure (chaos settings)",
    ),
    (
        "prom_metrics_app_chaos_error_status_code",
        "Status of injected failures (chaos settings)",
    ),
    (
        "prom_metrics_app_chaos_latency_seconds",
        "Latency added to delayed application requests (chaos settings)",
    ),
    (
        "prom_metrics_app_chaos_jitter_seconds",
        "Largest random latency added on top of the fixed one (chaos settings)",
    ),
    (
        "prom_metrics_app_chaos_latency_ratio",
        "Share of application requests that are delayed (chaos settings)",
    ),
];

impl Default for PrometheusBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusBackend {
    /// A fresh registry with the original's families, the semantic-convention histogram, process
    /// metrics and build information.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Counter::default();
        let successful = Counter::default();
        let error_4xx = Counter::default();
        let error_5xx = Counter::default();
        let processing = new_histogram();
        let duration =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(new_histogram);

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
        let chaos: [Gauge<f64, AtomicU64>; 5] = Default::default();
        for ((name, help), gauge) in CHAOS_GAUGES.iter().zip(&chaos) {
            registry.register(*name, *help, gauge.clone());
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
        for (name, help, value) in [
            (
                "prom_metrics_app_telemetry_dropped_spans",
                "Spans dropped because the export queue was full",
                totals.dropped_spans,
            ),
            (
                "prom_metrics_app_telemetry_failed_spans",
                "Spans in exports that failed",
                totals.failed_spans,
            ),
            (
                "prom_metrics_app_telemetry_failed_metric_exports",
                "Metric exports that failed",
                totals.failed_metric_exports,
            ),
            (
                "prom_metrics_app_telemetry_dropped_log_records",
                "Log records dropped because the export queue was full",
                totals.dropped_log_records,
            ),
            (
                "prom_metrics_app_telemetry_failed_log_records",
                "Log records in exports that failed",
                totals.failed_log_records,
            ),
            (
                "prom_metrics_app_log_lines_dropped",
                "Log lines dropped because the reader of stdout or the log file was too slow",
                totals.dropped_log_lines,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
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
        self.processing
            .observe(seconds, request.trace.map(TraceExemplar::from), at);
        labelled(seconds, at);
    }

    /// The series of `http_server_request_duration_seconds` that `request` belongs to.
    fn series(&self, request: &RequestRecord) -> Histogram {
        let labels = HttpLabels {
            http_request_method: request.method,
            http_route: request.route,
            http_response_status_code: request.status,
            error_type: request.error_type,
        };
        self.duration.get_or_create(&labels).clone()
    }
}

/// The recorder of one counted route: the handle of each method's series of successful (200)
/// answers, by far the most frequent, found once and kept (a handle shares its series with the
/// family), so that most requests skip the family's hashing and lock.
struct PrometheusRoute {
    backend: Arc<PrometheusBackend>,
    ok: [OnceLock<Histogram>; METHODS.len()],
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
        self.backend.count(request, |seconds, at| {
            let exemplar = request.trace.map(TraceExemplar::from);
            match cached {
                Some(series) => series.observe(seconds, exemplar, at),
                None => self.backend.series(request).observe(seconds, exemplar, at),
            }
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
            let exemplar = request.trace.map(TraceExemplar::from);
            self.series(request).observe(seconds, exemplar, at);
        });
    }

    fn set_chaos(&self, settings: &ChaosSettings) {
        let values = [
            settings.error_rate,
            f64::from(settings.error_status),
            settings.latency_seconds,
            settings.jitter_seconds,
            settings.latency_rate,
        ];
        for (gauge, value) in self.chaos.iter().zip(values) {
            gauge.set(value);
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
        // Reading the backend's own exposition shows exactly what a scrape would see.
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return Snapshot::default();
        }
        Snapshot {
            collected_at: Some(now),
            ..parse::snapshot(&text)
        }
    }

    fn encode(&self, format: Format) -> Option<Result<String, fmt::Error>> {
        let mut text = String::with_capacity(8 * 1024);
        let result = match format {
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut text, &self.registry)
            }
        };
        Some(result.map(|()| text))
    }

    fn name(&self) -> &'static str {
        "prometheus"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::metrics::conformance::{self, record};

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

        let text = backend.encode(Format::Text).unwrap().unwrap();

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
        let trace = TraceRef {
            trace_id: opentelemetry::trace::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c")
                .unwrap(),
            span_id: opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
        };

        backend.record(&RequestRecord {
            trace: Some(trace),
            ..record(200, 3)
        });
        let openmetrics = backend.encode(Format::OpenMetrics).unwrap().unwrap();
        let text = backend.encode(Format::Text).unwrap().unwrap();

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
        let text = backend.encode(Format::Text).unwrap().unwrap();

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
        let text = backend.encode(Format::Text).unwrap().unwrap();

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
        let text = backend.encode(Format::Text).unwrap().unwrap();

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
        let text = backend.encode(Format::Text).unwrap().unwrap();

        assert!(text.contains(
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/\",http_response_status_code=\"503\",url_scheme=\"http\",error_type=\"503\"} 1"
        ), "{text}");
        assert!(text.contains(
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/\",http_response_status_code=\"200\",url_scheme=\"http\"} 1"
        ), "{text}");
    }
}
