//! Quantiles estimated from buckets, exactly as PromQL's `histogram_quantile` does: from the
//! cumulative buckets of a classic histogram, and from the exponential buckets of a native one.

use super::snapshot::{Bucket, NativeHistogram};

/// The `q`-quantile of a classic histogram given by its cumulative `buckets` (sorted by bound,
/// `+Inf` last), interpolated as PromQL's `histogram_quantile` does (`bucketQuantile` in
/// Prometheus' `promql/quantile.go`):
///
/// - the rank `q * count` falls in the first bucket whose cumulative count reaches it, and the
///   value is interpolated linearly between that bucket's lower and upper bounds;
/// - the first bucket's lower bound is 0 (unless its upper bound is 0 or less: then that bound);
/// - a rank in the `+Inf` bucket gives the upper bound of the last finite bucket;
/// - `None` (PromQL's NaN) without observations, with fewer than two buckets, or without `+Inf`;
///   `q` below 0 gives minus infinity and above 1 plus infinity, as in PromQL.
pub fn histogram_quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let last = buckets.last()?;
    if buckets.len() < 2 || last.le != f64::INFINITY || last.count == 0 {
        return None;
    }
    let rank = q * last.count as f64;
    // PromQL searches all buckets but `+Inf`; not found means the rank is in `+Inf`.
    let b = buckets[..buckets.len() - 1]
        .iter()
        .position(|bucket| bucket.count as f64 >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].le);
    }
    if b == 0 && buckets[0].le <= 0.0 {
        return Some(buckets[0].le);
    }
    let (start, below) = match b {
        0 => (0.0, 0),
        _ => (buckets[b - 1].le, buckets[b - 1].count),
    };
    let in_bucket = (buckets[b].count - below) as f64;
    let value = start + (buckets[b].le - start) * ((rank - below as f64) / in_bucket);
    // 0/0 (q = 0 over an empty first bucket) is NaN in PromQL too.
    (!value.is_nan()).then_some(value)
}

