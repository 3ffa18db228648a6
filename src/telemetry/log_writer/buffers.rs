//! What the threads that log and the writer thread share: each thread's buffer of lines, the
//! budget of bytes they draw from, and the count of lines dropped when it runs out.

use std::{
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::Thread,
};

use crate::telemetry::loss::Losses;

/// Bytes in one thread's buffer at which that thread wakes the writer early.
pub const WAKE_AT: usize = 64 * 1024;
/// Bytes of the shared budget a thread takes at a time, so that it touches the shared counter
/// once every fifty lines or so, not once a line.
pub const RESERVE: usize = 8 * 1024;
/// Each line is kept behind its length, so that the writer can merge lines without parsing them.
pub const HEADER: usize = 4;

/// What the threads that log and the writer thread share.
pub struct Shared {
    /// The buffer of each thread that has logged, until that thread has exited and been drained.
    pub buffers: Mutex<Vec<Arc<Buffer>>>,
    /// Bytes of [`CAPACITY`](super::CAPACITY) that no buffer holds.
    pub free: AtomicUsize,
    pub losses: Arc<Losses>,
    pub writer: OnceLock<Thread>,
    pub stop: AtomicBool,
}

/// One thread's lines, locked by that thread to append and by the writer to swap.
#[derive(Default)]
pub struct Buffer(pub Mutex<Lines>);

#[derive(Default)]
pub struct Lines {
    /// Each line behind its length ([`HEADER`] bytes, native order).
    pub bytes: Vec<u8>,
    /// Bytes taken from [`Shared::free`] and not used yet.
    pub reserved: usize,
    /// Whether this buffer has woken the writer since its last swap.
    pub woke: bool,
}

impl Shared {
    /// Takes room for at least `size` bytes from the shared budget into `lines`.
    pub fn reserve(&self, lines: &mut Lines, size: usize) -> bool {
        let want = size.max(RESERVE);
        match self
            .free
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
                (free >= size).then(|| free - free.min(want))
            }) {
            Ok(free) => {
                lines.reserved += free.min(want);
                true
            }
            Err(_) => false,
        }
    }

    pub fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// Counts `lines` dropped, and warns on stderr when a warning is due.
    pub fn dropped(&self, lines: u64) {
        if let Some(total) = self.losses.drop_log_lines(lines) {
            warn_on_stderr(total);
        }
    }
}

/// Writes one warning line on stderr, unless stderr would block (a full pipe): this runs on the
/// thread that dropped a line, a request's thread. `O_NONBLOCK` is not an option: it would change
/// the file description that stderr shares with other processes.
fn warn_on_stderr(total: u64) {
    let line = format!(
        "prom-metrics-app: log writer is behind: {total} log lines dropped so far \
         (the reader of stdout or LOG_DIR is too slow)\n"
    );
    let mut stderr = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout: this returns at once.
    let ready = unsafe { libc::poll(&mut stderr, 1, 0) };
    if ready == 1 && stderr.revents & libc::POLLOUT != 0 {
        // SAFETY: writes from a live buffer of `line.len()` bytes. A pipe that polls writable
        // takes a write this short (under PIPE_BUF) at once and whole.
        let _ = unsafe { libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len()) };
    }
}

/// Locks `mutex`, whatever a panic left behind.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves whole lines behind: the buffer is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
