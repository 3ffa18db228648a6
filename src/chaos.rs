//! Fault injection: the chaos settings (an error rate and status, added latency; and the faults
//! of a pod: readiness, liveness, CPU and memory stress), validated the same way at start and at
//! runtime, and the per-request decision they lead to.
//!
//! Settings start from the configuration (`CHAOS_*`), can be replaced at runtime (`/chaos`,
//! `PUT /api/chaos`) and reset to the start values (`DELETE /api/chaos`). Only the application
//! routes are affected by errors and latency; the chaos layer sits between the counting layer and
//! their handlers, so an injected failure is counted like any other. The probes read `ready` and
//! `healthy`; [`stress`] keeps cores busy and memory held. Whether `POST /panic` may end the
//! process is set at start only (`CHAOS_ALLOW_PANIC`).

pub mod stress;

use std::{
    sync::{
        Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::config::{
    Config, MAX_CHAOS_LATENCY,
    faults::{MAX_CPU_STRESS, MAX_MEMORY_STRESS, parse_memory_stress},
};
use stress::Stress;

/// The longest latency (fixed plus jitter) that may be injected, in seconds.
pub const MAX_LATENCY_SECONDS: f64 = MAX_CHAOS_LATENCY.as_secs_f64();

/// What to inject. Every field has an "off" default: [`ChaosSettings::default`] injects nothing.
/// As JSON (`/api/chaos`), a field left out takes its "off" value and an unknown field is refused,
/// so that a typo cannot pass for "off".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosSettings {
    /// Share of application requests answered with `error_status` instead of their handler's
    /// answer, from 0 to 1.
    pub error_rate: f64,
    /// The status of an injected failure, from 400 to 599.
    pub error_status: u16,
    /// Latency added to a delayed request, in seconds.
    pub latency_seconds: f64,
    /// Up to this much more latency, uniformly random, in seconds.
    pub jitter_seconds: f64,
    /// Share of application requests that are delayed, from 0 to 1.
    pub latency_rate: f64,
    /// Whether `/readyz` answers 200; when false it answers 503 and the app keeps serving.
    pub ready: bool,
    /// Whether `/healthz` answers 200; when false it answers 503.
    pub healthy: bool,
    /// CPU cores kept busy, from 0 to 64, fractions allowed. JSON also takes it as `cpu_stress`,
    /// the name of its variable `CHAOS_CPU_STRESS`.
    #[serde(alias = "cpu_stress")]
    pub cpu_stress_cores: f64,
    /// Bytes of memory held and touched; JSON takes a number or a string with a unit (`"64Mi"`),
    /// also as `memory_stress`, the name of its variable `CHAOS_MEMORY_STRESS`.
    #[serde(alias = "memory_stress", deserialize_with = "bytes")]
    pub memory_stress_bytes: u64,
    /// Whether `POST /panic` may end the process (`CHAOS_ALLOW_PANIC`): set at start, for the
    /// life of the process. Shown, never read from a request (see `http::chaos` for a `PUT`).
    #[serde(skip_deserializing)]
    pub panic_allowed: bool,
}

/// A number of bytes, or a string with a unit as `CHAOS_MEMORY_STRESS` takes it.
fn bytes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        Number(u64),
        Text(String),
    }
    match Bytes::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom("expected a number of bytes, or a string such as \"64Mi\"")
    })? {
        Bytes::Number(bytes) => Ok(bytes),
        Bytes::Text(text) => parse_memory_stress(&text).map_err(serde::de::Error::custom),
    }
}

impl Default for ChaosSettings {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_status: 500,
            latency_seconds: 0.0,
            jitter_seconds: 0.0,
            latency_rate: 1.0,
            ready: true,
            healthy: true,
            cpu_stress_cores: 0.0,
            memory_stress_bytes: 0,
            panic_allowed: false,
        }
    }
}

