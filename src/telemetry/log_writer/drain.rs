//! The log writer's own thread: in each round it swaps every thread's buffer for an empty one,
//! merges their lines by time and writes them out in one go.

use std::{
    io::Write,
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime},
};

use super::buffers::{HEADER, Shared, WAKE_AT, lock};
use crate::dates;

/// The writer thread's state between rounds.
#[derive(Default)]
pub(super) struct Drain {
    /// Buffers swapped out this round.
    taken: Vec<Vec<u8>>,
    /// Empty buffers to swap in.
    spares: Vec<Vec<u8>>,
    /// Lines held back from the last round, in order, with their headers.
    held: Vec<u8>,
    /// Lines held back by this round.
    holding: Vec<u8>,
    /// The text this round writes.
    out: Vec<u8>,
}

impl Drain {
    /// Runs rounds every `every`, or sooner when woken, until the last one.
    pub(super) fn run(
        &mut self,
        shared: &Shared,
        mut sink: Box<dyn Write + Send>,
        every: Duration,
    ) {
        loop {
            std::thread::park_timeout(every);
            let last = shared.stop.load(Ordering::Acquire);
            self.round(shared, &mut *sink, last);
            if last {
                return;
            }
        }
    }

    /// Writes out the lines of all threads, merged by time. Except in the `last` round, lines
    /// stamped after the round began wait for the next one: a line stamped a moment earlier may
    /// still be on its way into another thread's buffer, and must come out first.
    fn round(&mut self, shared: &Shared, sink: &mut dyn Write, last: bool) {
        // The access lines' time is derived from the monotonic clock: keep it close to the
        // system clock, which may have been stepped.
        crate::clock::resync();
        let now = dates::rfc3339_micros(SystemTime::now());
        self.swap_buffers(shared);
        let held = self.held.len();
        let mut runs: Vec<Run> = std::iter::once(&self.held)
            .chain(&self.taken)
            .enumerate()
            .map(|(i, bytes)| Run {
                bytes,
                at: 0,
                held: i == 0,
                holding: false,
            })
            .collect();
        let mut lines = 0u64;
        // The run whose next line is the oldest; on a tie, the first run (the held-back lines).
        while let Some(run) = (0..runs.len())
            .filter(|&i| runs[i].at < runs[i].bytes.len())
            .min_by_key(|&i| key(runs[i].next()))
        {
            let run = &mut runs[run];
            let line = run.next();
            let start = run.at;
            run.at += HEADER + line.len();
            // Held-back lines come out now; a run that holds one back holds back the rest of it,
            // so each thread's lines stay in order.
            if !last && !run.held && (run.holding || key(line) >= &now[..]) {
                run.holding = true;
                self.holding.extend_from_slice(&run.bytes[start..run.at]);
            } else {
                self.out.extend_from_slice(line);
                lines += 1;
            }
        }
        drop(runs);
        if !self.out.is_empty()
            && sink
                .write_all(&self.out)
                .and_then(|()| sink.flush())
                .is_err()
        {
            shared.dropped(lines);
        }
        let written = held + self.taken.iter().map(Vec::len).sum::<usize>() - self.holding.len();
        shared.free.fetch_add(written, Ordering::Relaxed);
        self.out.clear();
        std::mem::swap(&mut self.held, &mut self.holding);
        self.holding.clear();
        for mut bytes in self.taken.drain(..) {
            // Kept for reuse, unless a burst made it large.
            if bytes.capacity() <= 4 * WAKE_AT {
                bytes.clear();
                self.spares.push(bytes);
            }
        }
    }

    /// Swaps each thread's buffer for an empty one, gives back the room the threads reserved,
    /// and forgets the buffers of threads that have exited.
    fn swap_buffers(&mut self, shared: &Shared) {
        let mut buffers = lock(&shared.buffers);
        buffers.retain(|buffer| {
            // Only this list still holds the buffer of a thread that has exited. Read before the
            // swap: a thread that is still there may append again before it exits.
            let exited = Arc::strong_count(buffer) == 1;
            // Pairs with the release of the thread's own reference, which followed its last line.
            std::sync::atomic::fence(Ordering::Acquire);
            let mut lines = lock(&buffer.0);
            if !lines.bytes.is_empty() {
                let spare = self.spares.pop().unwrap_or_default();
                self.taken.push(std::mem::replace(&mut lines.bytes, spare));
            }
            shared
                .free
                .fetch_add(std::mem::take(&mut lines.reserved), Ordering::Relaxed);
            lines.woke = false;
            drop(lines);
            !exited
        });
        self.spares.truncate(buffers.len());
    }
}

/// The lines of one buffer, read in order.
struct Run<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Whether these are the lines held back from the last round.
    held: bool,
    /// Whether this round holds back the rest of these lines.
    holding: bool,
}

impl<'a> Run<'a> {
    /// The line at the read position, without its header.
    fn next(&self) -> &'a [u8] {
        let header = &self.bytes[self.at..self.at + HEADER];
        let length = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        &self.bytes[self.at + HEADER..self.at + HEADER + length]
    }
}

/// What lines are merged by: their leading timestamp, which sorts by time as text.
fn key(line: &[u8]) -> &[u8] {
    &line[..line.len().min(dates::MICROS_LEN)]
}
