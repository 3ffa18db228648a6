//! The schedule's timer: a Linux timerfd, waited on through the async runtime's reactor, so that
//! the thread that carries the requests also keeps the schedule, to within tens of microseconds.
//! The runtime's own timers tick in whole milliseconds, which would add up to a millisecond to
//! every due time; a thread of its own, as `load` had, costs a cross-thread wake-up per request.

use std::{cell::Cell, io, os::fd::OwnedFd, time::Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::{Interest, unix::AsyncFd};

/// A one-shot timer on the monotonic clock, the clock of [`Instant`].
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
    /// The instant the timer is armed for, so that waiting again for the same one costs no
    /// system call.
    armed: Cell<Option<Instant>>,
}

impl Timer {
    /// A timer registered with the current runtime's reactor.
    pub fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: the descriptor is an `OwnedFd` that the `AsyncFd` owns: it stays open, and the
        // same, until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|err| err.into_parts().1)?;
        Ok(Self {
            fd,
            armed: Cell::new(None),
        })
    }

    /// Waits until `at`, or returns at once if it has passed. It may return a little early when
    /// an earlier wait was cancelled after its time had come: callers look at the clock again.
    pub async fn sleep_until(&self, at: Instant) -> io::Result<()> {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if self.armed.get() != Some(at) {
            let value = Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let spec = Itimerspec {
                it_interval: zero,
                it_value: value,
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            self.armed.set(Some(at));
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // The count of expirations, eight bytes; `WouldBlock` clears the readiness.
            match ready.try_io(|fd| {
                let mut count = [0u8; 8];
                rustix::io::read(fd.get_ref(), &mut count).map_err(io::Error::from)
            }) {
                Ok(result) => {
                    // Read to the end: no need to learn it from one more read.
                    ready.clear_ready();
                    self.armed.set(None);
                    return result.map(|_| ());
                }
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_timer_wakes_at_its_instant_to_within_a_millisecond() {
        let timer = Timer::new().unwrap();
        let mut lateness = Vec::new();

        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(1500);
            timer.sleep_until(at).await.unwrap();
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
            lateness.push(now - at);
        }
        timer.sleep_until(Instant::now()).await.unwrap();

        lateness.sort();
        // The median, against the runtime timer's whole millisecond; a loaded machine may delay
        // some wake-ups, not most.
        assert!(lateness[10] < Duration::from_millis(1), "{lateness:?}");
    }
}
