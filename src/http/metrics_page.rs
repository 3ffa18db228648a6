//! The HTML page of `/view_metrics`: summary cards, the bar chart as inline SVG, the tables, the
//! faults in force.

use std::time::SystemTime;

use askama::Template;

use super::{
    about::About,
    nav::{Nav, Page},
};
use crate::chaos::ChaosSettings;
use crate::dates::{rfc3339_millis_of_seconds, unix_seconds};
use crate::metrics::{
    NativeHistogram, Process, Series, Snapshot, histogram_quantile, native_histogram_quantile,
};

/// Height of the chart's plot area and the y of its baseline, in pixels; the script uses the
/// same numbers, read from the `<svg>` element's data attributes.
const PLOT_HEIGHT: f64 = 160.0;
const BASELINE: f64 = 180.0;
/// Each bucket gets an equal share of the chart's width, in percent, so that the chart fills
/// whatever width it has with its text at its own size; a bar fills this part of its share.
const BAR_FILL: f64 = 0.7;

/// Shown instead of a time before the SDK's first collection; the script writes the same.
const NOT_COLLECTED: &str = "none yet";

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
pub struct MetricsPage<'a> {
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
    /// The page, with the faults of `chaos` in force.
    pub fn with_faults(mut self, chaos: &ChaosSettings) -> Self {
        self.faults = fault_rows(chaos);
        self
    }

    pub fn new(snapshot: &'a Snapshot, about: &'a About, now: SystemTime) -> Self {
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
        let collected_at = snapshot
            .collected_at
            .map(|at| rfc3339_millis_of_seconds(unix_seconds(at)));
        let (ratio, error_state) = errors(snapshot);
        Self {
            nav: Nav::new(Some(Page::ViewMetrics), about),
            about,
            read_at: rfc3339_millis_of_seconds(unix_seconds(snapshot.collected_at.unwrap_or(now))),
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
        start_time: rfc3339_millis_of_seconds(process.start_time_seconds),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::metrics::Snapshot;

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
