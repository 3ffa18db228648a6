//! `/view_metrics`: the backend's current values as an HTML page (an inline SVG bar chart and
//! tables, refreshed in place by `/static/view_metrics.js`) or as a versioned JSON snapshot
//! (`Accept: application/json` or `?format=json`). Neither form counts anything.

use std::time::{SystemTime, UNIX_EPOCH};

use askama::Template;
use axum::{
    Json,
    extract::{RawQuery, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    about::About,
    error::AppError,
    nav::{Nav, Page},
    state::AppState,
};
use crate::chaos::ChaosSettings;
use crate::metrics::{
    Bucket, NativeHistogram, Process, Series, Snapshot, histogram_quantile,
    native_histogram_quantile,
};

/// The version of the JSON snapshot's shape (`docs/view_metrics.schema.json`); raised on any
/// change that could break a reader.
pub const SCHEMA_VERSION: u32 = 1;

/// Height of the chart's plot area and the y of its baseline, in pixels; the script uses the
/// same numbers, read from the `<svg>` element's data attributes.
const PLOT_HEIGHT: f64 = 160.0;
const BASELINE: f64 = 180.0;
/// Each bucket gets an equal share of the chart's width, in percent, so that the chart fills
/// whatever width it has with its text at its own size; a bar fills this part of its share.
const BAR_FILL: f64 = 0.7;

/// Shown instead of a time before the SDK's first collection; the script writes the same.
const NOT_COLLECTED: &str = "none yet";

/// `/view_metrics`: JSON when asked for (`?format=json`, or an `Accept` preferring
/// `application/json`), the page otherwise.
pub async fn get_view_metrics(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let json = wants_json(query.as_deref(), accept)?;
    let snapshot = state.backend.snapshot();
    let chaos = state.chaos.settings();
    let now = SystemTime::now();
    let headers = [
        (header::VARY, "Accept"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    if json {
        let body = SnapshotJson::new(&snapshot, &state.about, now).with_chaos(chaos);
        return Ok((headers, Json(body)).into_response());
    }
    let mut page = MetricsPage::new(&snapshot, &state.about, now);
    page.faults = fault_rows(&chaos);
    let html = page
        .render()
        .map_err(|err| AppError::Internal(format!("rendering /view_metrics: {err}")))?;
    Ok((headers, axum::response::Html(html)).into_response())
}

/// Whether to answer JSON: `format=json` or `format=html` decide; without it, JSON when
/// `application/json` has a positive quality at least that of `text/html` (the earlier wins a
/// tie). A browser's `Accept` never names `application/json`, so it gets the page.
fn wants_json(query: Option<&str>, accept: Option<&str>) -> Result<bool, AppError> {
    let format = query
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find_map(|(key, value)| (key == "format").then_some(value));
    match format.as_deref() {
        Some("json") => return Ok(true),
        Some("html") => return Ok(false),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "format must be json or html, got '{}'",
                other.chars().take(32).collect::<String>()
            )));
        }
        None => {}
    }
    let mut json = None;
    let mut html = None;
    for (index, (media, quality)) in crate::accept::media_ranges(accept.unwrap_or("")).enumerate() {
        match media.as_str() {
            "application/json" => json = json.or(Some((quality, index))),
            "text/html" => html = html.or(Some((quality, index))),
            _ => {}
        }
    }
    Ok(match (json, html) {
        (Some((q, _)), None) => q > 0.0,
        (Some((jq, ji)), Some((hq, hi))) => jq > 0.0 && (jq > hq || (jq == hq && ji < hi)),
        (None, _) => false,
    })
}

