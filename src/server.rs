//! The HTTP server: bind, serve, and shut down gracefully.
//!
//! Shutdown order: readiness turns false, the listener closes, in-flight requests finish within the
//! grace period; the caller then flushes telemetry.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify};

use crate::http::{self, AppState};

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    grace: Duration,
}

impl Server {
    /// Binds `address` (port 0 picks a free port).
    pub async fn bind(
        address: SocketAddr,
        state: AppState,
        grace: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        Ok(Self {
            listener,
            state,
            grace,
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
            grace,
        } = self;
        let started = Arc::new(Notify::new());
        let signal = {
            let (state, started) = (state.clone(), started.clone());
            async move {
                shutdown.await;
                state.begin_shutdown();
                tracing::info!(
                    grace_seconds = grace.as_secs_f64(),
                    "shutting down: no new connections, draining in-flight requests"
                );
                started.notify_one();
            }
        };
        let app = http::router(state, routes).into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(signal);
        tokio::select! {
            result = serve => result,
            () = async { started.notified().await; tokio::time::sleep(grace).await } => {
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
