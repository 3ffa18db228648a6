//! Native histogram buckets, as Prometheus defines them: sparse, exponential, and the same for
//! every histogram of a schema, so that any two can be added.
//!
//! At schema `s`, bucket `k` holds the values in `(2^((k-1)/2^s), 2^(k/2^s)]`: each bound is
//! `2^(2^-s)` times the one below it (schema 3: 1.0905, eight buckets per doubling). Values at or
//! below the zero threshold go to the zero bucket. prometheus-client 0.26 keeps such buckets in
//! its `Histogram`, but reads none of them back and writes no exemplars beside them, so the app
//! keeps its own (see `dual.rs`).

use crate::config::NativeHistograms;

/// The zero threshold, 2^-128, the one client_golang and Prometheus' own tests use: only a
/// duration of exactly zero falls at or below it.
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The coarsest and finest schemas Prometheus accepts for exponential buckets.
const SCHEMA_MIN: i8 = -4;
const SCHEMA_MAX: i8 = 8;

/// The resolution of the native buckets: a schema, and for a positive schema the bounds of its
/// buckets within one power of two (as fractions in `[0.5, 1)`), computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    schema: i8,
    bounds: Vec<f64>,
}

impl Schema {
    /// The schema of a setting, `None` when native histograms are off.
    pub fn of(setting: NativeHistograms) -> Option<Self> {
        match setting {
            NativeHistograms::Off => None,
            NativeHistograms::BucketFactor(factor) => Some(Self::new(pick(factor))),
        }
    }

    /// The schema `schema`, clamped to the range Prometheus accepts.
    pub fn new(schema: i8) -> Self {
        let schema = schema.clamp(SCHEMA_MIN, SCHEMA_MAX);
        let per_doubling = if schema > 0 { 1usize << schema } else { 0 };
        let bounds = (0..per_doubling)
            .map(|i| (i as f64 / per_doubling as f64 - 1.0).exp2())
            .collect();
        Self { schema, bounds }
    }

    /// The schema number, as written in the protobuf `schema` field.
    pub fn number(&self) -> i8 {
        self.schema
    }

    /// The index of the bucket that holds `value` (positive and finite).
    pub fn index(&self, value: f64) -> i32 {
        let (fraction, exponent) = frexp(value);
        if self.schema > 0 {
            // The first bound at or above the fraction: bounds are upper bounds, inclusive.
            let within = self.bounds.partition_point(|bound| *bound < fraction) as i32;
            within + (exponent - 1) * self.bounds.len() as i32
        } else {
            // A power of two is the upper bound of the bucket below the one its exponent names.
            let exponent = if fraction == 0.5 {
                exponent - 1
            } else {
                exponent
            };
            let shift = -i32::from(self.schema);
            (exponent + (1 << shift) - 1) >> shift
        }
    }

    /// The upper bound of bucket `index`: `2^(index / 2^schema)`.
    pub fn upper_bound(&self, index: i32) -> f64 {
        (f64::from(index) * (-f64::from(self.schema)).exp2()).exp2()
    }
}

/// The schema client_golang picks for a bucket factor: the finest whose growth factor,
/// `2^(2^-schema)`, is at most `factor`.
fn pick(factor: f64) -> i8 {
    let floor = factor.log2().log2().floor();
    if floor <= -f64::from(SCHEMA_MAX) {
        SCHEMA_MAX
    } else if floor >= -f64::from(SCHEMA_MIN) {
        SCHEMA_MIN
    } else {
        -(floor as i8)
    }
}

/// `value` as `fraction * 2^exponent` with `fraction` in `[0.5, 1)`, as C's `frexp`; `value` is
/// positive and finite.
fn frexp(value: f64) -> (f64, i32) {
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (fraction, exponent) = frexp(value * 2f64.powi(64));
        return (fraction, exponent - 64);
    }
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, biased - 1022)
}

/// The populated buckets of one side (the positive one: durations are never negative), as
/// `(index, count)` sorted by index. Sparse, so memory follows the buckets used, not their range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(i32, u64)>);