/// RFC 3339 in UTC with milliseconds, as JavaScript's `toISOString` writes it.
fn iso(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round().max(0.0) as u64;
    crate::dates::rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

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
            timestamp: iso(unix_seconds(now)),
            collected_at: s.collected_at.map(|at| iso(unix_seconds(at))),
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

/// A quantile as the page writes it; the script formats the same way (`toFixed(4)`).
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

/// One bar of the chart: a bucket's own count, not the cumulative one. `x`, `width` and
/// `label_x` are percentages of the chart's width, `y` and `height` pixels.
struct Bar {
    le: String,
    count: u64,
    x: String,
    width: String,
    y: String,
    height: String,
    label_x: String,
}

struct BucketRow {
    le: String,
    count: u64,
    cumulative: u64,
}

struct SeriesRow {
    /// `s4xx` or `s5xx` for an error status, which the page colours.
    class: &'static str,
    route: String,
    method: String,
    status: u16,
    count: u64,
    p50: String,
    p99: String,
    /// p99 from the series' native histogram, `n/a` without one.
    native_p99: String,
}

/// One quantile from the classic buckets and from the native ones, side by side.
struct QuantileRow {
    name: &'static str,
    classic: String,
    native: String,
}

/// One populated bucket of the native histogram, its bounds as the page writes them.
struct NativeRow {
    lower: String,
    upper: String,
    count: u64,
}

/// The native histogram of `request_processing_seconds`, as the page shows it.
struct NativeView {
    schema: i8,
    /// How much larger each bucket's upper bound is than its lower one: `2^(2^-schema)`.
    growth: String,
    zero_threshold: String,
    zero_count: u64,
    buckets: Vec<NativeRow>,
}

impl NativeView {
    fn of(native: &NativeHistogram) -> Self {
        Self {
            schema: native.schema,
            growth: format!("{:.4}", (-f64::from(native.schema)).exp2().exp2()),
            zero_threshold: format!("{:e}", native.zero_threshold),
            zero_count: native.zero_count,
            buckets: native
                .buckets
                .iter()
                .map(|b| NativeRow {
                    lower: bound(b.lower),
                    upper: bound(b.upper),
                    count: b.count,
                })
                .collect(),
        }
    }
}

/// A native bucket bound, to 6 significant digits (the script writes the same).
fn bound(value: f64) -> String {
    format!("{}", format!("{value:.5e}").parse::<f64>().unwrap_or(value))
}

struct ProcessRow {
    cpu_seconds: String,
    resident_mib: String,
    open_fds: u64,
    start_time: String,
}

#[derive(Template)]
#[template(path = "view_metrics.html")]
struct MetricsPage<'a> {
    nav: Nav,
    about: &'a About,
    snapshot: &'a Snapshot,
    /// Whether the values are the SDK's last collection (the otel backend) rather than a read.
    pushed: bool,
    /// When the values were collected, if they were.
    collected_at: Option<String>,
    as_of: String,
    /// When the values were read or collected: the rate's first sample, with their count.
    read_at: String,
    /// 4xx and 5xx over all requests, as a percentage; `n/a` before the first request.
    error_ratio: String,
    /// `bad` with any 5xx, `warn` with 4xx only, empty without errors.
    error_state: &'static str,
    p50: String,
    p90: String,
    p99: String,
    bars: Vec<Bar>,
    buckets: Vec<BucketRow>,
    /// p50, p90 and p99 from the classic and the native buckets.
    quantiles: Vec<QuantileRow>,
    native: Option<NativeView>,
    /// Why there is no native histogram, when there is none.
    no_native: &'static str,
    series: Vec<SeriesRow>,
    process: Option<ProcessRow>,
    /// The faults in force, as the chaos gauges export them.
    faults: Vec<FaultRow>,
    plot_height: f64,
    baseline: f64,
}

/// One fault of the pod on the page: its cell's id (the script updates it), its name, its value
/// as text, and `bad` when the fault is on.
struct FaultRow {
    id: &'static str,
    name: &'static str,
    value: String,
    state: &'static str,
}

/// The faults in force, worded as the script words them.
fn fault_rows(chaos: &ChaosSettings) -> Vec<FaultRow> {
    let row = |id, name, value: String, on: bool| FaultRow {
        id,
        name,
        value,
        state: if on { "bad" } else { "" },
    };
    vec![
        row(
            "fault-ready",
            "Readiness (/readyz)",
            if chaos.ready {
                "ready"
            } else {
                "not ready (503)"
            }
            .to_string(),
            !chaos.ready,
        ),
        row(
            "fault-healthy",
            "Liveness (/healthz)",
            if chaos.healthy {
                "healthy"
            } else {
                "unhealthy (503)"
            }
            .to_string(),
            !chaos.healthy,
        ),
        row(
            "fault-cpu",
            "CPU cores kept busy",
            chaos.cpu_stress_cores.to_string(),
            chaos.cpu_stress_cores > 0.0,
        ),
        row(
            "fault-memory",
            "Memory held (bytes)",
            chaos.memory_stress_bytes.to_string(),
            chaos.memory_stress_bytes > 0,
        ),
        row(
            "fault-panic",
            "POST /panic",
            if chaos.panic_allowed {
                "ends the process"
            } else {
                "refused (403)"
            }
            .to_string(),
            chaos.panic_allowed,
        ),
        row(
            "fault-errors",
            "Error rate injected",
            chaos.error_rate.to_string(),
            chaos.error_rate > 0.0,
        ),
        row(
            "fault-latency",
            "Latency added (s)",
            chaos.latency_seconds.to_string(),
            chaos.latency_seconds > 0.0,
        ),
    ]
}