/// The `q`-quantile of a native histogram, as PromQL's `histogram_quantile` computes it
/// (`HistogramQuantile` in Prometheus' `promql/quantile.go`, 2.47 and later):
///
/// - the rank `q * count` falls in the first bucket, counting the zero bucket first, whose
///   running total of observations reaches it (empty buckets are skipped);
/// - within an exponential bucket the value is interpolated exponentially: linearly between the
///   logarithms of its bounds, since on that scale every bucket has the same width;
/// - within the zero bucket, linearly from 0 (the histogram has no negative buckets) to the zero
///   threshold;
/// - `None` without observations; `q` below 0 gives minus infinity, above 1 plus infinity.
///
/// Prometheus before 2.47 (Debian's 2.42 among them) interpolated linearly within every bucket;
/// both results lie within the same bucket.
pub fn native_histogram_quantile(q: f64, histogram: &NativeHistogram) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    if histogram.count == 0 {
        return None;
    }
    let rank = q * histogram.count as f64;
    let zero = (0.0, histogram.zero_threshold, histogram.zero_count);
    let buckets = std::iter::once(zero)
        .chain(
            histogram
                .buckets
                .iter()
                .map(|b| (b.lower, b.upper, b.count)),
        )
        .filter(|&(_, _, count)| count > 0);
    let mut below = 0.0;
    let mut last = None;
    for (lower, upper, count) in buckets {
        let count = count as f64;
        last = Some(upper);
        if below + count >= rank {
            let fraction = (rank - below) / count;
            if lower <= 0.0 {
                return Some(lower + (upper - lower) * fraction);
            }
            let (log_lower, log_upper) = (lower.log2(), upper.log2());
            return Some((log_lower + (log_upper - log_lower) * fraction).exp2());
        }
        below += count;
    }
    // The buckets hold fewer than `count` observations (NaN observations): the highest bound.
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, u64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, count)| Bucket { le, count })
            .collect()
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    /// 10 observations: 2 up to 0.1, 4 more up to 0.5, 2 more up to 1, 2 above 1.
    fn ten() -> Vec<Bucket> {
        buckets(&[(0.1, 2), (0.5, 6), (1.0, 8), (f64::INFINITY, 10)])
    }

    #[test]
    fn the_median_is_interpolated_linearly_within_its_bucket() {
        // Rank 5 is the 3rd of 4 observations in (0.1, 0.5]: 0.1 + 0.4 * 3/4.
        close(histogram_quantile(0.5, &ten()), 0.4);
        // Rank 7 is the 1st of 2 in (0.5, 1]: 0.5 + 0.5 * 1/2.
        close(histogram_quantile(0.7, &ten()), 0.75);
    }

    #[test]
    fn the_first_bucket_starts_at_zero() {
        // Rank 1 is the 1st of 2 in (0, 0.1].
        close(histogram_quantile(0.1, &ten()), 0.05);
        close(histogram_quantile(0.2, &ten()), 0.1);
    }

    #[test]
    fn a_rank_in_the_inf_bucket_gives_the_last_finite_bound() {
        close(histogram_quantile(0.9, &ten()), 1.0);
        close(histogram_quantile(0.99, &ten()), 1.0);
        close(histogram_quantile(1.0, &ten()), 1.0);
    }

    #[test]
    fn a_rank_on_a_bucket_boundary_takes_the_lower_bucket() {
        // Rank 6 is reached exactly at le=0.5: the upper bound of (0.1, 0.5].
        close(histogram_quantile(0.6, &ten()), 0.5);
    }

    #[test]
    fn empty_buckets_below_the_rank_are_skipped() {
        let sparse = buckets(&[(0.005, 0), (0.01, 0), (0.025, 4), (f64::INFINITY, 4)]);

        // Rank 2 of 4, all in (0.01, 0.025]: 0.01 + 0.015 * 2/4.
        close(histogram_quantile(0.5, &sparse), 0.0175);
        close(histogram_quantile(0.99, &sparse), 0.01 + 0.015 * 0.99);
    }

    #[test]
    fn no_observations_give_no_value() {
        let empty = buckets(&[(0.1, 0), (1.0, 0), (f64::INFINITY, 0)]);

        assert_eq!(histogram_quantile(0.5, &empty), None);
        assert_eq!(histogram_quantile(0.5, &[]), None);
    }

    #[test]
    fn malformed_histograms_and_odd_quantiles_follow_promql() {
        let no_inf = buckets(&[(0.1, 1), (1.0, 2)]);
        let only_inf = buckets(&[(f64::INFINITY, 3)]);

        assert_eq!(histogram_quantile(0.5, &no_inf), None);
        assert_eq!(histogram_quantile(0.5, &only_inf), None);
        assert_eq!(histogram_quantile(-0.1, &ten()), Some(f64::NEG_INFINITY));
        assert_eq!(histogram_quantile(1.1, &ten()), Some(f64::INFINITY));
        assert_eq!(histogram_quantile(f64::NAN, &ten()), None);
    }

    fn native(zero_count: u64, buckets: &[(f64, f64, u64)]) -> NativeHistogram {
        let buckets: Vec<_> = buckets
            .iter()
            .map(
                |&(lower, upper, count)| crate::metrics::snapshot::NativeBucket {
                    lower,
                    upper,
                    count,
                },
            )
            .collect();
        NativeHistogram {
            schema: 0,
            zero_threshold: 1e-3,
            zero_count,
            count: zero_count + buckets.iter().map(|b| b.count).sum::<u64>(),
            sum: 0.0,
            buckets,
        }
    }

    #[test]
    fn a_native_quantile_is_interpolated_exponentially_within_its_bucket() {
        // 4 observations: 2 in (0.5, 1], 2 in (1, 2].
        let h = native(0, &[(0.5, 1.0, 2), (1.0, 2.0, 2)]);

        // Rank 1 is half-way through (0.5, 1]: the geometric middle, 2^-0.5.
        close(native_histogram_quantile(0.25, &h), 0.5f64.sqrt());
        close(native_histogram_quantile(0.5, &h), 1.0);
        // Rank 3.6 is 0.8 of the way through (1, 2]: 2^0.8.
        close(native_histogram_quantile(0.9, &h), 0.8f64.exp2());
        close(native_histogram_quantile(1.0, &h), 2.0);
    }

    #[test]
    fn a_native_quantile_in_the_zero_bucket_is_linear_from_zero() {
        let h = native(2, &[(0.5, 1.0, 2)]);

        close(native_histogram_quantile(0.25, &h), 0.5e-3);
        close(native_histogram_quantile(0.75, &h), 0.5f64.sqrt());
    }

    #[test]
    fn an_empty_native_histogram_and_odd_quantiles_follow_promql() {
        let empty = native(0, &[]);
        let h = native(0, &[(0.5, 1.0, 2)]);

        assert_eq!(native_histogram_quantile(0.5, &empty), None);
        assert_eq!(native_histogram_quantile(-1.0, &h), Some(f64::NEG_INFINITY));
        assert_eq!(native_histogram_quantile(2.0, &h), Some(f64::INFINITY));
        assert_eq!(native_histogram_quantile(f64::NAN, &h), None);
    }
}
