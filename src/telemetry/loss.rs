//! Bounded, counted telemetry loss. With a dead or slow collector the app keeps serving at the same
//! speed: at most `OTEL_BSP_MAX_QUEUE_SIZE` spans ([`Batching::capacity`]) wait for export, the
//! rest are dropped and counted; an export that outlasts its time limit is given up and counted; and
//! losses are logged at most once per [`LOG_INTERVAL`] with running totals, never once per span.
//! After a failed span export, the next ones are given up without being encoded or sent, for a
//! back-off that doubles up to [`MAX_BACKOFF`]: a collector that refuses connections would
//! otherwise cost the CPU of encoding every span, for nothing. Log records (`OTEL_BLRP_*`, see
//! [`super::records`]) are bounded and counted the same way, and log lines that the log writer
//! drops are counted here too.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry::Context;

use super::deadline::Deadline;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
    trace::{BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor},
};

/// Shortest time between two loss reports in the log.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The first wait after a failed span export, before the next attempt.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two span export attempts while they fail.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Running totals of lost telemetry.
#[derive(Debug)]
pub struct Losses {
    dropped_spans: AtomicU64,
    failed_spans: AtomicU64,
    failed_metric_exports: AtomicU64,
    dropped_log_records: AtomicU64,
    failed_log_records: AtomicU64,
    dropped_log_lines: AtomicU64,
    last_report: Mutex<Option<Instant>>,
    /// When the next warning about dropped log lines may be given, in milliseconds after
    /// `created`: an atomic, as lines are dropped on the request path.
    next_log_warning: AtomicU64,
    created: Instant,
}

impl Default for Losses {
    fn default() -> Self {
        Self {
            dropped_spans: AtomicU64::default(),
            failed_spans: AtomicU64::default(),
            failed_metric_exports: AtomicU64::default(),
            dropped_log_records: AtomicU64::default(),
            failed_log_records: AtomicU64::default(),
            dropped_log_lines: AtomicU64::default(),
            last_report: Mutex::default(),
            next_log_warning: AtomicU64::default(),
            created: Instant::now(),
        }
    }
}

/// The running totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossTotals {
    /// Spans dropped because the export queue was full.
    pub dropped_spans: u64,
    /// Spans in exports that failed, or that were given up during a back-off.
    pub failed_spans: u64,
    /// Metric exports that failed.
    pub failed_metric_exports: u64,
    /// Log records dropped because their export queue was full.
    pub dropped_log_records: u64,
    /// Log records in exports that failed, or that were given up during a back-off.
    pub failed_log_records: u64,
    /// Log lines dropped because the log writer fell behind.
    pub dropped_log_lines: u64,
}

impl Losses {
    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
        // Only the loss path takes this lock, and only to rate-limit the report.
        let Ok(mut last) = self.last_report.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < LOG_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let totals = self.totals();
        tracing::warn!(
            dropped_spans = totals.dropped_spans,
            failed_spans = totals.failed_spans,
            failed_metric_exports = totals.failed_metric_exports,
            dropped_log_records = totals.dropped_log_records,
            failed_log_records = totals.failed_log_records,
            "telemetry is being lost (totals since start): is the collector at OTEL_EXPORTER_OTLP_ENDPOINT up?"
        );
    }

    /// Counts `records` more log records dropped at a full export queue.
    pub(super) fn drop_log_records(&self, records: u64) {
        self.add(&self.dropped_log_records, records);
    }

    /// Counts `records` more log records lost in failed (or skipped) exports.
    pub(super) fn fail_log_records(&self, records: u64) {
        self.add(&self.failed_log_records, records);
    }

    /// Counts `lines` more log lines dropped. Returns the running total when a warning is due:
    /// at the first drop, then at most once per [`LOG_INTERVAL`]. The warning cannot go to the
    /// log, whose writer is what fell behind.
    pub fn drop_log_lines(&self, lines: u64) -> Option<u64> {
        let total = self.dropped_log_lines.fetch_add(lines, Ordering::Relaxed) + lines;
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_log_warning.load(Ordering::Relaxed);
        let next = now.saturating_add(LOG_INTERVAL.as_millis() as u64);
        let warn = now >= due
            && self
                .next_log_warning
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        warn.then_some(total)
    }

    /// The running totals.
    pub fn totals(&self) -> LossTotals {
        LossTotals {
            dropped_spans: self.dropped_spans.load(Ordering::Relaxed),
            failed_spans: self.failed_spans.load(Ordering::Relaxed),
            failed_metric_exports: self.failed_metric_exports.load(Ordering::Relaxed),
            dropped_log_records: self.dropped_log_records.load(Ordering::Relaxed),
            failed_log_records: self.failed_log_records.load(Ordering::Relaxed),
            dropped_log_lines: self.dropped_log_lines.load(Ordering::Relaxed),
        }
    }

    /// Losses that start at `totals`, for tests of what reads them.
    #[cfg(test)]
    pub(crate) fn with_totals(totals: LossTotals) -> Self {
        let losses = Self::default();
        losses
            .dropped_spans
            .store(totals.dropped_spans, Ordering::Relaxed);
        losses
            .failed_spans
            .store(totals.failed_spans, Ordering::Relaxed);
        losses
            .failed_metric_exports
            .store(totals.failed_metric_exports, Ordering::Relaxed);
        losses
            .dropped_log_records
            .store(totals.dropped_log_records, Ordering::Relaxed);
        losses
            .failed_log_records
            .store(totals.failed_log_records, Ordering::Relaxed);
        losses
            .dropped_log_lines
            .store(totals.dropped_log_lines, Ordering::Relaxed);
        losses
    }
}

