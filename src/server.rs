//! The HTTP server: bind, serve within the connection limits, and shut down gracefully.
//!
//! Shutdown order: readiness turns false while the app keeps serving for the drain delay (so load
//! balancers see `/readyz` fail and stop sending traffic), the listener closes, in-flight requests
//! finish within the grace period; the caller then flushes telemetry.
//!
//! Connections are served by hyper's HTTP/1 server directly (not `axum::serve`), because the
//! limits against hostile clients are connection settings: the header size (hyper answers 431
//! itself, before the app sees the request, so such a request is counted nowhere), the header
//! read timeout (slowloris) and the number of connections served at once.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt as _;

use crate::{
    config::{Config, Limits},
    http::{self, AppState},
};

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    drain: Duration,
    grace: Duration,
    limits: Limits,
}

impl Server {
    /// Binds `address` (port 0 picks a free port), with the shutdown timings and limits of `config`.
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
            limits: config.limits.clone(),
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
            limits,
        } = self;
        let signal = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.begin_shutdown();
                tracing::info!(
                    drain_seconds = drain.as_secs_f64(),
                    "shutting down: /readyz answers 503; still serving during the drain delay"
                );
                tokio::time::sleep(drain).await;
            }
        };
        let app = http::router(state, routes);
        let connections = GracefulShutdown::new();
        accept_until(&listener, &app, &limits, &connections, signal).await;
        drop(listener);
        tracing::info!(
            grace_seconds = grace.as_secs_f64(),
            "listener closed: no new connections; waiting for requests in flight"
        );
        tokio::select! {
            () = connections.shutdown() => tracing::info!("requests drained"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!("grace period over: dropping requests still in flight");
            }
        }
        Ok(())
    }
}

/// Accepts and serves connections, at most `limits.max_connections` at a time, until `signal`.
async fn accept_until(
    listener: &TcpListener,
    app: &http::App,
    limits: &Limits,
    connections: &GracefulShutdown,
    signal: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(signal);
    loop {
        // A permit first: at the limit the app stops accepting, and the kernel's backlog holds
        // new connections until one closes.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut signal => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut signal => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Errors of one connection (reset before it was accepted) are skipped; others, such as running
/// out of file descriptors, pause accepting for a moment rather than spinning.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%err, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
