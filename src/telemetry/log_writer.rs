//! The log writer: each thread appends its lines to a buffer of its own, and a thread of the
//! writer's own does all the writing, so that no request ever waits on a slow disk or on a pipe
//! nobody reads.
//!
//! Appending a line is a copy into the calling thread's buffer, under a lock that only this thread
//! and the writer take (the writer, for a swap): no system call, no allocation once the buffer has
//! grown, and no thread wake-up, unless the buffer holds [`WAKE_AT`] bytes. The writer wakes every
//! [`FLUSH_EVERY`], swaps each buffer for an empty one, merges the lines of all threads by their
//! leading timestamps and writes them out in one go, whole.
//!
//! All buffers together hold at most [`CAPACITY`] bytes. When the writer falls behind, the lines
//! beyond that are dropped and counted in [`Losses`], and a warning goes to stderr at most once per
//! [`LOG_INTERVAL`](super::loss::LOG_INTERVAL), only if stderr can take it at once.

use std::{
    cell::RefCell,
    io::Write,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

use super::loss::Losses;
use buffers::{Buffer, HEADER, Shared, WAKE_AT, lock};
use drain::Drain;

mod buffers;
mod drain;

/// Bytes of lines waiting to be written, at most, all threads together.
pub const CAPACITY: usize = 1 << 20;
/// How long the writer sleeps between two rounds when nothing wakes it.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long the last round may take at shutdown, at most: a writer stuck on a pipe nobody reads
/// must not hold up the exit.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// A writer of whole log lines; cheap to clone.
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

thread_local! {
    /// This thread's buffer in each writer it has logged to: one, outside tests.
    static BUFFERS: RefCell<Vec<Registered>> = const { RefCell::new(Vec::new()) };
}

/// A thread's buffer in one writer.
struct Registered {
    /// Weak, so that a thread does not keep a writer alive; it also keeps the writer's address
    /// from being reused, so the address tells writers apart.
    writer: Weak<Shared>,
    buffer: Arc<Buffer>,
}

impl Drop for Registered {
    /// Gives back the room the thread reserved when it exits: a thread that logged one line
    /// would otherwise hold [`RESERVE`] bytes until the writer's next round.
    fn drop(&mut self) {
        if let Some(shared) = self.writer.upgrade() {
            let reserved = std::mem::take(&mut lock(&self.buffer.0).reserved);
            shared.free.fetch_add(reserved, Ordering::Relaxed);
        }
    }
}

impl LogWriter {
    /// Starts the writer thread, which writes to `sink` and counts the lines it drops in
    /// `losses`. Dropping the returned guard writes out what is left, within [`SHUTDOWN_FLUSH`].
    pub fn new(
        sink: Box<dyn Write + Send>,
        losses: Arc<Losses>,
    ) -> std::io::Result<(Self, FlushGuard)> {
        Self::start(sink, losses, FLUSH_EVERY)
    }

    /// [`LogWriter::new`], with a round every `every` unless woken.
    fn start(
        sink: Box<dyn Write + Send>,
        losses: Arc<Losses>,
        every: Duration,
    ) -> std::io::Result<(Self, FlushGuard)> {
        let shared = Arc::new(Shared {
            buffers: Mutex::new(Vec::new()),
            free: AtomicUsize::new(CAPACITY),
            losses,
            writer: OnceLock::new(),
            stop: AtomicBool::new(false),
        });
        let (done, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    Drain::default().run(&shared, sink, every);
                    let _ = done.send(());
                }
            })?;
        let _ = shared.writer.set(thread.thread().clone());
        let guard = FlushGuard {
            shared: shared.clone(),
            finished: Some(finished),
        };
        Ok((Self(shared), guard))
    }

    /// Appends `line`, whole, to this thread's buffer, or drops and counts it when the buffers
    /// are full. Never blocks on I/O.
    pub fn append(&self, line: &[u8]) {
        let size = HEADER + line.len();
        let Ok(length) = u32::try_from(line.len()) else {
            self.0.dropped(1);
            return;
        };
        let appended = BUFFERS.try_with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            let mut lines = lock(&self.buffer(&mut buffers).0);
            if lines.reserved < size && !self.0.reserve(&mut lines, size) {
                return false;
            }
            lines.reserved -= size;
            lines.bytes.extend_from_slice(&length.to_ne_bytes());
            lines.bytes.extend_from_slice(line);
            if !lines.woke && lines.bytes.len() >= WAKE_AT {
                lines.woke = true;
                drop(lines);
                self.0.wake();
            }
            true
        });
        // No buffer while the thread exits (a line logged from a thread-local destructor).
        if appended != Ok(true) {
            self.0.dropped(1);
        }
    }

    /// This thread's buffer, registered with the writer on the thread's first line. Borrowed,
    /// not cloned: a clone would touch the reference count on every line.
    fn buffer<'a>(&self, buffers: &'a mut Vec<Registered>) -> &'a Buffer {
        let me = Arc::as_ptr(&self.0);
        let index = match buffers.iter().position(|r| r.writer.as_ptr() == me) {
            Some(index) => index,
            None => {
                // Writers that no longer exist (tests make many).
                buffers.retain(|r| r.writer.strong_count() > 0);
                let buffer = Arc::new(Buffer::default());
                lock(&self.0.buffers).push(buffer.clone());
                buffers.push(Registered {
                    writer: Arc::downgrade(&self.0),
                    buffer,
                });
                buffers.len() - 1
            }
        };
        &buffers[index].buffer
    }
}

