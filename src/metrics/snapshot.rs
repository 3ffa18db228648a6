//! A backend-neutral view of the original's families, of the per-route duration histogram and of
//! the process, for `/view_metrics`.

use std::time::SystemTime;

/// Current values of the original's counters and of `request_processing_seconds`, the series of
/// `http_server_request_duration_seconds`, and the process figures where the backend has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `http_requests_total`.
    pub requests: u64,
    /// `http_successful_request_total`.
    pub successful: u64,
    /// `http_error_4xx_total`.
    pub error_4xx: u64,
    /// `http_error_5xx_total`.
    pub error_5xx: u64,
    /// Cumulative buckets of `request_processing_seconds`, `+Inf` last.
    pub buckets: Vec<Bucket>,
    /// `request_processing_seconds_count`.
    pub count: u64,
    /// `request_processing_seconds_sum`, in seconds.
    pub sum: f64,
    /// `request_processing_seconds` as a native histogram; `None` where it is not one (native
    /// histograms off, or the OpenTelemetry backend).
    pub native: Option<NativeHistogram>,
    /// Every series of `http_server_request_duration_seconds`, sorted by route, method and status.
    pub series: Vec<Series>,
    /// The process figures; `None` where the backend does not export them (OpenTelemetry).
    pub process: Option<Process>,
    /// When the values were collected: the read itself with the Prometheus backend, the SDK's last
    /// collection (the one last exported) with OpenTelemetry; `None` before the first collection.
    pub collected_at: Option<SystemTime>,
}

/// One series of the semantic-convention histogram `http_server_request_duration_seconds`
/// (`http.server.request.duration` with the OpenTelemetry backend).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// `http_request_method`.
    pub method: String,
    /// `http_route`: a route template or `unmatched`.
    pub route: String,
    /// `http_response_status_code`.
    pub status: u16,
    /// `url_scheme`.
    pub url_scheme: String,
    /// `error_type`, absent on success.
    pub error_type: Option<String>,
    /// Cumulative buckets, `+Inf` last.
    pub buckets: Vec<Bucket>,
    /// Number of requests in the series.
    pub count: u64,
    /// Their total duration, in seconds.
    pub sum: f64,
    /// The same series as a native histogram, where it is one.
    pub native: Option<NativeHistogram>,
}

impl Series {
    /// The order series are listed in: route, method, status, error type.
    pub fn sort(series: &mut [Series]) {
        series.sort_by(|a, b| {
            (&a.route, &a.method, a.status, &a.error_type).cmp(&(
                &b.route,
                &b.method,
                b.status,
                &b.error_type,
            ))
        });
    }
}

/// The standard `process_*` figures, as the Prometheus backend exports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// `process_cpu_seconds_total`: user and system CPU time.
    pub cpu_seconds: f64,
    /// `process_resident_memory_bytes`.
    pub resident_memory_bytes: f64,
    /// `process_open_fds`.
    pub open_fds: f64,
    /// `process_start_time_seconds`: Unix time the process started.
    pub start_time_seconds: f64,
}

/// A Prometheus native histogram: sparse exponential buckets of one schema (see
/// `docs/telemetry.md`), as the protobuf format carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeHistogram {
    /// The resolution: each bucket's upper bound is `2^(2^-schema)` times its lower bound.
    pub schema: i8,
    /// Observations at or below this value are in the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// All observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The populated positive buckets, lowest first, each with its own (not cumulative) count.
    pub buckets: Vec<NativeBucket>,
}

/// One bucket of a native histogram: the observations in `(lower, upper]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeBucket {
    /// Lower bound, exclusive.
    pub lower: f64,
    /// Upper bound, inclusive.
    pub upper: f64,
    /// Observations in the bucket.
    pub count: u64,
}

/// One cumulative histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Upper bound in seconds (`f64::INFINITY` for `+Inf`).
    pub le: f64,
    /// Observations less than or equal to `le`.
    pub count: u64,
}

impl Bucket {
    /// The bound as Prometheus writes it: `0.005`, `1`, `+Inf`.
    pub fn label(&self) -> String {
        if self.le.is_infinite() {
            "+Inf".to_string()
        } else {
            self.le.to_string()
        }
    }
}

impl Snapshot {
    /// Builds cumulative buckets from per-bucket counts over `bounds` (the last count is `+Inf`'s own).
    pub fn cumulative(bounds: &[f64], per_bucket: impl IntoIterator<Item = u64>) -> Vec<Bucket> {
        let mut total = 0;
        bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(per_bucket)
            .map(|(le, count)| {
                total += count;
                Bucket { le, count: total }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_add_up_and_end_with_inf() {
        let buckets = Snapshot::cumulative(&[0.1, 1.0], [2, 0, 3]);

        assert_eq!(
            buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![2, 2, 5]
        );
        assert_eq!(buckets[2].label(), "+Inf");
        assert_eq!(buckets[0].label(), "0.1");
    }
}
