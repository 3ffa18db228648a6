//! Synthetic series: families of made-up series for load-testing a metrics pipeline (its
//! cardinality, churn and scrape size), with the ground truth a test can assert on.
//!
//! Nothing is stored per series. A series is named by its family, its `series_id` and its
//! `generation`, and every value is a function of those and of the time since the settings were
//! applied (a "run"): so a million series cost no memory until they are encoded, and every
//! backend and every scrape agree on what exists at a given moment ([`Frame`]). The settings start
//! from `SYNTHETIC_*`, are replaced at runtime (`PUT /api/synthetic`, the `/synthetic` form) and
//! reset to the start values (`DELETE`); each change starts a new run, from tick 0 and
//! generation 0.
//!
//! Churn replaces series in a fixed rotation: each churn moves the next `ceil(ratio x series)`
//! series of every family, in `series_id` order and round again, to their next generation.

use std::{
    sync::{Arc, Condvar, Mutex, PoisonError, RwLock},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};

use crate::config::{
    Config, SyntheticType,
    synthetic::{
        MAX_SYNTHETIC_INTERVAL, MAX_SYNTHETIC_LABELS, MAX_SYNTHETIC_METRICS, MAX_SYNTHETIC_SAMPLES,
        MIN_SYNTHETIC_INTERVAL, check_ceiling,
    },
};

/// Upper bounds of the classic synthetic histograms, in seconds (the app's own request buckets);
/// `+Inf` follows.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Observations that each histogram series gets at each value change.
pub const OBSERVATIONS_PER_TICK: usize = 4;

/// The synthetic series' settings, as the JSON API and the form show them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Families; 0: off.
    pub metrics: u64,
    /// Series in each family.
    pub series_per_metric: u64,
    /// Extra constant labels on each series.
    pub labels: u64,
    /// The families' type.
    #[serde(rename = "type")]
    pub kind: SyntheticType,
    /// How often values change; zero: never.
    #[serde(with = "duration_text")]
    pub value_interval: Duration,
    /// How often a share of the series is replaced; zero: never.
    #[serde(with = "duration_text")]
    pub churn: Duration,
    /// The share replaced at each churn.
    pub churn_ratio: f64,
}

impl Default for Settings {
    /// The defaults of the `SYNTHETIC_*` settings: off.
    fn default() -> Self {
        Self {
            metrics: 0,
            series_per_metric: 10,
            labels: 0,
            kind: SyntheticType::Gauge,
            value_interval: Duration::from_secs(10),
            churn: Duration::ZERO,
            churn_ratio: 1.0,
        }
    }
}

/// A setting out of its range; the message names the field and the valid values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub reason: String,
}

impl Settings {
    /// The settings the app starts with (`SYNTHETIC_*`, validated by the configuration).
    pub fn from_config(config: &Config) -> Self {
        let s = &config.synthetic;
        Self {
            metrics: s.synthetic_metrics,
            series_per_metric: s.synthetic_series,
            labels: s.synthetic_labels,
            kind: s.synthetic_type,
            value_interval: s.synthetic_value_interval,
            churn: s.synthetic_churn,
            churn_ratio: s.synthetic_churn_ratio,
        }
    }

