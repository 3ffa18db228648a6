//! The log writer: lines gathered in one shared buffer and written out in chunks, by whoever fills
//! the buffer or by a flusher thread a few times a second.
//!
//! A line costs a copy under an uncontended lock: no allocation, no channel and no thread wake-up
//! per line, which is what a per-request access line needs. Nothing is ever dropped: a full buffer
//! is written out by the caller that filled it. Each write holds whole lines, so the rotated file
//! never splits one.

use std::{
    io::{self, BufWriter, Write},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer before the flusher writes it out.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

type Sink = BufWriter<Box<dyn Write + Send>>;

/// A shared, buffered writer of whole lines; cheap to clone.
#[derive(Clone)]
pub struct LogWriter(Arc<Mutex<Sink>>);

impl LogWriter {
    /// Buffers up to `capacity` bytes for `sink`, and starts the flusher thread. Dropping the
    /// returned guard stops it and writes out what is left.
    pub fn new(sink: Box<dyn Write + Send>, capacity: usize) -> (Self, FlushGuard) {
        let writer = Self(Arc::new(Mutex::new(BufWriter::with_capacity(
            capacity, sink,
        ))));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let flusher = {
            let writer = writer.clone();
            std::thread::Builder::new()
                .name("log-flusher".into())
                .spawn(move || {
                    // Wakes every FLUSH_EVERY, and at once when the guard is dropped.
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(FLUSH_EVERY)
                    {
                        let _ = writer.lock().flush();
                    }
                })
                .ok()
        };
        let guard = FlushGuard {
            writer: writer.clone(),
            stop: Some(stop),
            flusher,
        };
        (writer, guard)
    }

    /// Appends `lines`, whole; a full buffer is written out first.
    pub fn append(&self, lines: &[u8]) -> io::Result<()> {
        self.lock().write_all(lines)
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        // A panic while holding the lock leaves whole lines behind: the buffer is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for LogWriter {
    /// Takes the whole of `line`: a line is never split between two writes.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.lock().write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Stops the flusher and writes out the buffered lines when dropped.
pub struct FlushGuard {
    writer: LogWriter,
    stop: Option<std::sync::mpsc::Sender<()>>,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        let _ = self.writer.lock().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that records each write it gets.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_whole_in_chunks_and_nothing_is_lost() {
        let writes = Writes::default();
        let (mut writer, guard) = LogWriter::new(Box::new(writes.clone()), 100);

        for i in 0..50 {
            writer
                .write_all(format!("line {i:02} of some length\n").as_bytes())
                .unwrap();
        }
        drop(guard);

        let writes = writes.0.lock().unwrap();
        assert!(writes.len() < 50, "{} writes for 50 lines", writes.len());
        for chunk in writes.iter() {
            assert!(chunk.ends_with(b"\n"), "a write ends mid-line");
        }
        let all: Vec<u8> = writes.concat();
        let text = String::from_utf8(all).unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(
            text.lines()
                .enumerate()
                .all(|(i, l)| l.starts_with(&format!("line {i:02}")))
        );
    }

    #[test]
    fn the_flusher_writes_a_quiet_line_out_within_a_moment() {
        let writes = Writes::default();
        let (mut writer, _guard) = LogWriter::new(Box::new(writes.clone()), 64 * 1024);

        writer.write_all(b"only line\n").unwrap();
        std::thread::sleep(FLUSH_EVERY * 3);

        assert_eq!(writes.0.lock().unwrap().concat(), b"only line\n");
    }
}