impl Buckets {
    /// Adds one observation to bucket `index`.
    pub fn add(&mut self, index: i32) {
        // Durations of one series mostly fall in the same few buckets, the last of them often
        // the highest: check it before searching.
        if let Some(last) = self.0.last_mut()
            && last.0 == index
        {
            last.1 += 1;
            return;
        }
        match self.0.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.0[at].1 += 1,
            Err(at) => self.0.insert(at, (index, 1)),
        }
    }

    /// The same buckets with each count multiplied by `factor`: what `factor` rounds of the same
    /// observations leave.
    pub fn times(mut self, factor: u64) -> Self {
        for (_, count) in &mut self.0 {
            *count *= factor;
        }
        self
    }

    /// The populated buckets, by index.
    pub fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.0.iter().copied()
    }

    /// The protobuf encoding: spans of consecutive indexes (`(offset, length)`, the first offset
    /// from 0, each next one from the end of the previous span) and the counts as deltas from one
    /// bucket to the next. A gap of one or two empty buckets is written as zero counts inside the
    /// span, which is shorter than a new span, as client_golang does.
    pub fn spans_and_deltas(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::with_capacity(self.0.len());
        let mut previous_count = 0i64;
        let mut next_index = 0i32;
        for &(index, count) in &self.0 {
            let gap = index - next_index;
            match spans.last_mut() {
                Some(span) if gap <= 2 => {
                    for _ in 0..gap {
                        deltas.push(-previous_count);
                        previous_count = 0;
                    }
                    span.1 += gap as u32 + 1;
                }
                _ => spans.push((gap, 1)),
            }
            let count = count as i64;
            deltas.push(count - previous_count);
            previous_count = count;
            next_index = index + 1;
        }
        (spans, deltas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factor_of_1_1_gives_schema_3_and_eight_buckets_per_doubling() {
        let schema = Schema::of(NativeHistograms::BucketFactor(1.1)).unwrap();

        assert_eq!(schema.number(), 3);
        assert!((schema.upper_bound(1) - 1.0905077326652577).abs() < 1e-15);
        assert_eq!(schema.upper_bound(8), 2.0);
        assert_eq!(Schema::of(NativeHistograms::Off), None);
        assert_eq!(Schema::new(pick(2.0)).number(), 0);
        assert_eq!(Schema::new(pick(4.0)).number(), -1);
        assert_eq!(Schema::new(pick(1.0001)).number(), 8);
        assert_eq!(Schema::new(pick(65536.0)).number(), -4);
    }

    #[test]
    fn each_value_falls_in_the_bucket_whose_bounds_hold_it() {
        for schema in SCHEMA_MIN..=SCHEMA_MAX {
            let schema = Schema::new(schema);
            for value in [
                1e-9, 0.000_5, 0.003, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 7.3, 60.0,
            ] {
                let index = schema.index(value);
                let (lower, upper) = (schema.upper_bound(index - 1), schema.upper_bound(index));
                assert!(
                    lower < value && value <= upper * (1.0 + 1e-12),
                    "schema {} value {value}: bucket {index} is ({lower}, {upper}]",
                    schema.number()
                );
            }
        }
    }

    #[test]
    fn powers_of_two_are_upper_bounds() {
        let schema = Schema::new(3);

        assert_eq!(schema.index(1.0), 0);
        assert_eq!(schema.index(2.0), 8);
        assert_eq!(schema.index(0.5), -8);
        assert_eq!(Schema::new(-1).index(4.0), 1);
        assert_eq!(Schema::new(-1).index(4.1), 2);
        assert_eq!(Schema::new(0).index(0.75), 0);
    }

    #[test]
    fn spans_cover_runs_and_short_gaps_and_deltas_follow_the_counts() {
        let mut buckets = Buckets::default();
        for index in [-3, -3, -2, 0, 5, 5, 5] {
            buckets.add(index);
        }

        let (spans, deltas) = buckets.spans_and_deltas();

        // -3..=0 in one span (the gap at -1 is one empty bucket), then 5 alone.
        assert_eq!(spans, [(-3, 4), (4, 1)]);
        assert_eq!(deltas, [2, -1, -1, 1, 2]);
    }

    #[test]
    fn no_buckets_make_no_spans() {
        assert_eq!(Buckets::default().spans_and_deltas(), (vec![], vec![]));
    }
}