/// A chaos setting out of its range; the message names the field and the valid values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} must be {expected}, not {value}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl ChaosSettings {
    /// The settings the app starts with (`CHAOS_*`), validated.
    pub fn from_config(config: &Config) -> Result<Self, InvalidSetting> {
        Self {
            error_rate: config.chaos_error_rate,
            error_status: config.chaos_error_status,
            latency_seconds: config.chaos_latency.as_secs_f64(),
            jitter_seconds: config.chaos_jitter.as_secs_f64(),
            latency_rate: config.chaos_latency_rate,
            ready: config.faults.chaos_ready,
            healthy: config.faults.chaos_healthy,
            cpu_stress_cores: config.faults.chaos_cpu_stress,
            memory_stress_bytes: config.faults.chaos_memory_stress,
            panic_allowed: config.faults.chaos_allow_panic,
        }
        .validate()
    }

    /// Checks every field's range; the same rules as the `CHAOS_*` settings at start.
    pub fn validate(self) -> Result<Self, InvalidSetting> {
        let invalid = |field, value: String, expected| {
            Err(InvalidSetting {
                field,
                value,
                expected,
            })
        };
        for (field, value) in [
            ("error_rate", self.error_rate),
            ("latency_rate", self.latency_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(field, value.to_string(), "a number from 0 to 1");
            }
        }
        if !(400..=599).contains(&self.error_status) {
            return invalid(
                "error_status",
                self.error_status.to_string(),
                "an error status from 400 to 599",
            );
        }
        for (field, value) in [
            ("latency_seconds", self.latency_seconds),
            ("jitter_seconds", self.jitter_seconds),
        ] {
            if !(0.0..=MAX_LATENCY_SECONDS).contains(&value) {
                return invalid(field, value.to_string(), "a number of seconds from 0 to 60");
            }
        }
        if self.latency_seconds + self.jitter_seconds > MAX_LATENCY_SECONDS {
            return invalid(
                "latency_seconds + jitter_seconds",
                (self.latency_seconds + self.jitter_seconds).to_string(),
                "at most 60 seconds",
            );
        }
        if !(0.0..=MAX_CPU_STRESS).contains(&self.cpu_stress_cores) {
            return invalid(
                "cpu_stress_cores",
                self.cpu_stress_cores.to_string(),
                "a number of cores from 0 to 64",
            );
        }
        if self.memory_stress_bytes > MAX_MEMORY_STRESS {
            return invalid(
                "memory_stress_bytes",
                self.memory_stress_bytes.to_string(),
                "a number of bytes up to 1Ti (1099511627776)",
            );
        }
        Ok(self)
    }

    /// Whether these settings change any request (the faults of the pod change none).
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0
            || (self.latency_rate > 0.0
                && (self.latency_seconds > 0.0 || self.jitter_seconds > 0.0))
    }
}

/// What chaos does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Then answer with this status instead of calling the handler.
    pub error_status: Option<u16>,
}

/// The chaos settings of a running app: shared, replaceable, and cheap to consult while off.
pub struct Chaos {
    start: ChaosSettings,
    current: RwLock<ChaosSettings>,
    /// A copy of `current.is_active()`, so that a request pays one atomic load while chaos is off.
    active: AtomicBool,
    /// One generator for every decision; seeded (`CHAOS_SEED`) for repeatable runs.
    rng: Mutex<StdRng>,
    /// Called with the new settings whenever they change (the backends' gauges).
    on_change: Box<dyn Fn(&ChaosSettings) + Send + Sync>,
    /// The CPU and memory stress in force.
    stress: Stress,
}

impl Chaos {
    /// Chaos starting from `start`, its random decisions drawn from `seed` (or from the system's
    /// randomness). `on_change` is called at once with `start`, and after every change.
    pub fn new(
        start: ChaosSettings,
        seed: Option<u64>,
        on_change: Box<dyn Fn(&ChaosSettings) + Send + Sync>,
    ) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        on_change(&start);
        let stress = Stress::default();
        stress.apply(start.cpu_stress_cores, start.memory_stress_bytes);
        Self {
            start,
            current: RwLock::new(start),
            active: AtomicBool::new(start.is_active()),
            rng: Mutex::new(rng),
            on_change,
            stress,
        }
    }

    /// Whether `POST /panic` may end the process.
    pub fn panic_allowed(&self) -> bool {
        self.start.panic_allowed
    }

    /// The settings in force.
    pub fn settings(&self) -> ChaosSettings {
        *self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the settings, once validated; an invalid value changes nothing. Whether
    /// `/panic` is allowed stays as it started.
    pub fn replace(&self, settings: ChaosSettings) -> Result<ChaosSettings, InvalidSetting> {
        let settings = ChaosSettings {
            panic_allowed: self.start.panic_allowed,
            ..settings
        }
        .validate()?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = settings;
        self.active.store(settings.is_active(), Ordering::Release);
        self.stress
            .apply(settings.cpu_stress_cores, settings.memory_stress_bytes);
        (self.on_change)(&settings);
        Ok(settings)
    }

    /// Goes back to the settings the app started with.
    pub fn reset(&self) -> ChaosSettings {
        self.replace(self.start)
            .expect("the start settings were validated at start")
    }

    /// Decides what happens to one application request.
    pub fn decide(&self) -> Decision {
        if !self.active.load(Ordering::Acquire) {
            return Decision::default();
        }
        let settings = self.settings();
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        decide(&settings, &mut *rng)
    }
}

