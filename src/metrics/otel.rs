//! The OpenTelemetry backend: the original's instruments and `http.server.request.duration`,
//! aggregated by the SDK and pushed by its periodic reader; `/view_metrics` reads the SDK's own
//! aggregation through an in-process reader, not a copy kept beside it.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter},
};
use opentelemetry_sdk::metrics::{
    data::{AggregatedMetrics, MetricData, ResourceMetrics},
    reader::MetricReader,
};

use super::{BUCKETS, Format, MetricsBackend, Outcome, RequestRecord, Snapshot, URL_SCHEME};
use crate::telemetry::SharedReader;

/// OpenTelemetry backend; its instruments live in the meter provider owned by `Telemetry`.
pub struct OtelBackend {
    requests: Counter<u64>,
    successful: Counter<u64>,
    error_4xx: Counter<u64>,
    error_5xx: Counter<u64>,
    processing: Histogram<f64>,
    duration: Histogram<f64>,
    reader: SharedReader,
}

fn counter(meter: &Meter, name: &'static str, description: &'static str) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_unit("1")
        .with_description(description)
        .build()
}

impl OtelBackend {
    /// Creates the instruments on `meter`; `reader` must be registered with the same provider.
    pub fn new(meter: &Meter, reader: SharedReader) -> Self {
        let histogram = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(BUCKETS.to_vec())
                .build()
        };
        let backend = Self {
            requests: counter(
                meter,
                "http_requests",
                "Requests counted by the original's rule: home pages, /do_task and errors",
            ),
            successful: counter(
                meter,
                "http_successful_request",
                "Counted requests answered with a status below 400",
            ),
            error_4xx: counter(
                meter,
                "http_error_4xx",
                "Counted requests answered with a 4xx status, unknown paths included",
            ),
            error_5xx: counter(
                meter,
                "http_error_5xx",
                "Counted requests answered with a 5xx status, handler failures included",
            ),
            processing: histogram(
                "request_processing_seconds",
                "Time spent serving a counted request",
            ),
            duration: histogram(
                "http.server.request.duration",
                "Duration of HTTP server requests",
            ),
            reader,
        };
        // Each counter exists from the start, at zero, as on /metrics with the Prometheus backend:
        // a dashboard or an alert on http_error_5xx must not wait for the first 5xx.
        for counter in [
            &backend.requests,
            &backend.successful,
            &backend.error_4xx,
            &backend.error_5xx,
        ] {
            counter.add(0, &[]);
        }
        backend
    }
}

impl MetricsBackend for OtelBackend {
    fn record(&self, request: &RequestRecord) {
        self.requests.add(1, &[]);
        match request.outcome() {
            Outcome::Success => self.successful.add(1, &[]),
            Outcome::ClientError => self.error_4xx.add(1, &[]),
            Outcome::ServerError => self.error_5xx.add(1, &[]),
        }
        let seconds = request.duration.as_secs_f64();
        self.processing.record(seconds, &[]);
        // Static strings and an integer: building these attributes allocates nothing, except
        // error.type, only on a failure.
        let common = [
            KeyValue::new("http.request.method", request.method),
            KeyValue::new("http.route", request.route),
            KeyValue::new("http.response.status_code", i64::from(request.status)),
            KeyValue::new("url.scheme", URL_SCHEME),
        ];
        match request.error_type {
            None => self.duration.record(seconds, &common),
            Some(error_type) => {
                let [a, b, c, d] = common;
                let error = KeyValue::new("error.type", error_type.to_string());
                self.duration.record(seconds, &[a, b, c, d, error]);
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut collected = ResourceMetrics::default();
        if let Err(err) = self.reader.collect(&mut collected) {
            tracing::warn!(%err, "reading the SDK's metrics failed");
            return Snapshot::default();
        }
        snapshot_of(&collected)
    }

    fn encode(&self, _format: Format) -> Option<Result<String, std::fmt::Error>> {
        None
    }

    fn name(&self) -> &'static str {
        "otel"
    }
}

/// The original's families from one collection of the SDK.
fn snapshot_of(collected: &ResourceMetrics) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for metric in collected.scope_metrics().flat_map(|scope| scope.metrics()) {
        match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                let value = sum.data_points().map(|p| p.value()).sum();
                match metric.name() {
                    "http_requests" => snapshot.requests = value,
                    "http_successful_request" => snapshot.successful = value,
                    "http_error_4xx" => snapshot.error_4xx = value,
                    "http_error_5xx" => snapshot.error_5xx = value,
                    _ => {}
                }
            }
            AggregatedMetrics::F64(MetricData::Histogram(histogram))
                if metric.name() == "request_processing_seconds" =>
            {
                if let Some(point) = histogram.data_points().next() {
                    snapshot.buckets = Snapshot::cumulative(
                        &point.bounds().collect::<Vec<_>>(),
                        point.bucket_counts(),
                    );
                    snapshot.count = point.count();
                    snapshot.sum = point.sum();
                }
            }
            _ => {}
        }
    }
    if snapshot.buckets.is_empty() {
        snapshot.buckets =
            Snapshot::cumulative(&BUCKETS, std::iter::repeat_n(0, BUCKETS.len() + 1));
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

    use super::*;

    #[test]
    fn counts_by_the_rule_and_reads_what_the_sdk_aggregated() {
        let reader = SharedReader::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();

        crate::metrics::conformance::counts_by_the_rule_and_reads_back(&OtelBackend::new(
            &provider.meter("test"),
            reader,
        ));
    }
}
