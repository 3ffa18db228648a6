//! The summary of a `load` run, as a table for people or as one JSON object for tools.

use std::{
    collections::BTreeMap,
    fmt,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    outcome::{ErrorCounts, Percentiles, Recorder},
    schedule::{LATE_AFTER, Schedule},
};

/// The summary of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub mix: String,
    pub seed: u64,
    pub concurrency: usize,
    pub timeout: Duration,
    pub rate_requested: f64,
    pub rate_achieved: f64,
    /// From the first scheduled send to the last answer.
    pub duration: Duration,
    pub planned: u64,
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub started_late: u64,
    pub waited_for_slot: u64,
    pub not_sent: u64,
    /// Stopped by a signal before the end.
    pub interrupted: bool,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: ErrorCounts,
    pub first_error: Option<String>,
    pub latency: Option<Percentiles>,
    pub service_time: Option<Percentiles>,
}

/// The settings a report repeats, so that a saved report says how it was made.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub target: String,
    pub mix: String,
    pub seed: u64,
    pub concurrency: usize,
    pub timeout: Duration,
    pub rate: f64,
}

impl Report {
    /// Sums up a run that started at `start`.
    pub fn new(
        settings: RunSettings,
        start: Instant,
        schedule: &Schedule,
        recorder: Recorder,
        interrupted: bool,
    ) -> Self {
        let end = recorder
            .last_finished
            .max(schedule.last_sent)
            .unwrap_or(start);
        Self {
            target: settings.target,
            mix: settings.mix,
            seed: settings.seed,
            concurrency: settings.concurrency,
            timeout: settings.timeout,
            rate_requested: settings.rate,
            rate_achieved: schedule.achieved_rate(),
            duration: end.saturating_duration_since(start),
            planned: schedule.planned(),
            sent: schedule.sent_count(),
            completed: recorder.completed(),
            failed: recorder.failed(),
            started_late: schedule.started_late,
            waited_for_slot: schedule.waited_for_slot,
            not_sent: schedule.not_sent,
            interrupted,
            latency: recorder.latency(),
            service_time: recorder.service_time(),
            statuses: recorder.statuses,
            errors: recorder.errors,
            first_error: recorder.first_error,
        }
    }

    /// Whether every request was sent on time: none over [`LATE_AFTER`] late, none left unsent.
    pub fn rate_kept(&self) -> bool {
        self.started_late == 0 && self.not_sent == 0
    }

    /// Whether requests were sent and none of them could connect.
    pub fn unreachable(&self) -> bool {
        self.sent > 0 && self.errors.connect == self.sent
    }

    /// One sentence when the load did not go exactly as scheduled: why the rate was not kept, or
    /// that the concurrency limit held requests back (for less than [`LATE_AFTER`]); `None` when
    /// neither happened.
    pub fn warning(&self) -> Option<String> {
        let waited = format!(
            "{} requests waited because the concurrency limit of {} was reached",
            self.waited_for_slot, self.concurrency
        );
        if self.rate_kept() {
            return (self.waited_for_slot > 0).then(|| {
                format!(
                    "kept {}/s, but {waited} (none started over {} ms late)",
                    self.rate_requested,
                    LATE_AFTER.as_millis()
                )
            });
        }
        let mut reasons = Vec::new();
        if self.started_late > 0 {
            reasons.push(format!(
                "{} requests started late (over {} ms after their scheduled time)",
                self.started_late,
                LATE_AFTER.as_millis()
            ));
        }
        if self.waited_for_slot > 0 {
            reasons.push(waited);
        }
        if self.not_sent > 0 {
            reasons.push(format!(
                "{} requests were not sent before the end of --duration",
                self.not_sent
            ));
        }
        Some(format!(
            "could not keep {}/s: achieved {:.1}/s; {}",
            self.rate_requested,
            self.rate_achieved,
            reasons.join("; ")
        ))
    }