    /// Checks every field, with the rules of the `SYNTHETIC_*` settings at start.
    pub fn validate(self) -> Result<Self, InvalidSetting> {
        let invalid = |field, reason: String| Err(InvalidSetting { field, reason });
        if self.metrics > MAX_SYNTHETIC_METRICS {
            return invalid(
                "metrics",
                format!(
                    "must be from 0 to {MAX_SYNTHETIC_METRICS}, not {}",
                    self.metrics
                ),
            );
        }
        if self.series_per_metric == 0 {
            return invalid("series_per_metric", "must be at least 1, not 0".to_string());
        }
        if self.labels > MAX_SYNTHETIC_LABELS {
            return invalid(
                "labels",
                format!(
                    "must be from 0 to {MAX_SYNTHETIC_LABELS}, not {}",
                    self.labels
                ),
            );
        }
        for (field, interval) in [
            ("value_interval", self.value_interval),
            ("churn", self.churn),
        ] {
            if !interval.is_zero()
                && !(MIN_SYNTHETIC_INTERVAL..=MAX_SYNTHETIC_INTERVAL).contains(&interval)
            {
                return invalid(
                    field,
                    format!(
                        "must be \"0s\" (off) or a duration from 1s to 24h, such as \"10s\", not {:?}",
                        crate::config::synthetic::format_interval(interval)
                    ),
                );
            }
        }
        if !(self.churn_ratio > 0.0 && self.churn_ratio <= 1.0) {
            return invalid(
                "churn_ratio",
                format!("must be above 0 and at most 1, not {}", self.churn_ratio),
            );
        }
        if check_ceiling(self.metrics, self.series_per_metric, self.kind).is_err() {
            return invalid(
                "metrics",
                format!(
                    "metrics x series_per_metric x {} samples per {} series must be at most {MAX_SYNTHETIC_SAMPLES} samples per scrape, not {}",
                    self.kind.samples_per_series(),
                    self.kind,
                    self.metrics
                        .saturating_mul(self.series_per_metric)
                        .saturating_mul(self.kind.samples_per_series())
                ),
            );
        }
        Ok(self)
    }

    /// Logs these settings and the series they make, with `message`.
    pub fn log(&self, message: &str) {
        tracing::info!(
            metrics = self.metrics,
            series_per_metric = self.series_per_metric,
            labels = self.labels,
            r#type = %self.kind,
            value_interval = %crate::config::synthetic::format_interval(self.value_interval),
            churn = %crate::config::synthetic::format_interval(self.churn),
            churn_ratio = self.churn_ratio,
            series = self.series(),
            "{message}"
        );
    }

    /// Series exposed by every scrape: each family's.
    pub fn series(&self) -> u64 {
        self.metrics * self.series_per_metric
    }

    /// Sample lines per scrape in the text formats.
    pub fn samples(&self) -> u64 {
        self.series() * self.kind.samples_per_series()
    }

    /// Series that each churn replaces: the ratio's share, at least one.
    pub fn replaced_per_churn(&self) -> u64 {
        let share = (self.churn_ratio * self.series_per_metric as f64).ceil() as u64;
        share.clamp(1, self.series_per_metric)
    }

    /// The name of family `n`: `synthetic_<type>_<n>`.
    pub fn family_name(&self, n: u64) -> String {
        format!("synthetic_{}_{n}", self.kind.name())
    }
}

/// Durations as text, as Prometheus writes them: `"10s"`, `"1m30s"`, `"0s"`; read as the
/// `SYNTHETIC_*` variables are, and a bare number as seconds (`10`, `"10"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::synthetic::{format_interval, parse_interval};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_interval(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Interval {
            Seconds(f64),
            Text(String),
        }
        let text = match Interval::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"10s\", or a number of seconds")
        })? {
            Interval::Seconds(seconds) => seconds.to_string(),
            Interval::Text(text) => text,
        };
        parse_interval(&text).map_err(serde::de::Error::custom)
    }
}

/// The body of `PUT /api/synthetic`: each field left out keeps its default; `truth`, which a
/// GET document carries, is read and ignored, so that a document can be sent back changed; any
/// other field is refused, so that a typo cannot pass for a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    metrics: Option<u64>,
    series_per_metric: Option<u64>,
    labels: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<SyntheticType>,
    #[serde(default, with = "optional_duration")]
    value_interval: Option<Duration>,
    #[serde(default, with = "optional_duration")]
    churn: Option<Duration>,
    churn_ratio: Option<f64>,
    #[serde(default, rename = "truth")]
    _truth: Option<serde::de::IgnoredAny>,
}

mod optional_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(deserializer).map(Some)
    }
}

impl Update {
    /// The settings this update describes, over the defaults, validated.
    pub fn settings(self) -> Result<Settings, InvalidSetting> {
        let default = Settings::default();
        Settings {
            metrics: self.metrics.unwrap_or(default.metrics),
            series_per_metric: self.series_per_metric.unwrap_or(default.series_per_metric),
            labels: self.labels.unwrap_or(default.labels),
            kind: self.kind.unwrap_or(default.kind),
            value_interval: self.value_interval.unwrap_or(default.value_interval),
            churn: self.churn.unwrap_or(default.churn),
            churn_ratio: self.churn_ratio.unwrap_or(default.churn_ratio),
        }
        .validate()
    }
}

