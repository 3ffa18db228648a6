//! `prom-metrics-app load`: a load generator built into the binary, to put a running instance
//! under a known load and read the same numbers on both sides.
//!
//! It is an open loop: request `i` is sent at `start + i / rate` however slowly the target
//! answers, and latency is measured from that scheduled time, so a stalled server shows as
//! latency instead of as fewer requests (no coordinated omission). When it cannot keep the rate,
//! it says by how much and why.
//!
//! - [`args`]: the flags.
//! - [`mix`]: the weighted paths and the seeded random choice among them.
//! - [`schedule`]: when each request is due, and what counts as late.
//! - [`runner`]: the scheduler thread, the HTTP client, the collection of outcomes.
//! - [`outcome`]: what became of each request: counts by status and error, latency histograms.
//! - [`report`]: the summary, as a table or as JSON.
//! - [`progress`]: the progress bar, on terminals only.

pub mod args;
pub mod mix;
pub mod outcome;
pub mod progress;
pub mod report;
pub mod runner;
pub mod schedule;

use std::{future::Future, io::Write};

pub use args::LoadArgs;
pub use mix::Mix;
pub use runner::generate;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path of the mix does not make a URL on the target.
    #[error("invalid value '{value}' for --mix: {reason}")]
    Mix { value: String, reason: String },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Every request failed to connect.
    #[error(
        "could not reach {target}: all {sent} requests failed to connect ({cause}); check the URL and that the app runs there"
    )]
    Unreachable {
        target: String,
        sent: u64,
        cause: String,
    },
}

impl LoadError {
    /// The exit code: 2 for a bad flag, as clap's own errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Mix { .. } => crate::config::EXIT_CONFIG as u8,
            LoadError::Client(_) | LoadError::Unreachable { .. } => 1,
        }
    }
}

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