/// The decision for one request under `settings`, drawing from `rng`: first whether it is delayed
/// and by how much, then whether it fails.
fn decide(settings: &ChaosSettings, rng: &mut impl Rng) -> Decision {
    let delayed = (settings.latency_seconds > 0.0 || settings.jitter_seconds > 0.0)
        && rng.random::<f64>() < settings.latency_rate;
    let delay = delayed.then(|| {
        let jitter = settings.jitter_seconds * rng.random::<f64>();
        Duration::from_secs_f64(settings.latency_seconds + jitter)
    });
    let fails = settings.error_rate > 0.0 && rng.random::<f64>() < settings.error_rate;
    Decision {
        delay,
        error_status: fails.then_some(settings.error_status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(settings: ChaosSettings) -> Chaos {
        Chaos::new(settings, Some(7), Box::new(|_| {}))
    }

    #[test]
    fn the_defaults_inject_nothing() {
        let chaos = chaos(ChaosSettings::default());

        assert!(!ChaosSettings::default().is_active());
        for _ in 0..1000 {
            assert_eq!(chaos.decide(), Decision::default());
        }
    }

    #[test]
    fn the_error_rate_holds_within_statistical_bounds() {
        let chaos = chaos(ChaosSettings {
            error_rate: 0.25,
            error_status: 503,
            ..ChaosSettings::default()
        });

        let n = 20_000;
        let failed = (0..n)
            .filter(|_| chaos.decide().error_status == Some(503))
            .count();

        // Binomial: mean 5,000, standard deviation about 61; four of them either side.
        assert!((4_755..=5_245).contains(&failed), "{failed} of {n}");
    }

    #[test]
    fn latency_is_fixed_plus_jitter_on_its_share_of_requests() {
        let chaos = chaos(ChaosSettings {
            latency_seconds: 0.1,
            jitter_seconds: 0.05,
            latency_rate: 0.5,
            ..ChaosSettings::default()
        });

        let delays: Vec<Duration> = (0..10_000).filter_map(|_| chaos.decide().delay).collect();

        assert!((4_800..=5_200).contains(&delays.len()), "{}", delays.len());
        assert!(
            delays
                .iter()
                .all(|d| { *d >= Duration::from_millis(100) && *d <= Duration::from_millis(150) })
        );
        let mean = delays.iter().sum::<Duration>().as_secs_f64() / delays.len() as f64;
        assert!((mean - 0.125).abs() < 0.002, "mean {mean}");
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let settings = ChaosSettings {
            error_rate: 0.5,
            ..ChaosSettings::default()
        };
        let (a, b) = (chaos(settings), chaos(settings));

        let first: Vec<_> = (0..100).map(|_| a.decide()).collect();
        let second: Vec<_> = (0..100).map(|_| b.decide()).collect();

        assert_eq!(first, second);
    }

    #[test]
    fn invalid_settings_are_refused_and_change_nothing() {
        let chaos = chaos(ChaosSettings::default());

        for (settings, field) in [
            (
                ChaosSettings {
                    error_rate: 1.5,
                    ..ChaosSettings::default()
                },
                "error_rate",
            ),
            (
                ChaosSettings {
                    error_status: 200,
                    ..ChaosSettings::default()
                },
                "error_status",
            ),
            (
                ChaosSettings {
                    latency_seconds: -1.0,
                    ..ChaosSettings::default()
                },
                "latency_seconds",
            ),
            (
                ChaosSettings {
                    latency_seconds: 40.0,
                    jitter_seconds: 30.0,
                    ..ChaosSettings::default()
                },
                "latency_seconds + jitter_seconds",
            ),
            (
                ChaosSettings {
                    latency_rate: f64::NAN,
                    ..ChaosSettings::default()
                },
                "latency_rate",
            ),
        ] {
            let err = chaos.replace(settings).unwrap_err();
            assert_eq!(err.field, field);
        }
        assert_eq!(chaos.settings(), ChaosSettings::default());
    }

    #[test]
    fn reset_returns_to_the_start_settings_and_reports_every_change() {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let start = ChaosSettings {
            error_rate: 0.1,
            ..ChaosSettings::default()
        };
        let chaos = Chaos::new(start, None, {
            let seen = seen.clone();
            Box::new(move |s| seen.lock().unwrap().push(s.error_rate))
        });

        chaos
            .replace(ChaosSettings {
                error_rate: 0.9,
                ..ChaosSettings::default()
            })
            .unwrap();
        let reset = chaos.reset();

        assert_eq!(reset, start);
        assert_eq!(chaos.settings(), start);
        assert_eq!(*seen.lock().unwrap(), vec![0.1, 0.9, 0.1]);
    }
}