    /// The report as one JSON object (docs/testing-pipelines.md lists the fields).
    pub fn to_json(&self) -> Value {
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(status, count)| (status.to_string(), json!(count)))
            .collect();
        json!({
            "target": self.target,
            "mix": self.mix,
            "seed": self.seed,
            "concurrency": self.concurrency,
            "timeout_seconds": self.timeout.as_secs_f64(),
            "rate": {
                "requested": self.rate_requested,
                "achieved": round3(self.rate_achieved),
                "kept": self.rate_kept(),
            },
            "duration_seconds": round3(self.duration.as_secs_f64()),
            "requests": {
                "planned": self.planned,
                "sent": self.sent,
                "completed": self.completed,
                "failed": self.failed,
                "started_late": self.started_late,
                "waited_for_slot": self.waited_for_slot,
                "not_sent": self.not_sent,
            },
            "interrupted": self.interrupted,
            "status_codes": statuses,
            "errors": {
                "timeout": self.errors.timeout,
                "connect": self.errors.connect,
                "other": self.errors.other,
            },
            "first_error": self.first_error,
            "latency_ms": percentiles_json(self.latency),
            "service_time_ms": percentiles_json(self.service_time),
            "warning": self.warning(),
        })
    }
}

/// The table for people.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, label: &str, value: &str| {
            writeln!(f, "{label:<13}{value}")
        };
        row(f, "target", &self.target)?;
        row(f, "mix", &format!("{} (seed {})", self.mix, self.seed))?;
        row(
            f,
            "rate",
            &format!(
                "{:.1}/s achieved of {}/s requested, at most {} in flight",
                self.rate_achieved, self.rate_requested, self.concurrency
            ),
        )?;
        row(
            f,
            "duration",
            &format!("{:.3} s", self.duration.as_secs_f64()),
        )?;
        row(
            f,
            "requests",
            &format!(
                "{} sent of {} planned, {} completed, {} failed",
                self.sent, self.planned, self.completed, self.failed
            ),
        )?;
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        row(f, "status codes", &or_none(statuses.join(", ")))?;
        row(
            f,
            "errors",
            &format!(
                "timeout: {}, connect: {}, other: {}",
                self.errors.timeout, self.errors.connect, self.errors.other
            ),
        )?;
        if let Some(cause) = &self.first_error {
            row(f, "first error", cause)?;
        }
        row(
            f,
            "latency",
            &format!("{}  (from each scheduled time)", percentiles(self.latency)),
        )?;
        row(
            f,
            "service time",
            &format!("{}  (from each send)", percentiles(self.service_time)),
        )?;
        if self.interrupted {
            writeln!(
                f,
                "interrupted: stopped after {} of {} planned requests",
                self.sent, self.planned
            )?;
        }
        if let Some(warning) = self.warning() {
            writeln!(f, "{warning}")?;
        }
        Ok(())
    }
}

fn percentiles(p: Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            millis(p.p50),
            millis(p.p90),
            millis(p.p99),
            millis(p.max)
        ),
        None => "none (no answers)".to_string(),
    }
}

fn percentiles_json(p: Option<Percentiles>) -> Value {
    match p {
        Some(p) => json!({
            "p50": millis(p.p50), "p90": millis(p.p90), "p99": millis(p.p99), "max": millis(p.max),
        }),
        None => json!({ "p50": null, "p90": null, "p99": null, "max": null }),
    }
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "none".to_string()
    } else {
        text
    }
}

fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::{ErrorKind, Outcome, TransportError};

    fn settings() -> RunSettings {
        RunSettings {
            target: "http://127.0.0.1:5000/".to_string(),
            mix: "/=60,/random=40".to_string(),
            seed: 1,
            concurrency: 64,
            timeout: Duration::from_secs(10),
            rate: 100.0,
        }
    }

    /// A run of `sent` requests at 100/s, each sent `late` after its due time, with the outcomes
    /// that `result` gives each one.
    fn report(
        sent: u64,
        late: Duration,
        result: impl Fn(u64) -> Result<u16, TransportError>,
    ) -> Report {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100.0, None, Some(sent));
        let mut recorder = Recorder::default();
        for i in 0..sent {
            let due = schedule.due(i);
            schedule.sent(due + late);
            recorder.record(Outcome {
                due,
                started: due + late,
                finished: due + late + Duration::from_millis(2),
                result: result(i),
            });
        }
        Report::new(settings(), start, &schedule, recorder, false)
    }

    fn refused() -> TransportError {
        TransportError {
            kind: ErrorKind::Connect,
            cause: "Connection refused (os error 111)".to_string(),
        }
    }

    #[test]
    fn the_json_summary_holds_every_count() {
        let report = report(
            10,
            Duration::ZERO,
            |i| if i < 7 { Ok(200) } else { Ok(404) },
        );

        let json = report.to_json();

        assert_eq!(json["requests"]["sent"], 10);
        assert_eq!(json["requests"]["completed"], 10);
        assert_eq!(json["requests"]["failed"], 0);
        assert_eq!(json["status_codes"]["200"], 7);
        assert_eq!(json["status_codes"]["404"], 3);
        assert_eq!(json["errors"]["connect"], 0);
        assert_eq!(json["rate"]["requested"], 100.0);
        assert_eq!(json["rate"]["achieved"], 100.0);
        assert_eq!(json["rate"]["kept"], true);
        assert_eq!(json["warning"], Value::Null);
        assert_eq!(json["seed"], 1);
        assert!(json["latency_ms"]["p99"].as_f64().unwrap() >= 2.0);
        assert!((report.duration.as_secs_f64() - 0.092).abs() < 0.001);
    }

    #[test]
    fn a_run_that_fell_behind_says_why() {
        let report = report(10, Duration::from_millis(30), |_| Ok(200));

        let warning = report.warning().unwrap();

        assert!(!report.rate_kept());
        assert!(
            warning.starts_with("could not keep 100/s: achieved"),
            "{warning}"
        );
        assert!(warning.contains("10 requests started late"), "{warning}");
        assert_eq!(report.to_json()["warning"], warning.as_str());
        assert!(report.to_string().contains(&warning));
    }

    #[test]
    fn a_brief_wait_for_a_slot_keeps_the_rate_but_is_reported() {
        let mut report = report(10, Duration::from_millis(2), |_| Ok(200));
        report.waited_for_slot = 3;

        let warning = report.warning().unwrap();

        assert!(report.rate_kept());
        assert_eq!(report.to_json()["rate"]["kept"], true);
        assert!(
            warning.starts_with("kept 100/s, but 3 requests waited"),
            "{warning}"
        );
        assert!(warning.contains("concurrency limit of 64"), "{warning}");
    }

    #[test]
    fn a_target_is_unreachable_only_when_every_request_failed_to_connect() {
        let none = report(5, Duration::ZERO, |_| Err(refused()));
        let some = report(5, Duration::ZERO, |i| {
            if i == 4 { Ok(500) } else { Err(refused()) }
        });

        assert!(none.unreachable());
        assert!(!some.unreachable());
        assert_eq!(none.to_json()["latency_ms"]["p50"], Value::Null);
        assert!(none.to_string().contains("Connection refused"));
    }

    #[test]
    fn the_table_names_each_measure_on_a_line_of_its_own() {
        let table = report(10, Duration::ZERO, |_| Ok(200)).to_string();

        for label in [
            "target",
            "rate",
            "duration",
            "requests",
            "status codes",
            "errors",
            "latency",
            "service time",
        ] {
            assert!(
                table.lines().any(|line| line.starts_with(label)),
                "no {label} line in\n{table}"
            );
        }
        assert!(table.contains("200: 10"), "{table}");
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table}"
        );
    }
}
