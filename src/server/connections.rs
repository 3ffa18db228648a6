//! The connections being served, each in a task of its own: told to finish when shutdown begins,
//! and cut at the end of the grace period, so that their requests are recorded before the caller
//! flushes telemetry, not when the runtime is dropped, after it.

use std::{net::SocketAddr, time::Duration};

use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::stop::Stop;
use crate::http::Unanswered;

/// Longest wait for the cut connections to end. Cancelling is immediate unless a handler blocks
/// its thread; the bound keeps the exit within the grace period, the flush and a second.
const CUT_TIMEOUT: Duration = Duration::from_millis(500);

/// The tasks of the connections being served.
pub struct Connections {
    graceful: GracefulShutdown,
    tasks: TaskTracker,
    cut: CancellationToken,
}

impl Connections {
    pub fn new() -> Self {
        Self {
            graceful: GracefulShutdown::new(),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
        }
    }

    /// Serves `connection` in a task until it ends or is cut; `place` is released then.
    pub fn spawn<C>(&self, connection: C, place: OwnedSemaphorePermit, peer: SocketAddr)
    where
        C: GracefulConnection<Error = hyper::Error> + Send + 'static,
    {
        let connection = self.graceful.watch(connection);
        let cut = self.cut.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%err, %peer, "connection ended with an error");
                    }
                }
                // Dropping the connection drops its request unanswered; the tracing and counting
                // layers then record it, as `unanswered` says.
                () = cut.cancelled() => {}
            }
            drop(place);
        });
    }

    /// Asks every connection to finish its request and close, waits at most `grace`, then cuts
    /// the requests still in flight, which `unanswered` then records as cut.
    pub async fn shut_down(self, grace: Duration, unanswered: &Unanswered, stop: Stop) {
        let Connections {
            graceful,
            tasks,
            cut,
        } = self;
        tasks.close();
        tokio::select! {
            () = graceful.shutdown() => {
                tracing::info!("requests drained");
                stop.tell("requests drained");
                return;
            }
            () = tokio::time::sleep(grace) => {}
        }
        // HTTP/1 with keep-alive turned off since shutdown began: each connection still open
        // carries one request.
        let requests = tasks.len();
        unanswered.begin_cutting();
        cut.cancel();
        stop.tell(&format!(
            "grace period over: cut {requests} requests still in flight"
        ));
        match tokio::time::timeout(CUT_TIMEOUT, tasks.wait()).await {
            Ok(()) => tracing::warn!(
                requests,
                "grace period over: cut the requests still in flight (recorded as 503, error type shutdown)"
            ),
            Err(_) => tracing::warn!(
                requests,
                still_running = tasks.len(),
                "grace period over: cut the requests still in flight, but some did not end in time; what they record later is lost"
            ),
        }
    }
}
