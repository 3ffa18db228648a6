//! The request histograms, classic and native at once.
//!
//! prometheus-client 0.26 can encode a histogram with classic and native buckets in one protobuf
//! message (`encode_histogram_with_native`), but only with exemplars of its own making (its
//! `Exemplar` has no public constructor) and never beside the native buckets; its
//! `HistogramWithExemplars` has no native variant. So each series keeps two things:
//!
//! - the crate's `HistogramWithExemplars`, which the text formats are encoded from, exactly as
//!   before native histograms;
//! - with native histograms on, a [`State`] of its own under one lock: count, sum, classic and
//!   native buckets and the latest exemplar of each classic bucket, from which the protobuf
//!   message is built (with the crate's generated types), so that its classic and native halves
//!   always agree.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::SystemTime,
};

use prometheus_client::{
    encoding::{
        EncodeLabelSet, EncodeMetric, MetricEncoder,
        prometheus_protobuf::prometheus_data_model as pb,
    },
    metrics::{MetricType, exemplar::HistogramWithExemplars},
};

use super::{
    labels::TraceExemplar,
    native::{Buckets, Schema, ZERO_THRESHOLD},
};
use crate::metrics::{BUCKETS, TraceRef, snapshot::NativeBucket, snapshot::NativeHistogram};

/// The number of classic buckets, `+Inf` included.
const CLASSIC: usize = BUCKETS.len() + 1;

/// An exemplar as the protobuf format carries it: the ids, the value, and when.
#[derive(Debug, Clone, Copy)]
struct Exemplar {
    trace: TraceRef,
    value: f64,
    at: SystemTime,
}

/// A series' values for the protobuf format and the metrics page, under one lock.
#[derive(Debug)]
struct State {
    count: u64,
    sum: f64,
    /// Per-bucket (not cumulative) counts over [`BUCKETS`], `+Inf` last.
    classic: [u64; CLASSIC],
    /// The latest exemplar in each classic bucket; also the native histogram's exemplars.
    exemplars: [Option<Exemplar>; CLASSIC],
    zero_count: u64,
    native: Buckets,
    /// When the series was made: the protobuf `start_timestamp` (the created timestamp).
    created: SystemTime,
}

/// One series of a request histogram. Clones share the series: the per-route cache keeps one.
#[derive(Debug, Clone)]
pub struct DualHistogram {
    classic: HistogramWithExemplars<TraceExemplar>,
    native: Option<(Arc<Schema>, Arc<Mutex<State>>)>,
}

impl DualHistogram {
    /// A series with the classic [`BUCKETS`], and native buckets of `schema` when it is given.
    pub fn new(schema: Option<&Arc<Schema>>) -> Self {
        Self {
            classic: HistogramWithExemplars::new(BUCKETS.into_iter()),
            native: schema.map(|schema| {
                let state = State {
                    count: 0,
                    sum: 0.0,
                    classic: [0; CLASSIC],
                    exemplars: [None; CLASSIC],
                    zero_count: 0,
                    native: Buckets::default(),
                    created: SystemTime::now(),
                };
                (schema.clone(), Arc::new(Mutex::new(state)))
            }),
        }
    }

    /// Observes `seconds`; `trace` and `at`, when the request was sampled, make its exemplar.
    pub fn observe(&self, seconds: f64, trace: Option<TraceRef>, at: Option<SystemTime>) {
        self.classic
            .observe(seconds, trace.map(TraceExemplar::from), at);
        let Some((schema, state)) = &self.native else {
            return;
        };
        // Worked out before taking the lock, so that the lock is held for a few stores only.
        let bucket = BUCKETS.partition_point(|bound| *bound < seconds);
        let index = (seconds > ZERO_THRESHOLD).then(|| schema.index(seconds));
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.count += 1;
        state.sum += seconds;
        state.classic[bucket] += 1;
        if let (Some(trace), Some(at)) = (trace, at) {
            state.exemplars[bucket] = Some(Exemplar {
                trace,
                value: seconds,
                at,
            });
        }
        match index {
            Some(index) => state.native.add(index),
            None => state.zero_count += 1,
        }
    }

    /// The protobuf message of this series with `labels`, classic and native buckets side by
    /// side; `None` with native histograms off (the crate's own encoding is then complete).
    pub fn protobuf(&self, labels: Vec<pb::LabelPair>) -> Option<pb::Metric> {
        let (schema, state) = self.native.as_ref()?;
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let exemplar = |e: &Exemplar| pb::Exemplar {
            label: vec![
                label("trace_id", e.trace.trace_id),
                label("span_id", e.trace.span_id),
            ],
            value: e.value,
            timestamp: Some(e.at.into()),
        };
        let mut cumulative = 0;
        let bucket = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(state.classic.iter().zip(&state.exemplars))
            .map(|(upper_bound, (count, e))| {
                cumulative += count;
                pb::Bucket {
                    cumulative_count: cumulative,
                    upper_bound,
                    exemplar: e.as_ref().map(exemplar),
                    ..Default::default()
                }
            })
            .collect();
        let (spans, positive_delta) = state.native.spans_and_deltas();
        let histogram = pb::Histogram {
            sample_count: state.count,
            sample_sum: state.sum,
            bucket,
            start_timestamp: Some(state.created.into()),
            schema: i32::from(schema.number()),
            zero_threshold: ZERO_THRESHOLD,
            zero_count: state.zero_count,
            positive_span: spans
                .into_iter()
                .map(|(offset, length)| pb::BucketSpan { offset, length })
                .collect(),
            positive_delta,
            exemplars: state.exemplars.iter().flatten().map(exemplar).collect(),
            ..Default::default()
        };
        Some(pb::Metric {
            label: labels,
            histogram: Some(histogram),
            ..Default::default()
        })
    }

