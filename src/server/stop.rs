//! How the app is asked to stop: by a supervisor (SIGTERM), with the drain delay, or by a person
//! (Ctrl-C, or any signal while stdin is a terminal), at once and telling each step on stderr.

use std::{future::Future, io::IsTerminal as _};

/// How the app was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// By a supervisor (SIGTERM, from Kubernetes say): readiness fails, then the app keeps serving
    /// for the drain delay so that load balancers see it leave, then stops.
    Drain,
    /// By a person (Ctrl-C, or any signal while stdin is a terminal): no drain delay, and each
    /// step is told on stderr, since the log may go to a file.
    Now,
}

impl Stop {
    /// Tells a shutdown step on stderr when a person is waiting for it.
    pub fn tell(self, step: &str) {
        if self == Stop::Now {
            // One write of a whole line; a closed stderr is no reason to stop stopping.
            let line = format!("prom-metrics-app: {step}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
    }
}

/// A shutdown future without an answer (a test's channel, say) asks for the supervisor's way.
impl From<()> for Stop {
    fn from((): ()) -> Self {
        Stop::Drain
    }
}

/// Completes when `signal` is received; never when there is none (it could not be installed).
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C), saying how to stop: at once for SIGINT or when stdin
/// is a terminal (a person is waiting), with the drain delay for SIGTERM otherwise. The handlers
/// are installed when this is called, not when it is first awaited, so that a signal sent as soon
/// as the app says it listens is not met by the default action (the process killed outright).
/// Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind)
            .inspect_err(|err| tracing::error!(%err, "cannot listen for {name}"))
            .ok()
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        let interactive = std::io::stdin().is_terminal();
        let (name, stop) = tokio::select! {
            () = received(interrupt.as_mut()) => ("SIGINT", Stop::Now),
            () = received(terminate.as_mut()) => ("SIGTERM", if interactive { Stop::Now } else { Stop::Drain }),
        };
        tracing::info!("received {name}");
        stop.tell(&format!("received {name}"));
        stop
    }
}
