//! One clock read at each end of a request, shared by its span, its histogram observation, its
//! exemplar and its access line: the monotonic clock is read, and wall time is derived from it.
//!
//! Wall time is `anchor + (instant - anchor instant)`, with the anchor (a pair of readings of both
//! clocks) refreshed by [`resync`] a few times a second from a thread of the log writer, so that a
//! step of the system clock shows within a moment, as it would with a fresh reading.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// The instant all offsets are counted from.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds from the Unix epoch to [`base`], as last measured.
static OFFSET: AtomicU64 = AtomicU64::new(0);

/// Measures the offset between the monotonic and the wall clock again.
pub fn resync() {
    let base = base();
    let since_base = Instant::now().saturating_duration_since(base);
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let offset = since_epoch.saturating_sub(since_base);
    OFFSET.store(
        u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The wall time of `instant`, from the last measured offset.
pub fn wall(instant: Instant) -> SystemTime {
    let mut offset = OFFSET.load(Ordering::Relaxed);
    if offset == 0 {
        resync();
        offset = OFFSET.load(Ordering::Relaxed);
    }
    UNIX_EPOCH + Duration::from_nanos(offset) + instant.saturating_duration_since(base())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_derived_from_an_instant_matches_the_system_clock() {
        let before = SystemTime::now();
        let derived = wall(Instant::now());
        let after = SystemTime::now();

        let slack = Duration::from_millis(5);
        assert!(derived + slack >= before && derived <= after + slack);
    }

    #[test]
    fn later_instants_have_later_wall_times() {
        let start = Instant::now();
        let end = start + Duration::from_millis(250);

        let apart = wall(end).duration_since(wall(start)).unwrap();
        assert!(apart.abs_diff(Duration::from_millis(250)) < Duration::from_millis(1));
    }
}
