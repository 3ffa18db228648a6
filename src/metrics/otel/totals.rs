//! The OTel backend's families as exported so far, added up across collections, for
//! `/view_metrics`. A cumulative collection holds the totals since the start and replaces the last
//! one; a delta collection (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta` or
//! `lowmemory`) holds only its interval and is added to them, so the page shows totals either way.
//!
//! An exponential histogram has no classic buckets: it is shown as cumulative buckets at its own
//! bounds, `base^i` with `base = 2^(2^-scale)`, the first one counting the zero bucket, so that
//! its counts, sum and quantiles read as an explicit histogram's do. Added deltas are merged at
//! the coarser of their scales, and coarsened further while they span more than the configured
//! number of buckets, as the SDK does within one collection.

use std::{collections::BTreeMap, time::SystemTime};

use opentelemetry_sdk::metrics::{
    Temporality,
    data::{
        AggregatedMetrics, ExponentialHistogramDataPoint, HistogramDataPoint, MetricData,
        ResourceMetrics,
    },
};

use crate::metrics::snapshot::{Bucket, Series, Snapshot};

/// The instrument of the per-route durations, the one with many series.
pub const SERVER_DURATION: &str = "http.server.request.duration";
/// The instrument of the original's histogram.
pub const PROCESSING: &str = "request_processing_seconds";

/// The attributes of one series of [`SERVER_DURATION`], under their Prometheus names.
type SeriesKey = (String, String, u16, String, Option<String>);

/// Everything exported so far.
#[derive(Debug)]
pub struct Totals {
    /// `http_requests`, `http_successful_request`, `http_error_4xx`, `http_error_5xx`.
    counters: [u64; 4],
    processing: Option<Histogram>,
    series: BTreeMap<SeriesKey, Histogram>,
    collected_at: Option<SystemTime>,
    /// The most buckets an added exponential histogram keeps (`EXPONENTIAL_HISTOGRAM_MAX_SIZE`).
    max_buckets: usize,
}

/// One histogram's totals.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    count: u64,
    sum: f64,
    buckets: Buckets,
}

#[derive(Debug, Clone, PartialEq)]
enum Buckets {
    /// Per-bucket counts over `bounds`, the last one `+Inf`'s own.
    Explicit {
        bounds: Vec<f64>,
        counts: Vec<u64>,
    },
    Exponential(Exponential),
}

/// The positive range of an exponential histogram: bucket `offset + i` holds `counts[i]` values
/// in `(base^(offset+i), base^(offset+i+1)]`. Durations are never negative.
#[derive(Debug, Clone, PartialEq)]
struct Exponential {
    scale: i8,
    zero_count: u64,
    offset: i32,
    counts: Vec<u64>,
}

impl Totals {
    /// No collection yet; added exponential histograms keep at most `max_buckets` buckets.
    pub fn new(max_buckets: usize) -> Self {
        Self {
            counters: [0; 4],
            processing: None,
            series: BTreeMap::new(),
            collected_at: None,
            max_buckets: max_buckets.max(2),
        }
    }

