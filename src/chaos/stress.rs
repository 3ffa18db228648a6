//! CPU and memory stress: threads that keep cores busy, and memory held and touched, both
//! changed by a thread of their own, so that a request that changes them never waits for memory
//! to be taken or threads to stop.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use memmap2::MmapMut;

/// The cycle of a core kept busy part of the time: busy for its share of it, then asleep. Short
/// enough that any window a CPU meter looks at (a second or more) sees the share.
const PERIOD: Duration = Duration::from_millis(10);
/// Memory is taken in pieces of at most this size, so that lowering the amount frees whole ones.
const PIECE: u64 = 64 << 20;
/// Memory is touched every this many bytes: the smallest page size.
const PAGE: usize = 4096;

/// What to keep busy and hold.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Load {
    cores: f64,
    bytes: u64,
}

/// The stress in force; changing it returns at once. Dropping it stops the threads and frees the
/// memory (in the background).
#[derive(Default)]
pub struct Stress {
    /// The worker, started on the first stress asked for: an app that is never stressed runs no
    /// extra thread.
    worker: Mutex<Option<mpsc::Sender<Load>>>,
}

impl Stress {
    /// Keeps `cores` cores busy and holds `bytes` bytes, from now on.
    pub fn apply(&self, cores: f64, bytes: u64) {
        let load = Load { cores, bytes };
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if worker.is_none() {
            if load.cores == 0.0 && load.bytes == 0 {
                return;
            }
            let (sender, loads) = mpsc::channel();
            let started = thread::Builder::new()
                .name("chaos-stress".into())
                .spawn(move || run(&loads));
            if let Err(err) = started {
                tracing::error!(error = %err, "cannot start the stress thread; no stress applied");
                return;
            }
            *worker = Some(sender);
        }
        if let Some(sender) = worker.as_ref() {
            // The worker outlives the sender unless it panicked; then there is nothing to tell.
            let _ = sender.send(load);
        }
    }
}

/// The worker: applies each load as it comes, the latest winning, until the sender is dropped.
fn run(loads: &mpsc::Receiver<Load>) {
    let mut memory = Memory::default();
    let mut burners: Vec<Burner> = Vec::new();
    let mut current = Load {
        cores: 0.0,
        bytes: 0,
    };
    while let Ok(mut load) = loads.recv() {
        // Only the latest of the loads asked for meanwhile matters.
        while let Ok(later) = loads.try_recv() {
            load = later;
        }
        if load.cores != current.cores {
            for burner in burners.drain(..) {
                burner.stop();
            }
            burners = shares(load.cores).map(Burner::start).collect();
        }
        if load.bytes != current.bytes {
            memory.resize(load.bytes);
        }
        tracing::info!(
            cpu_stress_cores = load.cores,
            memory_stress_bytes = memory.held(),
            "stress applied"
        );
        current = load;
    }
    for burner in burners {
        burner.stop();
    }
}

/// The share of its time each busy thread spends busy: whole cores, then the fraction left.
fn shares(cores: f64) -> impl Iterator<Item = f64> {
    let whole = cores.trunc() as usize;
    let rest = cores.fract();
    std::iter::repeat_n(1.0, whole).chain((rest > 0.0).then_some(rest))
}

/// A thread that keeps one core busy `share` of the time.
struct Burner(Arc<AtomicBool>);

impl Burner {
    fn start(share: f64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let busy = PERIOD.mul_f64(share);
        let idle = PERIOD.saturating_sub(busy);
        let started = thread::Builder::new()
            .name("chaos-cpu".into())
            .spawn(move || {
                let mut spins: u64 = 0;
                while !stopped.load(Ordering::Relaxed) {
                    let until = Instant::now() + busy;
                    while Instant::now() < until {
                        spins = std::hint::black_box(spins.wrapping_add(1));
                    }
                    if !idle.is_zero() {
                        thread::sleep(idle);
                    }
                }
            });
        if let Err(err) = started {
            tracing::error!(error = %err, "cannot start a CPU stress thread");
        }
        Self(stop)
    }

    /// Tells the thread to stop; it does within one period.
    fn stop(self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Memory held in anonymous mappings, each page written once so that it is resident: untouched,
/// the kernel would only reserve it.
#[derive(Default)]
struct Memory {
    pieces: Vec<MmapMut>,
}

impl Memory {
    fn held(&self) -> u64 {
        self.pieces.iter().map(|piece| piece.len() as u64).sum()
    }

    /// Holds exactly `bytes`: drops the pieces beyond them, then takes what is missing.
    fn resize(&mut self, bytes: u64) {
        let mut kept = 0;
        let mut keep = 0;
        for piece in &self.pieces {
            if kept + piece.len() as u64 > bytes {
                break;
            }
            kept += piece.len() as u64;
            keep += 1;
        }
        self.pieces.truncate(keep);
        while kept < bytes {
            let size = (bytes - kept).min(PIECE) as usize;
            match MmapMut::map_anon(size) {
                Ok(mut piece) => {
                    for (n, page) in piece.chunks_mut(PAGE).enumerate() {
                        page[0] = (n as u8) | 1;
                    }
                    std::hint::black_box(&mut piece[..]);
                    kept += size as u64;
                    self.pieces.push(piece);
                }
                Err(err) => {
                    tracing::error!(error = %err, held = kept, asked = bytes, "cannot take more memory for the stress");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_split_into_whole_ones_and_the_rest() {
        assert_eq!(shares(0.0).collect::<Vec<_>>(), Vec::<f64>::new());
        assert_eq!(shares(2.0).collect::<Vec<_>>(), vec![1.0, 1.0]);
        let split: Vec<f64> = shares(1.25).collect();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0], 1.0);
        assert!((split[1] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn memory_holds_exactly_what_is_asked_in_pieces() {
        let mut memory = Memory::default();

        memory.resize(PIECE + 12_345);
        let grown = (memory.held(), memory.pieces.len());
        memory.resize(1000);
        let shrunk = memory.held();
        memory.resize(0);

        assert_eq!(grown, (PIECE + 12_345, 2));
        assert_eq!(shrunk, 1000);
        assert_eq!(memory.held(), 0);
    }
}