/// How spans are batched for export (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Spans queued or being exported at most; also the batch processor's own queue, which
    /// therefore never overflows: every drop happens, and is counted, here.
    pub capacity: usize,
    /// Spans in one export at most.
    pub batch_size: usize,
    /// The longest wait between two exports (sooner when a batch is full).
    pub every: Duration,
    /// The time limit of one export.
    pub export_timeout: Duration,
}

/// Wraps `exporter` in a batch processor whose queue is bounded, whose exports are bounded in
/// time, and whose losses are counted.
pub fn bounded_processor<E: SpanExporter + 'static>(
    exporter: E,
    losses: Arc<Losses>,
    batching: Batching,
) -> BoundedProcessor {
    let pending = Arc::new(AtomicUsize::new(0));
    let counting = CountingSpanExporter {
        inner: exporter,
        pending: pending.clone(),
        losses: losses.clone(),
        backoff: Mutex::new(Backoff::default()),
        deadline: Deadline::new(batching.export_timeout),
    };
    let config = opentelemetry_sdk::trace::BatchConfigBuilder::default()
        .with_max_queue_size(batching.capacity)
        .with_max_export_batch_size(batching.batch_size)
        .with_scheduled_delay(batching.every)
        .build();
    let inner = BatchSpanProcessor::builder(counting)
        .with_batch_config(config)
        .build();
    BoundedProcessor {
        inner,
        pending,
        capacity: batching.capacity,
        losses,
    }
}

/// A batch span processor with an admission count in front of it.
#[derive(Debug)]
pub struct BoundedProcessor {
    inner: BatchSpanProcessor,
    pending: Arc<AtomicUsize>,
    capacity: usize,
    losses: Arc<Losses>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // The batch processor discards unsampled spans itself; they never count as pending.
        if span.span_context.is_sampled()
            && self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity
        {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.losses.add(&self.losses.dropped_spans, 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Releases pending slots once a batch is done, bounds each export in time, counts the spans of
/// failed exports, and backs off while exports fail.
#[derive(Debug)]
struct CountingSpanExporter<E> {
    inner: E,
    pending: Arc<AtomicUsize>,
    losses: Arc<Losses>,
    backoff: Mutex<Backoff>,
    deadline: Deadline,
}

/// When the next export may be tried, and how long to wait after it if it fails too.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    retry_at: Option<Instant>,
    wait: Duration,
}

impl Backoff {
    /// Whether an export may be tried at `now`.
    pub(super) fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Records the outcome of an export tried at `now`.
    pub(super) fn record(&mut self, ok: bool, now: Instant) {
        if ok {
            *self = Backoff::default();
        } else {
            self.wait = (self.wait * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
            self.retry_at = Some(now + self.wait);
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let size = batch.len();
        let ready = self
            .backoff
            .lock()
            .map_or(true, |backoff| backoff.ready(Instant::now()));
        let result = if ready {
            let result = self.deadline.bound(self.inner.export(batch)).await;
            if let Ok(mut backoff) = self.backoff.lock() {
                backoff.record(result.is_ok(), Instant::now());
            }
            result
        } else {
            Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "span export skipped: the last attempt failed, retrying after a back-off".into(),
            ))
        };
        self.pending.fetch_sub(size, Ordering::AcqRel);
        if result.is_err() {
            self.losses.add(&self.losses.failed_spans, size as u64);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Bounds metric exports in time, and counts those that fail.
#[derive(Debug)]
pub struct CountingMetricExporter<E> {
    inner: E,
    losses: Arc<Losses>,
    deadline: Deadline,
}

impl<E> CountingMetricExporter<E> {
    /// `inner`, each export within `deadline`, failures counted in `losses`.
    pub fn new(inner: E, losses: Arc<Losses>, deadline: Deadline) -> Self {
        Self {
            inner,
            losses,
            deadline,
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for CountingMetricExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.deadline.bound(self.inner.export(metrics)).await;
        if result.is_err() {
            self.losses.add(&self.losses.failed_metric_exports, 1);
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_back_off_while_they_fail_and_resume_after_a_success() {
        let start = Instant::now();
        let mut backoff = Backoff::default();

        assert!(backoff.ready(start));
        let mut waits = Vec::new();
        for _ in 0..7 {
            backoff.record(false, start);
            waits.push(backoff.wait);
        }
        let ready_early = backoff.ready(start + Duration::from_secs(4));
        let ready_later = backoff.ready(start + MAX_BACKOFF);
        backoff.record(true, start);

        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            waits,
            [
                ms(250),
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(5000),
                ms(5000)
            ]
        );
        assert!(!ready_early && ready_later);
        assert!(backoff.ready(start), "a success ends the back-off");
    }

    #[test]
    fn losses_add_up_and_are_reported_at_most_once_per_interval() {
        let losses = Losses::default();

        losses.add(&losses.dropped_spans, 1);
        let first = *losses.last_report.lock().unwrap();
        for _ in 0..1000 {
            losses.add(&losses.dropped_spans, 1);
        }
        losses.add(&losses.failed_spans, 512);

        assert_eq!(
            losses.totals(),
            LossTotals {
                dropped_spans: 1001,
                failed_spans: 512,
                ..LossTotals::default()
            }
        );
        assert_eq!(
            *losses.last_report.lock().unwrap(),
            first,
            "no second report within the interval"
        );
    }

    #[test]
    fn dropped_log_lines_add_up_and_warn_at_the_first_drop_then_once_per_interval() {
        let losses = Losses::default();

        let first = losses.drop_log_lines(1);
        let then: Vec<_> = (0..1000).filter_map(|_| losses.drop_log_lines(2)).collect();

        assert_eq!(first, Some(1));
        assert!(then.is_empty(), "warnings within the interval: {then:?}");
        assert_eq!(losses.totals().dropped_log_lines, 2001);
    }
}
