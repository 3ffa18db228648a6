//! What became of each request of a `load` run, recorded as the outcomes arrive: counts by status
//! and by error, and latency histograms.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// What became of one request.
#[derive(Debug)]
pub struct Outcome {
    /// When the schedule wanted it sent.
    pub due: Instant,
    /// When it was handed to the HTTP client.
    pub started: Instant,
    /// When the answer's body ended, or the request failed.
    pub finished: Instant,
    /// The status code, or why no answer came.
    pub result: Result<u16, TransportError>,
}

/// A request that got no HTTP answer.
#[derive(Debug)]
pub struct TransportError {
    pub kind: ErrorKind,
    /// The innermost cause, such as "Connection refused (os error 111)".
    pub cause: String,
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No connection could be made (refused, unresolvable host, TLS handshake, connect timeout).
    Connect,
    /// Connected, but the answer did not end within `--timeout`.
    Timeout,
    /// Anything else, such as a connection closed in the middle of an answer.
    Other,
}

/// Transport errors by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub connect: u64,
    pub timeout: u64,
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.other
    }
}

/// Collects outcomes as they arrive.
#[derive(Debug)]
pub struct Recorder {
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    pub errors: ErrorCounts,
    /// The cause of the first transport error.
    pub first_error: Option<String>,
    /// Microseconds from the due time to the end of the answer: what a user would have waited.
    latency: Histogram<u64>,
    /// Microseconds from sending to the end of the answer: what the server took.
    service_time: Histogram<u64>,
    /// When the last request ended.
    pub last_finished: Option<Instant>,
}

impl Default for Recorder {
    fn default() -> Self {
        // 1 µs to one hour at 3 significant figures: about 200 kB each, one bucket per 0.1 %.
        let histogram =
            || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid");
        Self {
            statuses: BTreeMap::new(),
            errors: ErrorCounts::default(),
            first_error: None,
            latency: histogram(),
            service_time: histogram(),
            last_finished: None,
        }
    }
}

impl Recorder {
    /// Adds one request's outcome.
    pub fn record(&mut self, outcome: Outcome) {
        self.last_finished = self.last_finished.max(Some(outcome.finished));
        match outcome.result {
            Ok(status) => {
                *self.statuses.entry(status).or_default() += 1;
                let micros = |from: Instant| {
                    outcome.finished.saturating_duration_since(from).as_micros() as u64
                };
                self.latency.saturating_record(micros(outcome.due).max(1));
                self.service_time
                    .saturating_record(micros(outcome.started).max(1));
            }
            Err(error) => {
                match error.kind {
                    ErrorKind::Connect => self.errors.connect += 1,
                    ErrorKind::Timeout => self.errors.timeout += 1,
                    ErrorKind::Other => self.errors.other += 1,
                }
                self.first_error.get_or_insert(error.cause);
            }
        }
    }

    /// Requests that got an answer.
    pub fn completed(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Requests that failed without an answer.
    pub fn failed(&self) -> u64 {
        self.errors.total()
    }

    /// Percentiles of the time from each due time to the end of its answer.
    pub fn latency(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latency)
    }

    /// Percentiles of the time from each send to the end of its answer.
    pub fn service_time(&self) -> Option<Percentiles> {
        Percentiles::of(&self.service_time)
    }
}

/// Latency percentiles; `None` when no request got an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let at = |q| Duration::from_micros(histogram.value_at_quantile(q));
        Some(Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: Duration::from_micros(histogram.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(start: Instant, due_ms: u64, sent_ms: u64, done_ms: u64, status: u16) -> Outcome {
        Outcome {
            due: start + Duration::from_millis(due_ms),
            started: start + Duration::from_millis(sent_ms),
            finished: start + Duration::from_millis(done_ms),
            result: Ok(status),
        }
    }

    fn failed(start: Instant, kind: ErrorKind, cause: &str) -> Outcome {
        Outcome {
            due: start,
            started: start,
            finished: start + Duration::from_millis(1),
            result: Err(TransportError {
                kind,
                cause: cause.to_string(),
            }),
        }
    }

    #[test]
    fn answers_are_counted_by_status_and_errors_by_kind() {
        let start = Instant::now();
        let mut recorder = Recorder::default();

        recorder.record(answered(start, 0, 0, 1, 200));
        recorder.record(answered(start, 0, 0, 1, 404));
        recorder.record(answered(start, 0, 0, 1, 200));
        recorder.record(failed(start, ErrorKind::Connect, "refused"));
        recorder.record(failed(start, ErrorKind::Timeout, "timed out"));
        recorder.record(failed(start, ErrorKind::Other, "reset"));

        assert_eq!(recorder.statuses, BTreeMap::from([(200, 2), (404, 1)]));
        assert_eq!(
            recorder.errors,
            ErrorCounts {
                connect: 1,
                timeout: 1,
                other: 1
            }
        );
        assert_eq!(recorder.completed(), 3);
        assert_eq!(recorder.failed(), 3);
        assert_eq!(recorder.first_error.as_deref(), Some("refused"));
    }

    #[test]
    fn latency_counts_from_the_due_time_and_service_time_from_the_send() {
        let start = Instant::now();
        let mut recorder = Recorder::default();

        // Sent 40 ms late (the concurrency limit held it back), answered 2 ms after.
        recorder.record(answered(start, 0, 40, 42, 200));

        let latency = recorder.latency().unwrap().max.as_micros();
        let service = recorder.service_time().unwrap().max.as_micros();
        // Histogram buckets hold three significant figures.
        assert!(latency.abs_diff(42_000) <= 42, "{latency} µs");
        assert!(service.abs_diff(2_000) <= 2, "{service} µs");
        assert_eq!(
            recorder.last_finished,
            Some(start + Duration::from_millis(42))
        );
    }

    #[test]
    fn percentiles_come_from_the_answers_only() {
        let start = Instant::now();
        let mut recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.record(answered(start, 0, 0, ms, 200));
        }
        recorder.record(failed(start, ErrorKind::Timeout, "timed out"));

        let p = recorder.latency().unwrap();

        let ms = |d: Duration| (d.as_micros() as f64 / 1000.0).round() as u64;
        assert_eq!(
            (ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max)),
            (50, 90, 99, 100)
        );
        assert_eq!(Recorder::default().latency(), None);
    }
}
