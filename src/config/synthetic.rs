//! The settings of the synthetic series (`SYNTHETIC_*`): how many families and series, of which
//! type, how often their values change and how often a share of them is replaced (churn). Off
//! while `SYNTHETIC_METRICS` is 0, the default.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::parse::{parse_duration, parse_ratio};

/// The most samples a scrape of the synthetic families may hold: series times the samples of
/// each. It bounds the work of one scrape, the memory of the OpenTelemetry SDK (which keeps every
/// series it exports) and that of the scraper; the Prometheus backend keeps no state per series.
pub const MAX_SYNTHETIC_SAMPLES: u64 = 10_000_000;

/// The most synthetic families.
pub const MAX_SYNTHETIC_METRICS: u64 = 10_000;

/// The most extra constant labels of a synthetic series.
pub const MAX_SYNTHETIC_LABELS: u64 = 32;

/// The shortest interval of value changes and of churn, when on.
pub const MIN_SYNTHETIC_INTERVAL: Duration = Duration::from_secs(1);

/// The longest interval of value changes and of churn.
pub const MAX_SYNTHETIC_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The type of the synthetic families.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticType {
    /// A value that moves up and down (OpenTelemetry: a gauge).
    Gauge,
    /// A total that only grows (OpenTelemetry: a monotonic sum).
    Counter,
    /// A classic histogram with 14 bounds and `+Inf` (OpenTelemetry: an explicit-bucket histogram).
    Histogram,
    /// A Prometheus native histogram, in the protobuf format (OpenTelemetry: an exponential histogram).
    #[value(name = "native_histogram")]
    NativeHistogram,
}

impl SyntheticType {
    /// Its name in a family's name, the JSON API and the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SyntheticType::Gauge => "gauge",
            SyntheticType::Counter => "counter",
            SyntheticType::Histogram => "histogram",
            SyntheticType::NativeHistogram => "native_histogram",
        }
    }

    /// The sample lines of one series in the text formats: a gauge or counter has one; a classic
    /// histogram 15 buckets, `_sum` and `_count`; a native histogram, which the text formats
    /// cannot carry, its `+Inf` bucket, `_sum` and `_count`, as client_golang writes it.
    pub fn samples_per_series(self) -> u64 {
        match self {
            SyntheticType::Gauge | SyntheticType::Counter => 1,
            SyntheticType::Histogram => 17,
            SyntheticType::NativeHistogram => 3,
        }
    }
}

impl std::fmt::Display for SyntheticType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The synthetic series at start (flattened into [`super::Config`]); changeable at runtime on
/// `/api/synthetic` and `/synthetic`.
#[derive(Debug, Clone, Args)]
pub struct SyntheticSettings {
    /// Synthetic families to expose beside the app's own, named synthetic_<type>_<n>; 0 turns them off.
    #[arg(long, env = "SYNTHETIC_METRICS", value_name = "SYNTHETIC_METRICS", default_value = "0", value_parser = parse_metrics)]
    pub synthetic_metrics: u64,

    /// Series in each synthetic family, told apart by the label series_id.
    #[arg(long, env = "SYNTHETIC_SERIES", value_name = "SYNTHETIC_SERIES", default_value = "10", value_parser = parse_series)]
    pub synthetic_series: u64,

    /// Extra constant labels on each synthetic series (label_0="value_0", ...).
    #[arg(long, env = "SYNTHETIC_LABELS", value_name = "SYNTHETIC_LABELS", default_value = "0", value_parser = parse_labels)]
    pub synthetic_labels: u64,

    /// Type of the synthetic families.
    #[arg(
        long,
        env = "SYNTHETIC_TYPE",
        value_name = "SYNTHETIC_TYPE",
        default_value = "gauge",
        ignore_case = true
    )]
    pub synthetic_type: SyntheticType,

    /// How often the synthetic values change, e.g. `10s`; `0` keeps them fixed.
    #[arg(long, env = "SYNTHETIC_VALUE_INTERVAL", value_name = "SYNTHETIC_VALUE_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub synthetic_value_interval: Duration,

    /// How often a share (SYNTHETIC_CHURN_RATIO) of the synthetic series is replaced by new ones, e.g. `1m`; `0` turns churn off.
    #[arg(long, env = "SYNTHETIC_CHURN", value_name = "SYNTHETIC_CHURN", default_value = "0", value_parser = parse_interval)]
    pub synthetic_churn: Duration,

    /// Share of the synthetic series replaced at each churn, above 0 and at most 1.
    #[arg(long, env = "SYNTHETIC_CHURN_RATIO", value_name = "SYNTHETIC_CHURN_RATIO", default_value = "1", value_parser = parse_churn_ratio)]
    pub synthetic_churn_ratio: f64,
}