impl Write for &LogWriter {
    /// Takes the whole of `line`, which is never split; a dropped line is counted, not an error.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    // A reference, not a clone: a clone per event would bump a reference count shared by all
    // threads.
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Stops the writer thread when dropped, once it has written out what is left, or after
/// [`SHUTDOWN_FLUSH`], whichever comes first.
pub struct FlushGuard {
    shared: Arc<Shared>,
    finished: Option<mpsc::Receiver<()>>,
}

impl FlushGuard {
    /// Tells the writer to write out what is left and stop, and waits for it at most `limit`.
    /// Returns whether it finished in time; if not, it goes on in the background.
    pub fn finish(&mut self, limit: Duration) -> bool {
        let Some(finished) = self.finished.take() else {
            return true;
        };
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        finished.recv_timeout(limit).is_ok()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.finish(SHUTDOWN_FLUSH);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;
    use crate::dates;

    /// A sink that keeps what it is given.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A sink whose first write waits until the test ends: a pipe nobody reads.
    struct Stuck(mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A line stamped at `micros` past a fixed second, as log lines start.
    fn stamped(micros: u32, text: &str) -> String {
        format!("2026-01-01T00:00:00.{micros:06}Z {text}\n")
    }

    #[test]
    fn lines_of_several_threads_come_out_whole_and_merged_by_time() {
        let kept = Kept::default();
        // No round before the last one: all lines meet in one merge.
        let (writer, mut guard) =
            LogWriter::start(Box::new(kept.clone()), Arc::default(), Duration::MAX).unwrap();

        // Each thread's lines are in time order; together they alternate.
        for first in [1, 2, 3] {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for micros in (first..300).step_by(3) {
                    writer.append(stamped(micros, &format!("line {micros}")).as_bytes());
                }
            })
            .join()
            .unwrap();
        }
        let finished = guard.finish(Duration::from_secs(5));

        assert!(finished);
        let expected: String = (1..300).map(|m| stamped(m, &format!("line {m}"))).collect();
        assert_eq!(kept.text(), expected);
    }

    #[test]
    fn lines_appended_while_the_writer_runs_keep_each_thread_s_order() {
        let kept = Kept::default();
        let losses = Arc::new(Losses::default());
        let (writer, mut guard) = LogWriter::new(Box::new(kept.clone()), losses.clone()).unwrap();

        std::thread::scope(|scope| {
            for thread in 0..4 {
                let writer = writer.clone();
                scope.spawn(move || {
                    for i in 0..2_000 {
                        let now = dates::rfc3339_micros(SystemTime::now());
                        let mut line = now.to_vec();
                        line.extend_from_slice(format!(" thread {thread} line {i}\n").as_bytes());
                        writer.append(&line);
                    }
                });
            }
        });
        let finished = guard.finish(Duration::from_secs(5));

        assert!(finished);
        assert_eq!(losses.totals().dropped_log_lines, 0);
        let text = kept.text();
        let mut next = [0; 4];
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 5, "a line is not whole: {line:?}");
            let thread: usize = fields[2].parse().unwrap();
            assert_eq!(fields[4].parse::<usize>().unwrap(), next[thread], "{line}");
            next[thread] += 1;
        }
        assert_eq!(next, [2_000; 4]);
    }

    #[test]
    fn threads_that_log_and_exit_leave_no_line_behind_and_keep_no_room() {
        let kept = Kept::default();
        // Rounds as often as possible, so that some fall between a thread's last line and its exit.
        let losses = Arc::new(Losses::default());
        let (writer, mut guard) =
            LogWriter::start(Box::new(kept.clone()), losses.clone(), Duration::ZERO).unwrap();

        for _ in 0..200 {
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..20 {
                            writer.append(b"a line\n");
                        }
                    });
                }
            });
        }
        let finished = guard.finish(Duration::from_secs(5));

        assert!(finished);
        assert_eq!(losses.totals().dropped_log_lines, 0);
        assert_eq!(kept.text().lines().count(), 200 * 4 * 20);
    }

    #[test]
    fn a_quiet_line_is_written_out_within_a_few_rounds() {
        let kept = Kept::default();
        let (writer, _guard) = LogWriter::new(Box::new(kept.clone()), Arc::default()).unwrap();

        writer.append(b"only line\n");
        let start = Instant::now();
        while kept.text().is_empty() && start.elapsed() < FLUSH_EVERY * 10 {
            std::thread::sleep(FLUSH_EVERY / 4);
        }

        assert_eq!(kept.text(), "only line\n");
    }

    #[test]
    fn a_sink_that_never_returns_makes_lines_dropped_and_counted_not_waited_for() {
        let (release, stuck) = mpsc::channel();
        let losses = Arc::new(Losses::default());
        let (writer, mut guard) = LogWriter::new(Box::new(Stuck(stuck)), losses.clone()).unwrap();
        let line = stamped(0, &"x".repeat(100));
        let lines = 2 * CAPACITY / line.len();

        // Twice the capacity, from a thread of its own: a blocked append would never return.
        let (done, appended) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..lines {
                writer.append(line.as_bytes());
            }
            let _ = done.send(());
        });
        let returned = appended.recv_timeout(Duration::from_secs(10));
        let dropped = losses.totals().dropped_log_lines;
        let start = Instant::now();
        let finished = guard.finish(Duration::from_millis(200));
        let waited = start.elapsed();
        drop(release);

        assert!(returned.is_ok(), "appending blocked");
        let lines = lines as u64;
        assert!(
            dropped > lines / 3 && dropped < lines,
            "{dropped} of {lines} lines dropped"
        );
        assert!(!finished, "the stuck writer cannot have finished");
        assert!(
            waited < Duration::from_secs(1),
            "the shutdown flush took {waited:?}"
        );
    }
}
