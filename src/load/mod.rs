//! `prom-metrics-app load`: a load generator built into the binary, to put a running instance
//! under a known load and read the same numbers on both sides.
//!
//! It is an open loop: request `i` is sent at `start + i / rate` however slowly the target
//! answers, and latency is measured from that scheduled time, so a stalled server shows as
//! latency instead of as fewer requests (no coordinated omission). When it cannot keep the rate,
//! it says by how much and why.
//!
//! - [`args`]: the flags.
//! - [`error`]: why a run failed, and its exit code.
//! - [`mix`]: the weighted paths and the seeded random choice among them.
//! - [`schedule`]: when each request is due, and what counts as late.
//! - [`runner`]: the one task that sends each request when due and records what became of it.
//! - [`client`]: the HTTP/1.1 connections, one per request in flight.
//! - [`timer`]: the schedule's precise timer.
//! - [`outcome`]: what became of each request: counts by status and error, latency histograms.
//! - [`report`]: the summary, as a table or as JSON.
//! - [`progress`]: the progress bar, on terminals only.

pub mod args;
pub mod client;
pub mod error;
pub mod mix;
pub mod outcome;
pub mod progress;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod timer;

use std::{future::Future, io::Write};

pub use args::LoadArgs;
pub use error::LoadError;
pub use mix::Mix;
pub use runner::generate;

/// Runs the load, prints the summary on stdout (a table, or one JSON line with `--json`), and
/// fails if the target could not be reached at all. HTTP errors are measurements, not failures.
pub async fn run(args: &LoadArgs, stop: impl Future<Output = ()>) -> Result<(), LoadError> {
    let report = generate(args, stop).await?;
    let summary = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_string()
    };
    // Nothing to do if stdout is gone (a closed pipe): the exit code still tells.
    let _ = std::io::stdout().lock().write_all(summary.as_bytes());
    if report.unreachable() {
        return Err(LoadError::Unreachable {
            target: report.target,
            sent: report.sent,
            cause: report.first_error.unwrap_or_default(),
        });
    }
    Ok(())
}