impl SyntheticSettings {
    /// Checks the ceiling, which depends on three settings together.
    pub fn validate(&self) -> Result<(), String> {
        check_ceiling(
            self.synthetic_metrics,
            self.synthetic_series,
            self.synthetic_type,
        )
    }
}

/// Checks that `metrics` families of `series` series of type `kind` stay within
/// [`MAX_SYNTHETIC_SAMPLES`]; the message names the settings and the ceiling.
pub fn check_ceiling(metrics: u64, series: u64, kind: SyntheticType) -> Result<(), String> {
    let samples = metrics
        .saturating_mul(series)
        .saturating_mul(kind.samples_per_series());
    match samples <= MAX_SYNTHETIC_SAMPLES {
        true => Ok(()),
        false => Err(format!(
            "SYNTHETIC_METRICS (--synthetic-metrics) x SYNTHETIC_SERIES (--synthetic-series) x {} samples per {kind} series must be at most {MAX_SYNTHETIC_SAMPLES} samples per scrape, not {samples}",
            kind.samples_per_series()
        )),
    }
}

fn parse_bounded(value: &str, min: u64, max: u64, example: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, such as {example}"
        )),
    }
}

fn parse_metrics(value: &str) -> Result<u64, String> {
    parse_bounded(value, 0, MAX_SYNTHETIC_METRICS, "100 (0 turns them off)")
}

fn parse_series(value: &str) -> Result<u64, String> {
    parse_bounded(value, 1, MAX_SYNTHETIC_SAMPLES, "10000")
}

fn parse_labels(value: &str) -> Result<u64, String> {
    parse_bounded(value, 0, MAX_SYNTHETIC_LABELS, "5")
}

/// `0` (off), or a duration from [`MIN_SYNTHETIC_INTERVAL`] to [`MAX_SYNTHETIC_INTERVAL`].
pub fn parse_interval(value: &str) -> Result<Duration, String> {
    match parse_duration(value) {
        Ok(d) if d.is_zero() || (MIN_SYNTHETIC_INTERVAL..=MAX_SYNTHETIC_INTERVAL).contains(&d) => {
            Ok(d)
        }
        _ => Err("expected 0 (off) or a duration from 1s to 24h, such as 10s or 5m".to_string()),
    }
}

/// A duration as Prometheus writes one, and as [`parse_interval`] reads it back: `10s`, `1m30s`,
/// `0s`.
pub fn format_interval(interval: Duration) -> String {
    humantime::format_duration(interval)
        .to_string()
        .replace(' ', "")
}

/// A share above 0 and at most 1.
pub fn parse_churn_ratio(value: &str) -> Result<f64, String> {
    match parse_ratio(value) {
        Ok(ratio) if ratio > 0.0 => Ok(ratio),
        _ => Err("expected a number above 0 and at most 1, such as 0.1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_off_or_from_one_second_to_a_day() {
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("10s"), Ok(Duration::from_secs(10)));
        for bad in ["500ms", "25h", "soon", "-1"] {
            assert!(
                parse_interval(bad).unwrap_err().contains("1s to 24h"),
                "{bad}"
            );
        }
    }

    #[test]
    fn intervals_are_written_without_spaces_and_read_back() {
        for (interval, text) in [(0, "0s"), (10, "10s"), (90, "1m30s"), (86_400, "1day")] {
            let interval = Duration::from_secs(interval);

            assert_eq!(format_interval(interval), text);
            assert_eq!(parse_interval(text), Ok(interval));
        }
    }

    #[test]
    fn the_ceiling_counts_samples_not_series() {
        assert!(check_ceiling(100, 10_000, SyntheticType::Gauge).is_ok());
        assert!(check_ceiling(100, 100_000, SyntheticType::Gauge).is_ok());
        let err = check_ceiling(100, 10_000, SyntheticType::Histogram).unwrap_err();
        assert!(
            err.contains("17000000") && err.contains("10000000"),
            "{err}"
        );
        assert!(check_ceiling(u64::MAX, u64::MAX, SyntheticType::Gauge).is_err());
    }

    #[test]
    fn the_churn_ratio_is_above_zero() {
        assert_eq!(parse_churn_ratio("0.25"), Ok(0.25));
        assert!(parse_churn_ratio("0").is_err());
        assert!(parse_churn_ratio("1.5").is_err());
    }
}
