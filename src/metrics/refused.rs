//! The running total of requests refused at the connection limit. The server answers them itself,
//! before the app and its counting layer, so they are counted here instead, and both backends
//! export this total under a name of its own.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests answered `503` because the server was at `MAX_CONNECTIONS`; shared by the server,
/// which adds to it, and the metrics backend, which reads it at each scrape or collection.
#[derive(Debug, Default)]
pub struct RefusedRequests(AtomicU64);

impl RefusedRequests {
    /// Counts one refused request.
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The total since start.
    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