    /// Adds one collection: a cumulative value replaces the total, a delta adds to it.
    pub fn add(&mut self, collected: &ResourceMetrics) {
        let mut at = None;
        for metric in collected.scope_metrics().flat_map(|scope| scope.metrics()) {
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    let index = match metric.name() {
                        "http_requests" => 0,
                        "http_successful_request" => 1,
                        "http_error_4xx" => 2,
                        "http_error_5xx" => 3,
                        _ => continue,
                    };
                    let value: u64 = sum.data_points().map(|p| p.value()).sum();
                    let total = &mut self.counters[index];
                    *total = match sum.temporality() {
                        Temporality::Delta => *total + value,
                        _ => value,
                    };
                    if index == 0 {
                        at = Some(sum.time());
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                    let delta = histogram.temporality() == Temporality::Delta;
                    let points = histogram
                        .data_points()
                        .map(|p| (attributes(p.attributes()), explicit(p)));
                    self.add_points(metric.name(), delta, points);
                }
                AggregatedMetrics::F64(MetricData::ExponentialHistogram(histogram)) => {
                    let delta = histogram.temporality() == Temporality::Delta;
                    let points = histogram
                        .data_points()
                        .map(|p| (attributes(p.attributes()), exponential(p)));
                    self.add_points(metric.name(), delta, points);
                }
                _ => {}
            }
        }
        // A delta collection without requests may hold no `http_requests` point.
        self.collected_at = Some(at.unwrap_or_else(SystemTime::now));
    }

    fn add_points(
        &mut self,
        name: &str,
        delta: bool,
        points: impl Iterator<Item = (SeriesKey, Histogram)>,
    ) {
        let max = self.max_buckets;
        let merge = |total: &mut Histogram, point: Histogram| match delta {
            true => total.add(point, max),
            false => *total = point,
        };
        match name {
            PROCESSING => {
                for (_, point) in points {
                    match &mut self.processing {
                        Some(total) => merge(total, point),
                        None => self.processing = Some(point),
                    }
                }
            }
            SERVER_DURATION => {
                if !delta {
                    // A cumulative collection holds every series there is.
                    self.series.clear();
                }
                for (key, point) in points {
                    match self.series.get_mut(&key) {
                        Some(total) => merge(total, point),
                        None => {
                            self.series.insert(key, point);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The totals as `/view_metrics` shows them; `buckets` is empty before the first point of
    /// `request_processing_seconds`.
    pub fn snapshot(&self) -> Snapshot {
        let [requests, successful, error_4xx, error_5xx] = self.counters;
        let mut snapshot = Snapshot {
            requests,
            successful,
            error_4xx,
            error_5xx,
            collected_at: self.collected_at,
            ..Snapshot::default()
        };
        if let Some(processing) = &self.processing {
            snapshot.buckets = processing.buckets.cumulative();
            snapshot.count = processing.count;
            snapshot.sum = processing.sum;
        }
        snapshot.series = self
            .series
            .iter()
            .map(
                |((method, route, status, url_scheme, error_type), total)| Series {
                    method: method.clone(),
                    route: route.clone(),
                    status: *status,
                    url_scheme: url_scheme.clone(),
                    error_type: error_type.clone(),
                    buckets: total.buckets.cumulative(),
                    count: total.count,
                    sum: total.sum,
                    native: None,
                },
            )
            .collect();
        Series::sort(&mut snapshot.series);
        snapshot
    }
}

impl Histogram {
    /// Adds the delta `other`.
    fn add(&mut self, other: Histogram, max_buckets: usize) {
        self.count += other.count;
        self.sum += other.sum;
        match (&mut self.buckets, other.buckets) {
            (
                Buckets::Explicit { bounds, counts },
                Buckets::Explicit {
                    bounds: other_bounds,
                    counts: other_counts,
                },
            ) if *bounds == other_bounds => {
                counts
                    .iter_mut()
                    .zip(other_counts)
                    .for_each(|(count, more)| *count += more);
            }
            (Buckets::Exponential(total), Buckets::Exponential(more)) => {
                total.merge(more, max_buckets);
            }
            // The aggregation is fixed at start; should it differ, the newer one is kept.
            (buckets, other) => *buckets = other,
        }
    }
}

impl Buckets {
    /// Cumulative buckets in order of their bound, `+Inf` last.
    fn cumulative(&self) -> Vec<Bucket> {
        match self {
            Buckets::Explicit { bounds, counts } => {
                Snapshot::cumulative(bounds, counts.iter().copied())
            }
            Buckets::Exponential(exponential) => exponential.cumulative(),
        }
    }
}

impl Exponential {
    /// The bound `base^index`.
    fn bound(&self, index: i32) -> f64 {
        (f64::from(index) * (-f64::from(self.scale)).exp2()).exp2()
    }

    /// One bucket up to the range's lower bound, holding the zero bucket (values of 0), then
    /// one per bucket of the range, then `+Inf`.
    fn cumulative(&self) -> Vec<Bucket> {
        let mut total = self.zero_count;
        let mut buckets = Vec::with_capacity(self.counts.len() + 2);
        buckets.push(Bucket {
            le: if self.counts.is_empty() {
                0.0
            } else {
                self.bound(self.offset)
            },
            count: total,
        });
        for (i, count) in self.counts.iter().enumerate() {
            total += count;
            buckets.push(Bucket {
                le: self.bound(self.offset + i as i32 + 1),
                count: total,
            });
        }
        buckets.push(Bucket {
            le: f64::INFINITY,
            count: total,
        });
        buckets
    }

    /// The range coarsened by `shift` scales: each bucket index `i` becomes `i >> shift`.
    fn downscale(&mut self, shift: u32) {
        if shift == 0 || self.counts.is_empty() {
            self.scale -= shift as i8;
            return;
        }
        let first = self.offset >> shift;
        let last = (self.offset + self.counts.len() as i32 - 1) >> shift;
        let mut counts = vec![0; (last - first + 1) as usize];
        for (i, count) in self.counts.iter().enumerate() {
            counts[(((self.offset + i as i32) >> shift) - first) as usize] += count;
        }
        self.scale -= shift as i8;
        self.offset = first;
        self.counts = counts;
    }

    /// Adds `other`, at the coarser scale of the two, coarsened further until the range fits in
    /// `max_buckets`.
    fn merge(&mut self, mut other: Exponential, max_buckets: usize) {
        let scale = self.scale.min(other.scale);
        self.downscale((self.scale - scale) as u32);
        other.downscale((other.scale - scale) as u32);
        self.zero_count += other.zero_count;
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.offset = other.offset;
            self.counts = other.counts;
            return;
        }
        let first = self.offset.min(other.offset);
        let last = (self.offset + self.counts.len() as i32)
            .max(other.offset + other.counts.len() as i32)
            - 1;
        let mut shift = 0;
        while ((last >> shift) - (first >> shift) + 1) as usize > max_buckets {
            shift += 1;
        }
        self.downscale(shift);
        other.downscale(shift);
        let first = self.offset.min(other.offset);
        let last =
            (self.offset + self.counts.len() as i32).max(other.offset + other.counts.len() as i32);
        let mut counts = vec![0; (last - first) as usize];
        for range in [&*self, &other] {
            for (i, count) in range.counts.iter().enumerate() {
                counts[(range.offset - first) as usize + i] += count;
            }
        }
        self.offset = first;
        self.counts = counts;
    }
}

/// The attributes of a series, under their Prometheus names.
fn attributes<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> SeriesKey {
    let mut key = SeriesKey::default();
    for kv in attributes {
        let value = kv.value.as_str().into_owned();
        match kv.key.as_str() {
            "http.request.method" => key.0 = value,
            "http.route" => key.1 = value,
            "http.response.status_code" => key.2 = value.parse().unwrap_or(0),
            "url.scheme" => key.3 = value,
            "error.type" => key.4 = Some(value),
            _ => {}
        }
    }
    key
}

fn explicit(point: &HistogramDataPoint<f64>) -> Histogram {
    Histogram {
        count: point.count(),
        sum: point.sum(),
        buckets: Buckets::Explicit {
            bounds: point.bounds().collect(),
            counts: point.bucket_counts().collect(),
        },
    }
}

fn exponential(point: &ExponentialHistogramDataPoint<f64>) -> Histogram {
    let positive = point.positive_bucket();
    Histogram {
        count: point.count() as u64,
        sum: point.sum(),
        buckets: Buckets::Exponential(Exponential {
            scale: point.scale(),
            zero_count: point.zero_count(),
            offset: positive.offset(),
            counts: positive.counts().collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(scale: i8, offset: i32, counts: &[u64]) -> Exponential {
        Exponential {
            scale,
            zero_count: 0,
            offset,
            counts: counts.to_vec(),
        }
    }

    #[test]
    fn exponential_buckets_read_as_cumulative_buckets_at_powers_of_the_base() {
        // Scale 1: base √2; buckets (1, √2], (√2, 2], (2, 2√2].
        let mut histogram = range(1, 0, &[1, 0, 2]);
        histogram.zero_count = 1;

        let buckets = histogram.cumulative();

        let pairs: Vec<(f64, u64)> = buckets.iter().map(|b| (b.le, b.count)).collect();
        let root = 2f64.sqrt();
        assert_eq!(pairs.len(), 5);
        assert_eq!(pairs[0], (1.0, 1), "the zero bucket, up to the range");
        assert!((pairs[1].0 - root).abs() < 1e-12 && pairs[1].1 == 2);
        assert!((pairs[2].0 - 2.0).abs() < 1e-12 && pairs[2].1 == 2);
        assert!((pairs[3].0 - 2.0 * root).abs() < 1e-12 && pairs[3].1 == 4);
        assert_eq!(pairs[4], (f64::INFINITY, 4));
    }

    #[test]
    fn downscaling_folds_neighbouring_buckets_with_negative_indexes_too() {
        let mut histogram = range(2, -3, &[1, 2, 3, 4]);

        histogram.downscale(1);

        // Indexes -3..=0 become -2, -1, -1, 0.
        assert_eq!(histogram, range(1, -2, &[1, 5, 4]));
    }

    #[test]
    fn merged_deltas_take_the_coarser_scale_and_stay_within_the_bucket_limit() {
        // One value near 1 ms and one near 10 s, each alone at the finest scale.
        let near_ms = range(20, -10_485_760, &[1]);
        let near_10s = range(20, 3_483_000, &[1]);
        let mut total = near_ms.clone();

        total.merge(near_10s, 160);

        assert_eq!(total.counts.iter().sum::<u64>(), 2);
        assert!(total.counts.len() <= 160, "{} buckets", total.counts.len());
        assert!(
            total.scale < 20 && total.scale >= 3,
            "scale {}",
            total.scale
        );
        let buckets = total.cumulative();
        let first = buckets.iter().find(|b| b.count == 1).unwrap().le;
        let second = buckets.iter().find(|b| b.count == 2).unwrap().le;
        assert!(first > 0.0009 && first < 0.0011 * 1.1, "{first}");
        assert!(second > 9.0 && second < 11.0 * 1.1, "{second}");
    }

    #[test]
    fn deltas_add_up_and_cumulative_values_replace() {
        let explicit = |counts: &[u64]| Histogram {
            count: counts.iter().sum(),
            sum: 1.0,
            buckets: Buckets::Explicit {
                bounds: vec![0.1],
                counts: counts.to_vec(),
            },
        };
        let mut total = explicit(&[1, 0]);

        total.add(explicit(&[2, 1]), 160);

        assert_eq!(
            total,
            Histogram {
                sum: 2.0,
                ..explicit(&[3, 1])
            }
        );
    }
}