impl<'a> MetricsPage<'a> {
    fn new(snapshot: &'a Snapshot, about: &'a About, now: SystemTime) -> Self {
        let own: Vec<u64> = snapshot
            .buckets
            .iter()
            .scan(0, |below, b| {
                let own = b.count.saturating_sub(*below);
                *below = b.count;
                Some(own)
            })
            .collect();
        let highest = own.iter().copied().max().unwrap_or(0);
        let share = 100.0 / snapshot.buckets.len().max(1) as f64;
        let bars = snapshot
            .buckets
            .iter()
            .zip(&own)
            .enumerate()
            .map(|(i, (bucket, &count))| {
                let height = bar_height(count, highest);
                let left = i as f64 * share;
                Bar {
                    le: bucket.label(),
                    count,
                    x: format!("{:.3}%", left + share * (1.0 - BAR_FILL) / 2.0),
                    width: format!("{:.3}%", share * BAR_FILL),
                    y: format!("{:.2}", BASELINE - height),
                    height: format!("{height:.2}"),
                    label_x: format!("{:.3}%", left + share / 2.0),
                }
            })
            .collect::<Vec<_>>();
        let collected_at = snapshot.collected_at.map(|at| iso(unix_seconds(at)));
        let (ratio, error_state) = errors(snapshot);
        Self {
            nav: Nav::new(Some(Page::ViewMetrics), about),
            about,
            read_at: iso(unix_seconds(snapshot.collected_at.unwrap_or(now))),
            error_ratio: ratio.map_or_else(|| "n/a".to_string(), |r| format!("{:.1}%", r * 100.0)),
            error_state,
            snapshot,
            pushed: !about.scraped(),
            as_of: collected_at
                .clone()
                .unwrap_or_else(|| NOT_COLLECTED.to_string()),
            collected_at,
            p50: seconds(histogram_quantile(0.5, &snapshot.buckets)),
            p90: seconds(histogram_quantile(0.9, &snapshot.buckets)),
            p99: seconds(histogram_quantile(0.99, &snapshot.buckets)),
            bars,
            buckets: snapshot
                .buckets
                .iter()
                .zip(&own)
                .map(|(b, &count)| BucketRow {
                    le: b.label(),
                    count,
                    cumulative: b.count,
                })
                .collect(),
            quantiles: [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
                .into_iter()
                .map(|(name, q)| QuantileRow {
                    name,
                    classic: seconds(histogram_quantile(q, &snapshot.buckets)),
                    native: seconds(
                        snapshot
                            .native
                            .as_ref()
                            .and_then(|n| native_histogram_quantile(q, n)),
                    ),
                })
                .collect(),
            native: snapshot.native.as_ref().map(NativeView::of),
            no_native: match (snapshot.native.is_some(), about.scraped()) {
                (true, _) => "",
                (false, true) => "off",
                (false, false) => "otel",
            },
            series: snapshot.series.iter().map(series_row).collect(),
            process: snapshot.process.as_ref().map(process_row),
            faults: Vec::new(),
            plot_height: PLOT_HEIGHT,
            baseline: BASELINE,
        }
    }
}

/// A bar's height: proportional to the highest bucket, which fills the plot.
fn bar_height(count: u64, highest: u64) -> f64 {
    match highest {
        0 => 0.0,
        _ => count as f64 / highest as f64 * PLOT_HEIGHT,
    }
}

/// The share of requests that failed, `None` before the first, and how the page marks it: `bad`
/// with any 5xx, `warn` with 4xx only. The script works them out the same way.
fn errors(snapshot: &Snapshot) -> (Option<f64>, &'static str) {
    let failed = snapshot.error_4xx + snapshot.error_5xx;
    let ratio = (snapshot.requests > 0).then(|| failed as f64 / snapshot.requests as f64);
    let state = match (snapshot.error_4xx, snapshot.error_5xx) {
        (_, 1..) => "bad",
        (1.., 0) => "warn",
        (0, 0) => "",
    };
    (ratio, state)
}

fn series_row(series: &Series) -> SeriesRow {
    SeriesRow {
        class: match series.status {
            400..=499 => "s4xx",
            500..=599 => "s5xx",
            _ => "",
        },
        route: series.route.clone(),
        method: series.method.clone(),
        status: series.status,
        count: series.count,
        p50: seconds(histogram_quantile(0.5, &series.buckets)),
        p99: seconds(histogram_quantile(0.99, &series.buckets)),
        native_p99: seconds(
            series
                .native
                .as_ref()
                .and_then(|n| native_histogram_quantile(0.99, n)),
        ),
    }
}

fn process_row(process: &Process) -> ProcessRow {
    ProcessRow {
        cpu_seconds: format!("{:.2}", process.cpu_seconds),
        resident_mib: format!("{:.1}", process.resident_memory_bytes / (1024.0 * 1024.0)),
        open_fds: process.open_fds as u64,
        start_time: iso(process.start_time_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_parameter_decides_and_rejects_other_values() {
        assert!(wants_json(Some("format=json"), Some("text/html")).unwrap());
        assert!(!wants_json(Some("format=html"), Some("application/json")).unwrap());
        let err = wants_json(Some("format=xml"), None).unwrap_err();
        assert!(err.to_string().contains("json or html"));
    }

    #[test]
    fn accept_picks_json_only_when_preferred() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

        assert!(wants_json(None, Some("application/json")).unwrap());
        assert!(wants_json(None, Some("application/json, text/html;q=0.5")).unwrap());
        assert!(wants_json(None, Some("application/json, text/html")).unwrap());
        assert!(!wants_json(None, Some("text/html, application/json")).unwrap());
        assert!(!wants_json(None, Some("application/json;q=0")).unwrap());
        assert!(!wants_json(None, Some(browser)).unwrap());
        assert!(!wants_json(None, Some("*/*")).unwrap());
        assert!(!wants_json(None, None).unwrap());
    }

    #[test]
    fn times_are_written_as_javascript_writes_them() {
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_764_093_180.25), "2025-11-25T17:53:00.250Z");
    }

