//! Quantiles estimated from cumulative buckets, exactly as PromQL's `histogram_quantile` does.

use super::snapshot::Bucket;

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
}