/// Settings in force since a moment: values and churn count from it.
#[derive(Debug, Clone)]
pub struct Run {
    pub settings: Settings,
    /// Run numbers grow by one with each change, so a reader can tell a new run.
    pub number: u64,
    started: Instant,
    started_at: SystemTime,
}

impl Run {
    /// What exists at `now`.
    pub fn frame_at(&self, now: Instant) -> Frame {
        let elapsed = now.saturating_duration_since(self.started);
        let s = &self.settings;
        let per = |interval: Duration| match interval.is_zero() {
            true => 0,
            false => (elapsed.as_nanos() / interval.as_nanos()) as u64,
        };
        Frame {
            elapsed,
            settings: s.clone(),
            tick: per(s.value_interval),
            churns: per(s.churn),
            replaced: s.replaced_per_churn(),
            run: self.number,
            started_at: self.started_at,
        }
    }

    /// What exists now.
    pub fn frame(&self) -> Frame {
        self.frame_at(Instant::now())
    }
}

/// The series and their values at one moment: everything a scrape or an export encodes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub settings: Settings,
    /// Time since the run started.
    elapsed: Duration,
    /// Value changes since the run started.
    pub tick: u64,
    /// Churns since the run started.
    pub churns: u64,
    /// Series replaced by each churn, in each family.
    replaced: u64,
    /// The run's number.
    pub run: u64,
    started_at: SystemTime,
}

/// One series at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub id: u64,
    pub generation: u64,
    /// Value changes since this series appeared.
    pub age: u64,
    seed: u64,
}

impl Frame {
    /// Series `id` of family `family`.
    pub fn series(&self, family: u64, id: u64) -> Series {
        let n = self.settings.series_per_metric;
        let done = self.churns * self.replaced;
        // Replacement number j (0, 1, ...) moves series j mod n: series `id` has moved once for
        // each j below `done` with j = id (mod n).
        let generation = (done + n - 1 - id) / n;
        let age = match generation {
            0 => self.tick,
            g => {
                let j = id + (g - 1) * n;
                let born = j / self.replaced + 1;
                self.tick.saturating_sub(self.tick_of_churn(born))
            }
        };
        Series {
            id,
            generation,
            age,
            seed: mix(mix(family)
                ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ generation.rotate_left(32)),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The value tick during which churn `k` happened.
    fn tick_of_churn(&self, k: u64) -> u64 {
        let s = &self.settings;
        match s.value_interval.is_zero() {
            true => 0,
            false => (k as u128 * s.churn.as_nanos() / s.value_interval.as_nanos()) as u64,
        }
    }

    /// A gauge's value: from 0 to 99.99, new at each tick.
    pub fn gauge(&self, series: &Series) -> f64 {
        (mix(series.seed ^ self.tick) % 10_000) as f64 / 100.0
    }

    /// A counter's value: its increment (1 to 10) once per tick since it appeared, and once more.
    pub fn counter(&self, series: &Series) -> u64 {
        (series.age + 1) * (1 + series.seed % 10)
    }

    /// The observations a histogram series gets at each tick: fixed for the series, spread over
    /// the buckets, one of them above the last bound now and then.
    pub fn observations(&self, series: &Series) -> [f64; OBSERVATIONS_PER_TICK] {
        std::array::from_fn(|k| {
            let bucket =
                (mix(series.seed.wrapping_add(k as u64 + 1)) % (BUCKETS.len() as u64 + 1)) as usize;
            match bucket {
                0 => BUCKETS[0] / 2.0,
                b if b == BUCKETS.len() => 15.0,
                b => (BUCKETS[b - 1] + BUCKETS[b]) / 2.0,
            }
        })
    }

    /// How many times a histogram series has received its [`Frame::observations`].
    pub fn rounds(&self, series: &Series) -> u64 {
        series.age + 1
    }

    /// The ground truth of this moment.
    pub fn truth(&self) -> Truth {
        let at = |k: u64| {
            let offset = self.settings.churn.checked_mul(u32::try_from(k).ok()?)?;
            Some(crate::dates::rfc3339_millis(self.started_at + offset))
        };
        let churning = !self.settings.churn.is_zero() && self.settings.metrics > 0;
        Truth {
            series: self.settings.series(),
            samples: self.settings.samples(),
            generation: self.churns,
            last_churn: (churning && self.churns > 0)
                .then(|| at(self.churns))
                .flatten(),
            next_churn: churning.then(|| at(self.churns + 1)).flatten(),
            run_started: crate::dates::rfc3339_millis(self.started_at),
        }
    }
}

/// What a test can assert on, as `GET /api/synthetic` tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Series exposed now: families times series per family.
    pub series: u64,
    /// Sample lines per scrape in the text formats (a classic histogram series has 17).
    pub samples: u64,
    /// Churns since the settings were applied; with a churn ratio of 1, every series carries it
    /// as its `generation` label.
    pub generation: u64,
    /// When the last churn happened, RFC 3339; null before the first, or without churn.
    pub last_churn: Option<String>,
    /// When the next one will, RFC 3339; null without churn.
    pub next_churn: Option<String>,
    /// When these settings were applied: values and churn count from then.
    pub run_started: String,
}

/// splitmix64's finalizer: a fast, well-mixed hash of one number, so that values look random yet
/// are the same in every scrape and backend. A hashing crate would add nothing for one `u64`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The synthetic series of a running app: their settings, replaceable at runtime.
pub struct Synthetic {
    start: Settings,
    current: RwLock<Arc<Run>>,
    /// The run number, signalled on each change (the OpenTelemetry export waits on it).
    changed: (Mutex<u64>, Condvar),
}

impl std::fmt::Debug for Synthetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synthetic")
            .field("run", &self.run())
            .finish_non_exhaustive()
    }
}