    #[test]
    fn the_page_says_when_the_values_were_collected_and_if_not_yet() {
        let mut config = crate::config::Config::defaults();
        config.metrics_backend = crate::config::Backend::Otel;
        let about = About::of(&config);
        let collected = Snapshot {
            collected_at: Some(UNIX_EPOCH + std::time::Duration::from_millis(1_764_093_180_250)),
            ..Snapshot::default()
        };

        let before = MetricsPage::new(&Snapshot::default(), &about, UNIX_EPOCH)
            .render()
            .unwrap();
        let after = MetricsPage::new(&collected, &about, UNIX_EPOCH)
            .render()
            .unwrap();

        assert!(
            before.contains("<time id=\"as-of\">none yet</time>"),
            "{before}"
        );
        assert!(
            after.contains(
                "<time id=\"as-of\" datetime=\"2025-11-25T17:53:00.250Z\">2025-11-25T17:53:00.250Z</time>"
            ),
            "{after}"
        );
        assert!(
            after.contains("as of its last\ncollection (the values last exported)"),
            "{after}"
        );
    }

    #[test]
    fn the_error_ratio_counts_4xx_and_5xx_and_marks_5xx_first() {
        let snapshot = |requests, error_4xx, error_5xx| Snapshot {
            requests,
            error_4xx,
            error_5xx,
            ..Snapshot::default()
        };

        assert_eq!(errors(&snapshot(0, 0, 0)), (None, ""));
        assert_eq!(errors(&snapshot(8, 2, 0)), (Some(0.25), "warn"));
        assert_eq!(errors(&snapshot(8, 2, 2)), (Some(0.5), "bad"));
        assert_eq!(errors(&snapshot(8, 0, 1)), (Some(0.125), "bad"));
    }

    #[test]
    fn the_page_shows_the_native_buckets_and_both_quantiles_or_why_there_are_none() {
        let prometheus = About::of(&crate::config::Config::defaults());
        let mut config = crate::config::Config::defaults();
        config.metrics_backend = crate::config::Backend::Otel;
        let otel = About::of(&config);
        let native = Snapshot {
            buckets: Snapshot::cumulative(&[0.1], [0, 4]),
            native: Some(NativeHistogram {
                schema: 3,
                zero_threshold: 2.938_735_877_055_719e-39,
                zero_count: 0,
                count: 4,
                sum: 0.5,
                buckets: vec![crate::metrics::NativeBucket {
                    lower: 0.125,
                    upper: 0.13630407,
                    count: 4,
                }],
            }),
            ..Snapshot::default()
        };

        let page = MetricsPage::new(&native, &prometheus, UNIX_EPOCH)
            .render()
            .unwrap();
        let off = MetricsPage::new(&Snapshot::default(), &prometheus, UNIX_EPOCH)
            .render()
            .unwrap();
        let pushed = MetricsPage::new(&Snapshot::default(), &otel, UNIX_EPOCH)
            .render()
            .unwrap();

        assert!(
            page.contains("<tr><td class=\"num\">0.125</td><td class=\"num\">0.136304</td><td class=\"num\">4</td></tr>"),
            "{page}"
        );
        // p50: rank 2 of 4 in (0.125, 0.1363]: half-way on a log scale; classic: 0.1 (+Inf).
        assert!(
            page.contains("<tr data-quantile=\"p50\"><td>p50</td><td class=\"num\">0.1000</td><td class=\"num\">0.1305</td></tr>"),
            "{page}"
        );
        assert!(off.contains("Native histograms are off"), "{off}");
        assert!(
            pushed.contains("No native histogram with the otel backend"),
            "{pushed}"
        );
    }

    #[test]
    fn the_highest_bucket_fills_the_plot() {
        assert_eq!(bar_height(4, 4), PLOT_HEIGHT);
        assert_eq!(bar_height(1, 4), PLOT_HEIGHT / 4.0);
        assert_eq!(bar_height(0, 0), 0.0);
    }
}
