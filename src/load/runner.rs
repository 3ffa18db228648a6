//! Runs the schedule: one task on one thread sends each request when it falls due, carries the
//! requests in flight and records their outcomes as they end.
//!
//! Everything a request needs happens on the thread that waits for it: the schedule's precise
//! timer ([`Timer`]), the connections and the recording. A request therefore costs no wake-up of
//! another thread, which is what a generator of load spends most of its time on otherwise: at
//! 1,000 requests a second every thread goes idle between two requests, and waking one takes
//! system calls and, on a virtual machine, an interrupt between processors.

use std::{cell::Cell, collections::BTreeMap, future::Future, io::IsTerminal, time::Instant};

use futures_util::{
    StreamExt as _,
    future::{AbortHandle, Abortable, Aborted},
    stream::FuturesUnordered,
};
use hyper::Uri;
use rand::{SeedableRng, rngs::StdRng};

use super::{
    args::LoadArgs,
    client::{Connection, Target},
    error::LoadError,
    outcome::{ErrorKind, Outcome, Recorder, TransportError},
    progress::Progress,
    report::{Report, RunSettings},
    schedule::{Schedule, Step},
    timer::Timer,
};

/// Runs the load that `args` describe until its bounds, or until `stop` completes; then waits
/// for the requests in flight and sums up. Runs on any tokio runtime; the command gives it one
/// thread of its own (a current-thread runtime), which is all it needs.
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
    // The path and query of each entry, which is all a request line carries.
    let paths = urls
        .iter()
        .map(|url| {
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_string(),
            };
            path.parse::<Uri>().map_err(|err| LoadError::Mix {
                value: args.mix.to_string(),
                reason: format!("{path} is not a request path: {err}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = Target::new(&args.target).await.map_err(LoadError::Client)?;
    let timer = Timer::new().map_err(|err| LoadError::Client(format!("timer: {err}")))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let (duration, requests) = args.bounds();

    let start = Instant::now();
    let mut schedule = Schedule::new(start, args.rate, duration, requests);
    let mut progress = Progress::new(schedule.planned(), std::io::stdout().is_terminal());
    let mut recorder = Recorder::default();
    let mut idle: Vec<Connection> = Vec::with_capacity(args.concurrency);
    let mut in_flight = FuturesUnordered::new();
    // The time limit of each request in flight, by the order it was sent in.
    let mut deadlines: BTreeMap<u64, (Instant, AbortHandle)> = BTreeMap::new();
    // Set while the request due next found every slot busy, so that it is counted once.
    let mut waiting_for_slot = false;
    let mut sending = true;
    let mut interrupted = false;
    tokio::pin!(stop);

    while sending || !in_flight.is_empty() {
        // Send everything that is due, as long as a slot is free.
        let mut wake = None;
        while sending {
            match schedule.next(Instant::now()) {
                Step::Done => sending = false,
                Step::WaitUntil(at) => {
                    wake = Some(at);
                    break;
                }
                Step::Send { due, .. } if in_flight.len() >= args.concurrency => {
                    if !waiting_for_slot {
                        waiting_for_slot = true;
                        schedule.waited_for_slot();
                    }
                    // Until a request ends, or the deadline cuts the run short.
                    wake = schedule.deadline().filter(|deadline| *deadline > due);
                    break;
                }
                Step::Send { due, .. } => {
                    waiting_for_slot = false;
                    let path = &paths[args.mix.pick(&mut rng)];
                    let started = Instant::now();
                    schedule.sent(started);
                    let connection = take_open(&mut idle);
                    let (abort, registration) = AbortHandle::new_pair();
                    let id = schedule.sent_count();
                    deadlines.insert(id, (started + args.timeout, abort));
                    let target = &target;
                    in_flight.push(async move {
                        let connected = Cell::new(false);
                        let request = target.get(connection, path, &connected);
                        let (result, connection) = match Abortable::new(request, registration).await
                        {
                            Ok(done) => done,
                            Err(Aborted) => (Err(timed_out(connected.get())), None),
                        };
                        let outcome = Outcome {
                            due,
                            started,
                            finished: Instant::now(),
                            result,
                        };
                        (id, outcome, connection)
                    });
                }
            }
        }
        // The request sent first is the first to time out: all have the same limit.
        let timeout = deadlines.first_key_value().map(|(_, (at, _))| *at);
        let wake = match (wake, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            biased;
            () = &mut stop, if sending => {
                sending = false;
                interrupted = true;
            }
            Some((id, outcome, connection)) = in_flight.next(), if !in_flight.is_empty() => {
                deadlines.remove(&id);
                idle.extend(connection);
                recorder.record(outcome);
                progress.answered(&recorder, schedule.sent_count());
            }
            woke = timer.sleep_until(wake.unwrap_or(start)), if wake.is_some() => {
                if let Err(err) = woke {
                    return Err(LoadError::Client(format!("timer: {err}")));
                }
                // Gives up on the requests past their time; they end, as timed out, at once.
                let now = Instant::now();
                while let Some(entry) = deadlines.first_entry() {
                    if entry.get().0 > now {
                        break;
                    }
                    entry.remove().1.abort();
                }
            }
        }
    }
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

/// A request given up at `--timeout`: while connecting, a failure to connect (an unreachable
/// target shows as such), else a timeout.
fn timed_out(connected: bool) -> TransportError {
    let (kind, cause) = match connected {
        false => (ErrorKind::Connect, "connect timed out"),
        true => (ErrorKind::Timeout, "operation timed out"),
    };
    TransportError {
        kind,
        cause: cause.to_string(),
    }
}

/// The most recently used idle connection that is still open.
fn take_open(idle: &mut Vec<Connection>) -> Option<Connection> {
    while let Some(connection) = idle.pop() {
        if !connection.is_closed() {
            return Some(connection);
        }
    }
    None
}