impl Synthetic {
    /// Synthetic series starting from `start`.
    pub fn new(start: Settings) -> Self {
        Self {
            current: RwLock::new(Arc::new(Run {
                settings: start.clone(),
                number: 0,
                started: Instant::now(),
                started_at: SystemTime::now(),
            })),
            start,
            changed: (Mutex::new(0), Condvar::new()),
        }
    }

    /// The run in force.
    pub fn run(&self) -> Arc<Run> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings, once validated, and starts a new run; an invalid value changes
    /// nothing.
    pub fn replace(&self, settings: Settings) -> Result<Arc<Run>, InvalidSetting> {
        let settings = settings.validate()?;
        let run = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            *current = Arc::new(Run {
                settings,
                number: current.number + 1,
                started: Instant::now(),
                started_at: SystemTime::now(),
            });
            current.clone()
        };
        let (number, signal) = &self.changed;
        *number.lock().unwrap_or_else(PoisonError::into_inner) = run.number;
        signal.notify_all();
        Ok(run)
    }

    /// Goes back to the settings the app started with, in a new run.
    pub fn reset(&self) -> Arc<Run> {
        self.replace(self.start.clone())
            .expect("the start settings were validated at start")
    }

    /// Waits at most `timeout` for a run other than `seen`; returns the run number then.
    pub fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        let (number, signal) = &self.changed;
        let guard = number.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = signal
            .wait_timeout_while(guard, timeout, |n| *n == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(settings: Settings, elapsed: Duration) -> Frame {
        let run = Run {
            settings,
            number: 0,
            started: Instant::now(),
            started_at: SystemTime::UNIX_EPOCH,
        };
        run.frame_at(run.started + elapsed)
    }

    fn on(series: u64) -> Settings {
        Settings {
            metrics: 2,
            series_per_metric: series,
            ..Settings::default()
        }
    }

    #[test]
    fn without_churn_every_series_is_of_generation_zero_and_counts_from_the_start() {
        let f = frame(on(5), Duration::from_secs(35));

        assert_eq!(f.tick, 3);
        for id in 0..5 {
            let s = f.series(0, id);
            assert_eq!((s.generation, s.age), (0, 3));
        }
        assert_eq!(f.truth().generation, 0);
        assert_eq!(f.truth().last_churn, None);
    }

    #[test]
    fn a_full_churn_moves_every_series_to_the_next_generation() {
        let settings = Settings {
            churn: Duration::from_secs(60),
            ..on(4)
        };

        let f = frame(settings, Duration::from_secs(130));

        assert_eq!(f.churns, 2);
        for id in 0..4 {
            let s = f.series(1, id);
            assert_eq!(s.generation, 2);
            assert_eq!(s.age, 13 - 12, "born at the second churn, 120 s in");
        }
        let truth = f.truth();
        assert_eq!(truth.generation, 2);
        assert_eq!(
            truth.last_churn.as_deref(),
            Some("1970-01-01T00:02:00.000Z")
        );
        assert_eq!(
            truth.next_churn.as_deref(),
            Some("1970-01-01T00:03:00.000Z")
        );
    }

    #[test]
    fn a_partial_churn_moves_the_next_share_of_series_in_rotation() {
        let settings = Settings {
            churn: Duration::from_secs(10),
            churn_ratio: 0.25,
            ..on(8)
        };

        let generations = |seconds| {
            let f = frame(settings.clone(), Duration::from_secs(seconds));
            (0..8)
                .map(|id| f.series(0, id).generation)
                .collect::<Vec<_>>()
        };

        assert_eq!(generations(5), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(generations(10), [1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(generations(30), [1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(generations(50), [2, 2, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn values_are_the_same_for_the_same_series_and_moment() {
        let f = frame(on(3), Duration::from_secs(25));
        let g = frame(on(3), Duration::from_secs(29));
        let h = frame(on(3), Duration::from_secs(31));

        let s = f.series(1, 2);
        assert_eq!(f.gauge(&s), g.gauge(&g.series(1, 2)));
        assert_ne!(f.gauge(&s), f.gauge(&f.series(1, 1)));
        assert!((0.0..100.0).contains(&f.gauge(&s)));
        let increment = 1 + s.seed % 10;
        assert_eq!(f.counter(&s), 3 * increment);
        assert_eq!(h.counter(&h.series(1, 2)), 4 * increment);
        assert!(f.observations(&s).iter().all(|v| *v > 0.0));
    }

    #[test]
    fn the_truth_counts_series_and_samples() {
        let settings = Settings {
            metrics: 100,
            series_per_metric: 10_000,
            kind: SyntheticType::Histogram,
            ..Settings::default()
        };

        assert_eq!(settings.series(), 1_000_000);
        assert_eq!(settings.samples(), 17_000_000);
        assert_eq!(settings.clone().validate().unwrap_err().field, "metrics");
    }

    #[test]
    fn an_update_keeps_defaults_ignores_truth_and_refuses_unknown_fields() {
        let update: Update =
            serde_json::from_str(r#"{"metrics": 3, "churn": "1m", "truth": {"series": 1}}"#)
                .unwrap();
        let settings = update.settings().unwrap();

        assert_eq!(
            settings,
            Settings {
                metrics: 3,
                churn: Duration::from_secs(60),
                ..Settings::default()
            }
        );
        assert!(serde_json::from_str::<Update>(r#"{"metric": 3}"#).is_err());
        assert!(serde_json::from_str::<Update>(r#"{"churn": "5ms"}"#).is_err());
    }

    #[test]
    fn a_replacement_starts_a_new_run_and_an_invalid_one_changes_nothing() {
        let synthetic = Synthetic::new(on(5));

        let bad = synthetic.replace(Settings {
            labels: 99,
            ..on(5)
        });
        let good = synthetic.replace(on(7)).unwrap();

        assert_eq!(bad.unwrap_err().field, "labels");
        assert_eq!((good.number, good.settings.series_per_metric), (1, 7));
        assert_eq!(synthetic.wait_for_change(0, Duration::ZERO), 1);
        assert_eq!(synthetic.reset().settings, on(5));
    }
}
