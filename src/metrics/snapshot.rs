//! A backend-neutral view of the original's families, for `/view_metrics`.

/// Current values of the original's counters and of `request_processing_seconds`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `http_requests_total`.
    pub requests: u64,
    /// `http_successful_request_total`.
    pub successful: u64,
    /// `http_error_4xx_total`.
    pub error_4xx: u64,
    /// `http_error_5xx_total`.
    pub error_5xx: u64,
    /// Cumulative buckets of `request_processing_seconds`, `+Inf` last.
    pub buckets: Vec<Bucket>,
    /// `request_processing_seconds_count`.
    pub count: u64,
    /// `request_processing_seconds_sum`, in seconds.
    pub sum: f64,
}

/// One cumulative histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Upper bound in seconds (`f64::INFINITY` for `+Inf`).
    pub le: f64,
    /// Observations less than or equal to `le`.
    pub count: u64,
}

impl Bucket {
    /// The bound as Prometheus writes it: `0.005`, `1`, `+Inf`.
    pub fn label(&self) -> String {
        if self.le.is_infinite() {
            "+Inf".to_string()
        } else {
            self.le.to_string()
        }
    }
}

impl Snapshot {
    /// Builds cumulative buckets from per-bucket counts over `bounds` (the last count is `+Inf`'s own).
    pub fn cumulative(bounds: &[f64], per_bucket: impl IntoIterator<Item = u64>) -> Vec<Bucket> {
        let mut total = 0;
        bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(per_bucket)
            .map(|(le, count)| {
                total += count;
                Bucket { le, count: total }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_add_up_and_end_with_inf() {
        let buckets = Snapshot::cumulative(&[0.1, 1.0], [2, 0, 3]);

        assert_eq!(
            buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![2, 2, 5]
        );
        assert_eq!(buckets[2].label(), "+Inf");
        assert_eq!(buckets[0].label(), "0.1");
    }
}
