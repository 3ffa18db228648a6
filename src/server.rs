//! The HTTP server: bind, serve, and shut down gracefully.
//!
//! Shutdown order: readiness turns false while the app keeps serving for the drain delay (so load
//! balancers see `/readyz` fail and stop sending traffic), the listener closes, in-flight requests
//! finish within the grace period; the caller then flushes telemetry.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify};

use crate::{
    config::Config,
    http::{self, AppState},
};

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    drain: Duration,
    grace: Duration,
}

impl Server {
    /// Binds `address` (port 0 picks a free port), with the shutdown timings of `config`.
    pub async fn bind(
        address: SocketAddr,
        state: AppState,
        config: &Config,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        Ok(Self {
            listener,
            state,
            drain: config.shutdown_drain_delay,
            grace: config.shutdown_grace_period,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the standard app until `shutdown` completes, then drains in-flight requests for at
    /// most the grace period.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_with(http::counted_routes(), shutdown).await
    }

    /// Like [`Server::run`], with `routes` as the counted routes.
    pub async fn run_with(
        self,
        routes: Vec<http::Route>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server {
            listener,
            state,
            drain,
            grace,
        } = self;
        let closed = Arc::new(Notify::new());
        let signal = {
            let (state, closed) = (state.clone(), closed.clone());
            async move {
                shutdown.await;
                state.begin_shutdown();
                tracing::info!(
                    drain_seconds = drain.as_secs_f64(),
                    "shutting down: /readyz answers 503; still serving during the drain delay"
                );
                tokio::time::sleep(drain).await;
                tracing::info!(
                    grace_seconds = grace.as_secs_f64(),
                    "listener closed: no new connections; waiting for requests in flight"
                );
                closed.notify_one();
            }
        };
        let app = http::router(state, routes).into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(signal);
        tokio::select! {
            result = serve => {
                tracing::info!("requests drained");
                result
            }
            () = async { closed.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over: dropping requests still in flight");
                Ok(())
            }
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
