//! Runs the schedule: a thread of its own sends each request when it falls due, the async runtime
//! carries the requests, and a task collects their outcomes.
//!
//! The scheduler is a plain thread that sleeps with the operating system's precise timed wait:
//! the runtime's timers tick in whole milliseconds, which would add up to a millisecond to every
//! due time, and a busy worker could delay them further.

use std::{
    future::Future,
    io::IsTerminal,
    sync::{
        Arc, Condvar, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use rand::{SeedableRng, rngs::StdRng};
use tokio::{
    runtime::Handle,
    sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc},
};
use url::Url;

use super::{
    args::LoadArgs,
    error::LoadError,
    mix::Mix,
    outcome::{ErrorKind, Outcome, Recorder, TransportError},
    progress::Progress,
    report::{Report, RunSettings},
    schedule::{Schedule, Step},
};

/// Runs the load that `args` describe until its bounds, or until `stop` completes; then waits
/// for the requests in flight and sums up.
pub async fn generate(
    args: &LoadArgs,
    stop: impl Future<Output = ()>,
) -> Result<Report, LoadError> {
    let urls = args
        .mix
        .urls(&args.target)
        .map_err(|reason| LoadError::Mix {
            value: args.mix.to_string(),
            reason,
        })?;
    let client = client(args).map_err(|err| LoadError::Client(crate::errors::root_cause(&err)))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let (duration, requests) = args.bounds();
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let stopped = Arc::new(Stop::default());
    let sent = Arc::new(AtomicU64::new(0));
    let (results, outcomes) = mpsc::unbounded_channel();

    let start = Instant::now();
    let schedule = Schedule::new(start, args.rate, duration, requests);
    let progress = Progress::new(schedule.planned(), std::io::stdout().is_terminal());
    let collector = tokio::spawn(collect(outcomes, progress.clone(), sent.clone()));
    let sender = Sender {
        client,
        urls,
        mix: args.mix.clone(),
        rng: StdRng::seed_from_u64(seed),
        slots: slots.clone(),
        stopped: stopped.clone(),
        sent,
        results,
        runtime: Handle::current(),
    };
    let mut scheduler = tokio::task::spawn_blocking(move || sender.run(schedule));
    tokio::pin!(stop);
    let finished = tokio::select! {
        finished = &mut scheduler => finished,
        () = &mut stop => {
            stopped.stop();
            // Wakes the scheduler if it waits for a slot.
            slots.close();
            scheduler.await
        }
    };
    let (schedule, interrupted) =
        finished.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    let recorder = collector
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    progress.finish();

    let settings = RunSettings {
        target: args.target.to_string(),
        mix: args.mix.to_string(),
        seed,
        concurrency: args.concurrency,
        timeout: args.timeout,
        rate: args.rate,
    };
    Ok(Report::new(
        settings,
        start,
        &schedule,
        recorder,
        interrupted,
    ))
}

/// The HTTP client of a run: roots that work without CA files, no redirects followed (the load
/// goes to the target and nowhere else), no proxy (it would measure the proxy), and an idle
/// connection kept for each slot.
fn client(args: &LoadArgs) -> reqwest::Result<reqwest::Client> {
    crate::tls::client_builder()?
        .user_agent(concat!("prom-metrics-app-load/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(args.timeout)
        .pool_max_idle_per_host(args.concurrency)
        .build()
}

/// What the scheduler thread owns.
struct Sender {
    client: reqwest::Client,
    /// The full URL of each entry of the mix.
    urls: Vec<Url>,
    mix: Mix,
    rng: StdRng,
    /// One permit per request in flight, at most `--concurrency`.
    slots: Arc<Semaphore>,
    stopped: Arc<Stop>,
    /// Requests sent so far, for the progress bar.
    sent: Arc<AtomicU64>,
    results: mpsc::UnboundedSender<Outcome>,
    runtime: Handle,
}

impl Sender {
    /// Sends each request when it falls due. Returns the schedule with its counts, and whether
    /// the run was stopped before its end.
    fn run(mut self, mut schedule: Schedule) -> (Schedule, bool) {
        loop {
            let due = match schedule.next(Instant::now()) {
                Step::Done => return (schedule, false),
                Step::WaitUntil(at) => {
                    if !self.stopped.wait_until(at) {
                        return (schedule, true);
                    }
                    continue;
                }
                Step::Send { due, .. } => due,
            };
            let permit = match self.slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => return (schedule, true),
                Err(TryAcquireError::NoPermits) => {
                    schedule.waited_for_slot();
                    match self.wait_for_slot(schedule.deadline()) {
                        Some(permit) => permit,
                        // Out of time (the schedule says so next) or stopped.
                        None if self.stopped.is_stopped() => return (schedule, true),
                        None => continue,
                    }
                }
            };
            let url = self.urls[self.mix.pick(&mut self.rng)].clone();
            let started = Instant::now();
            schedule.sent(started);
            self.sent.fetch_add(1, Ordering::Relaxed);
            let request = send(self.client.clone(), url, due, started);
            let results = self.results.clone();
            self.runtime.spawn(async move {
                let outcome = request.await;
                drop(permit);
                // The collector runs until the last sender is gone, so it is there to receive.
                let _ = results.send(outcome);
            });
        }
    }

    /// Waits for a free slot until `deadline`; `None` at the deadline or once stopped.
    fn wait_for_slot(&self, deadline: Option<Instant>) -> Option<OwnedSemaphorePermit> {
        let acquire = self.slots.clone().acquire_owned();
        self.runtime.block_on(async move {
            match deadline {
                Some(at) => tokio::time::timeout_at(at.into(), acquire).await.ok()?.ok(),
                None => acquire.await.ok(),
            }
        })
    }
}

/// Sends one GET and reads the whole answer: the request is over only when its body is, and the
/// connection can then carry the next one.
async fn send(client: reqwest::Client, url: Url, due: Instant, started: Instant) -> Outcome {
    let result = async {
        let mut response = client.get(url).send().await?;
        while response.chunk().await?.is_some() {}
        Ok(response.status().as_u16())
    }
    .await
    .map_err(|err: reqwest::Error| TransportError {
        // A connect timeout is a failure to connect: an unreachable target shows as such.
        kind: if err.is_connect() {
            ErrorKind::Connect
        } else if err.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Other
        },
        cause: crate::errors::root_cause(&err),
    });
    Outcome {
        due,
        started,
        finished: Instant::now(),
        result,
    }
}

/// Records outcomes until every request is over, and keeps the progress bar up to date.
async fn collect(
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    mut progress: Progress,
    sent: Arc<AtomicU64>,
) -> Recorder {
    let mut recorder = Recorder::default();
    while let Some(outcome) = outcomes.recv().await {
        recorder.record(outcome);
        progress.answered(&recorder, sent.load(Ordering::Relaxed));
    }
    recorder
}

/// Tells the scheduler thread to stop, waking it from its timed wait.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps until `at`; `false` if stopped first.
    fn wait_until(&self, at: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stopped {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, at - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_timed_wait_is_precise_and_can_be_stopped() {
        let stop = Arc::new(Stop::default());
        let start = Instant::now();

        assert!(stop.wait_until(start + Duration::from_millis(3)));
        let waited = start.elapsed();
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                stop.stop();
            })
        };
        let stopped = !stop.wait_until(Instant::now() + Duration::from_secs(60));
        stopper.join().unwrap();

        assert!(waited >= Duration::from_millis(3), "{waited:?}");
        assert!(waited < Duration::from_millis(50), "{waited:?}");
        assert!(stopped && stop.is_stopped());
        assert!(start.elapsed() < Duration::from_secs(30));
    }
}
