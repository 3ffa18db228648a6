//! The JSON snapshot of `/view_metrics`; its shape is `docs/view_metrics.schema.json`.

use std::time::SystemTime;

use serde::Serialize;

use super::about::About;
use crate::chaos::ChaosSettings;
use crate::dates::{rfc3339_millis_of_seconds, unix_seconds};
use crate::metrics::{
    Bucket, NativeHistogram, Snapshot, histogram_quantile, native_histogram_quantile,
};

/// The version of the JSON snapshot's shape (`docs/view_metrics.schema.json`); raised on any
/// change that could break a reader.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON snapshot; its shape is `docs/view_metrics.schema.json`.
#[derive(Debug, Serialize)]
pub struct SnapshotJson<'a> {
    schema_version: u32,
    timestamp: String,
    collected_at: Option<String>,
    backend: &'a str,
    counters: Counters,
    request_processing_seconds: HistogramJson,
    quantiles: Quantiles,
    http_server_request_duration_seconds: Vec<SeriesJson<'a>>,
    process: Option<ProcessJson>,
    config: &'a About,
    /// The chaos settings in force, as `/api/chaos` shows them; `null` where none were given (an
    /// addition to schema version 1: readers that do not know it ignore it).
    chaos: Option<ChaosSettings>,
}

#[derive(Debug, Serialize)]
struct Counters {
    http_requests_total: u64,
    http_successful_request_total: u64,
    http_error_4xx_total: u64,
    http_error_5xx_total: u64,
}

#[derive(Debug, Serialize)]
struct BucketJson {
    le: String,
    count: u64,
}

#[derive(Debug, Serialize)]
struct HistogramJson {
    buckets: Vec<BucketJson>,
    count: u64,
    sum: f64,
    /// The same histogram as a native one; `null` where it is none (an addition to schema
    /// version 1: readers that do not know it ignore it).
    native: Option<NativeJson>,
}

/// A native histogram: its schema, zero bucket, populated buckets and quantiles.
#[derive(Debug, Serialize)]
struct NativeJson {
    schema: i8,
    zero_threshold: f64,
    zero_count: u64,
    count: u64,
    sum: f64,
    buckets: Vec<NativeBucketJson>,
    quantiles: Quantiles,
}

#[derive(Debug, Serialize)]
struct NativeBucketJson {
    lower: f64,
    upper: f64,
    count: u64,
}

impl NativeJson {
    fn of(native: &NativeHistogram) -> Self {
        Self {
            schema: native.schema,
            zero_threshold: native.zero_threshold,
            zero_count: native.zero_count,
            count: native.count,
            sum: native.sum,
            buckets: native
                .buckets
                .iter()
                .map(|b| NativeBucketJson {
                    lower: b.lower,
                    upper: b.upper,
                    count: b.count,
                })
                .collect(),
            quantiles: Quantiles::native(native),
        }
    }
}

/// Estimated as PromQL's `histogram_quantile` would; `null` without observations.
#[derive(Debug, Serialize)]
struct Quantiles {
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

impl Quantiles {
    fn of(buckets: &[Bucket]) -> Self {
        Self {
            p50: histogram_quantile(0.5, buckets),
            p90: histogram_quantile(0.9, buckets),
            p99: histogram_quantile(0.99, buckets),
        }
    }

    fn native(native: &NativeHistogram) -> Self {
        Self {
            p50: native_histogram_quantile(0.5, native),
            p90: native_histogram_quantile(0.9, native),
            p99: native_histogram_quantile(0.99, native),
        }
    }
}

#[derive(Debug, Serialize)]
struct SeriesJson<'a> {
    http_route: &'a str,
    http_request_method: &'a str,
    http_response_status_code: u16,
    url_scheme: &'a str,
    error_type: Option<&'a str>,
    count: u64,
    sum: f64,
    buckets: Vec<BucketJson>,
    quantiles: Quantiles,
    native: Option<NativeJson>,
}

#[derive(Debug, Serialize)]
struct ProcessJson {
    cpu_seconds_total: f64,
    resident_memory_bytes: f64,
    open_fds: f64,
    start_time_seconds: f64,
}

fn buckets_json(buckets: &[Bucket]) -> Vec<BucketJson> {
    buckets
        .iter()
        .map(|b| BucketJson {
            le: b.label(),
            count: b.count,
        })
        .collect()
}

impl<'a> SnapshotJson<'a> {
    /// The snapshot `s` taken at `now`, with the configuration `about`.
    pub fn new(s: &'a Snapshot, about: &'a About, now: SystemTime) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            timestamp: rfc3339_millis_of_seconds(unix_seconds(now)),
            collected_at: s
                .collected_at
                .map(|at| rfc3339_millis_of_seconds(unix_seconds(at))),
            backend: &about.backend,
            counters: Counters {
                http_requests_total: s.requests,
                http_successful_request_total: s.successful,
                http_error_4xx_total: s.error_4xx,
                http_error_5xx_total: s.error_5xx,
            },
            request_processing_seconds: HistogramJson {
                buckets: buckets_json(&s.buckets),
                count: s.count,
                sum: s.sum,
                native: s.native.as_ref().map(NativeJson::of),
            },
            quantiles: Quantiles::of(&s.buckets),
            http_server_request_duration_seconds: s
                .series
                .iter()
                .map(|series| SeriesJson {
                    http_route: &series.route,
                    http_request_method: &series.method,
                    http_response_status_code: series.status,
                    url_scheme: &series.url_scheme,
                    error_type: series.error_type.as_deref(),
                    count: series.count,
                    sum: series.sum,
                    buckets: buckets_json(&series.buckets),
                    quantiles: Quantiles::of(&series.buckets),
                    native: series.native.as_ref().map(NativeJson::of),
                })
                .collect(),
            process: s.process.map(|p| ProcessJson {
                cpu_seconds_total: p.cpu_seconds,
                resident_memory_bytes: p.resident_memory_bytes,
                open_fds: p.open_fds,
                start_time_seconds: p.start_time_seconds,
            }),
            config: about,
            chaos: None,
        }
    }

    /// The same, with the chaos settings in force.
    pub fn with_chaos(self, chaos: ChaosSettings) -> Self {
        Self {
            chaos: Some(chaos),
            ..self
        }
    }
}
