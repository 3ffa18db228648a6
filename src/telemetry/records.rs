//! Log records over OpenTelemetry (`OTEL_LOGS_EXPORTER`): the logger provider, its batch log
//! record processor (`OTEL_BLRP_*`) and its exporter, bounded and counted as spans are in
//! [`super::loss`].
//!
//! At most `OTEL_BLRP_MAX_QUEUE_SIZE` records wait for export, those being exported included;
//! a record emitted while the queue is full is dropped and counted, never waited for. An export
//! is bounded by `OTEL_BLRP_EXPORT_TIMEOUT`; a failed one starts the same back-off as for spans,
//! during which batches are given up without being encoded; both count their records as failed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry::{
    InstrumentationScope,
    logs::{LogRecord as _, Severity},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    logs::{
        BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, LogProcessor, SdkLogRecord,
        SdkLoggerProvider,
    },
};

use super::deadline::Deadline;
use super::loss::{Backoff, Batching, Losses};

/// The logger provider: `processor` and the resource shared with spans and metrics.
pub fn provider(resource: Resource, processor: BoundedLogProcessor) -> SdkLoggerProvider {
    SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(processor)
        .build()
}

/// Wraps `exporter` in a batch log record processor whose queue is bounded, whose exports are
/// bounded in time, and whose losses are counted.
pub fn bounded_processor<E: LogExporter + 'static>(
    exporter: E,
    losses: Arc<Losses>,
    batching: Batching,
) -> BoundedLogProcessor {
    let pending = Arc::new(AtomicUsize::new(0));
    let counting = CountingLogExporter {
        inner: exporter,
        pending: pending.clone(),
        losses: losses.clone(),
        backoff: Mutex::new(Backoff::default()),
        deadline: Deadline::new(batching.export_timeout),
    };
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(batching.capacity)
        .with_max_export_batch_size(batching.batch_size)
        .with_scheduled_delay(batching.every)
        .build();
    let inner = BatchLogProcessor::builder(counting)
        .with_batch_config(config)
        .build();
    BoundedLogProcessor {
        inner,
        pending,
        capacity: batching.capacity,
        losses,
    }
}

/// A batch log record processor with an admission count in front of it: the SDK's processor
/// drops records at a full queue too, but counts them only for a message at shutdown.
#[derive(Debug)]
pub struct BoundedLogProcessor {
    inner: BatchLogProcessor,
    pending: Arc<AtomicUsize>,
    capacity: usize,
    losses: Arc<Losses>,
}

impl LogProcessor for BoundedLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        // The tracing bridge sets no time: a record of an event takes the time the SDK observed
        // it, as its line does, rather than none (an OTLP time of 0 means "unknown").
        if record.timestamp().is_none()
            && let Some(observed) = record.observed_timestamp()
        {
            record.set_timestamp(observed);
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.losses.drop_log_records(1);
            return;
        }
        self.inner.emit(record, scope);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Releases pending places once a batch is done, bounds each export in time, counts the records
/// of failed exports, and backs off while exports fail.
#[derive(Debug)]
struct CountingLogExporter<E> {
    inner: E,
    pending: Arc<AtomicUsize>,
    losses: Arc<Losses>,
    backoff: Mutex<Backoff>,
    deadline: Deadline,
}

impl<E: LogExporter> LogExporter for CountingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let size = batch.iter().count();
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
            Err(OTelSdkError::InternalFailure(
                "log export skipped: the last attempt failed, retrying after a back-off".into(),
            ))
        };
        self.pending.fetch_sub(size, Ordering::AcqRel);
        if result.is_err() {
            self.losses.fail_log_records(size as u64);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};

    use super::*;

    /// An exporter whose exports never end: a collector that never answers.
    #[derive(Debug)]
    struct Stuck;

    impl LogExporter for Stuck {
        async fn export(&self, _batch: LogBatch<'_>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    /// An exporter that always fails: a closed port.
    #[derive(Debug)]
    struct Refused;

    impl LogExporter for Refused {
        async fn export(&self, _batch: LogBatch<'_>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("connection refused".into()))
        }
    }

    fn batching(capacity: usize) -> Batching {
        Batching {
            capacity,
            batch_size: 2,
            every: Duration::from_millis(10),
            export_timeout: Duration::from_secs(60),
        }
    }

    fn emit(provider: &SdkLoggerProvider, n: usize) {
        let logger = provider.logger("test");
        for i in 0..n {
            let mut record = logger.create_log_record();
            record.set_body(format!("record {i}").into());
            logger.emit(record);
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_records_without_waiting() {
        let losses = Arc::new(Losses::default());
        let provider = provider(
            Resource::builder_empty().build(),
            bounded_processor(Stuck, losses.clone(), batching(4)),
        );

        let start = Instant::now();
        emit(&provider, 1_000);
        let took = start.elapsed();

        assert_eq!(losses.totals().dropped_log_records, 996);
        assert!(took < Duration::from_secs(1), "emitting took {took:?}");
        let _ = provider.shutdown_with_timeout(Duration::from_millis(10));
    }

    #[test]
    fn records_of_failed_exports_are_counted_and_their_places_freed() {
        let losses = Arc::new(Losses::default());
        let provider = provider(
            Resource::builder_empty().build(),
            bounded_processor(Refused, losses.clone(), batching(8)),
        );

        emit(&provider, 6);
        let _ = provider.force_flush();
        let start = Instant::now();
        while losses.totals().failed_log_records < 6 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }

        let totals = losses.totals();
        assert_eq!(totals.failed_log_records, 6, "{totals:?}");
        assert_eq!(totals.dropped_log_records, 0, "places were freed");
        let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
    }
}