    /// The native histogram as the metrics page shows it; `None` with native histograms off.
    pub fn native(&self) -> Option<NativeHistogram> {
        let (schema, state) = self.native.as_ref()?;
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        Some(NativeHistogram {
            schema: schema.number(),
            zero_threshold: ZERO_THRESHOLD,
            zero_count: state.zero_count,
            count: state.count,
            sum: state.sum,
            buckets: state
                .native
                .iter()
                .map(|(index, count)| NativeBucket {
                    lower: schema.upper_bound(index - 1),
                    upper: schema.upper_bound(index),
                    count,
                })
                .collect(),
        })
    }
}

/// A label pair of the protobuf format.
fn label(name: &str, value: impl std::fmt::Display) -> pb::LabelPair {
    pb::LabelPair {
        name: name.to_string(),
        value: value.to_string(),
    }
}

impl EncodeMetric for DualHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.classic.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The series of a labelled request histogram, by label set: prometheus-client's `Family` cannot
/// be iterated from outside, and the protobuf messages are built here.
#[derive(Debug)]
pub struct DualFamily<L> {
    series: Arc<RwLock<HashMap<L, DualHistogram>>>,
    schema: Option<Arc<Schema>>,
}

impl<L> Clone for DualFamily<L> {
    fn clone(&self) -> Self {
        Self {
            series: self.series.clone(),
            schema: self.schema.clone(),
        }
    }
}

impl<L: Clone + Hash + Eq> DualFamily<L> {
    /// An empty family whose series have native buckets of `schema`, if given.
    pub fn new(schema: Option<Arc<Schema>>) -> Self {
        Self {
            series: Arc::default(),
            schema,
        }
    }

    /// The series of `labels`, made on first use.
    pub fn get_or_create(&self, labels: &L) -> DualHistogram {
        if let Some(series) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return series.clone();
        }
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels.clone())
            .or_insert_with(|| DualHistogram::new(self.schema.as_ref()))
            .clone()
    }

    /// Every series with its labels.
    pub fn series(&self) -> Vec<(L, DualHistogram)> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        series
            .iter()
            .map(|(labels, histogram)| (labels.clone(), histogram.clone()))
            .collect()
    }
}

impl<L: Clone + Hash + Eq + EncodeLabelSet> EncodeMetric for DualFamily<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        for (labels, histogram) in series.iter() {
            histogram.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }

    // As prometheus-client's `Family`: no descriptor before the first series.
    fn is_empty(&self) -> bool {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use opentelemetry::trace::{SpanId, TraceId};

    fn trace() -> TraceRef {
        TraceRef {
            trace_id: TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
        }
    }

    #[test]
    fn one_message_carries_classic_and_native_buckets_that_agree() {
        let histogram = DualHistogram::new(Some(&Arc::new(Schema::new(3))));

        for seconds in [0.0, 0.003, 0.003, 0.2, 1.0, 30.0] {
            histogram.observe(seconds, None, None);
        }
        let metric = histogram.protobuf(vec![label("a", "b")]).unwrap();
        let h = metric.histogram.unwrap();

        assert_eq!((h.sample_count, h.schema, h.zero_count), (6, 3, 1));
        assert!((h.sample_sum - 31.206).abs() < 1e-9);
        assert_eq!(h.bucket.len(), CLASSIC);
        assert_eq!(h.bucket[0].cumulative_count, 3, "0 and 3 ms up to 5 ms");
        assert_eq!(h.bucket.last().unwrap().cumulative_count, 6);
        let native: i64 = h
            .positive_delta
            .iter()
            .scan(0, |count, delta| {
                *count += delta;
                Some(*count)
            })
            .sum();
        assert_eq!(native as u64 + h.zero_count, h.sample_count);
        assert!(h.start_timestamp.is_some());
        assert_eq!(metric.label[0].name, "a");
    }

    #[test]
    fn exemplars_go_to_their_classic_bucket_and_to_the_native_histogram() {
        let histogram = DualHistogram::new(Some(&Arc::new(Schema::new(3))));
        let at = SystemTime::now();

        histogram.observe(0.03, Some(trace()), Some(at));
        histogram.observe(0.2, None, None);
        let h = histogram.protobuf(Vec::new()).unwrap().histogram.unwrap();

        let with_exemplar: Vec<_> = h
            .bucket
            .iter()
            .filter_map(|b| b.exemplar.as_ref().map(|e| (b.upper_bound, e.value)))
            .collect();
        assert_eq!(with_exemplar, [(0.05, 0.03)]);
        assert_eq!(h.exemplars.len(), 1);
        let exemplar = &h.exemplars[0];
        assert_eq!(exemplar.label[0].value, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(exemplar.label[1].value, "b7ad6b7169203331");
        assert!(exemplar.timestamp.is_some(), "native exemplars need a time");
    }

    #[test]
    fn without_a_schema_there_is_no_native_half() {
        let histogram = DualHistogram::new(None);

        histogram.observe(0.1, None, None);

        assert!(histogram.protobuf(Vec::new()).is_none());
        assert!(histogram.native().is_none());
    }

    #[test]
    fn the_page_gets_each_native_bucket_with_its_bounds() {
        let histogram = DualHistogram::new(Some(&Arc::new(Schema::new(0))));

        histogram.observe(0.75, None, None);
        histogram.observe(3.0, None, None);
        let native = histogram.native().unwrap();

        let bounds: Vec<_> = native
            .buckets
            .iter()
            .map(|b| (b.lower, b.upper, b.count))
            .collect();
        assert_eq!(bounds, [(0.5, 1.0, 1), (2.0, 4.0, 1)]);
        assert_eq!((native.count, native.schema), (2, 0));
    }
}
