//! The HTTP server: bind, serve within the connection limits, and shut down gracefully.
//!
//! Shutdown order: readiness turns false while the app keeps serving for the drain delay (so load
//! balancers see `/readyz` fail and stop sending traffic), the listener closes, in-flight requests
//! finish within the grace period, and those still running then are cut, and recorded as such
//! ([`connections`]); the caller then flushes telemetry.
//!
//! Connections are served by hyper's HTTP/1 server directly (not `axum::serve`), because the
//! limits against hostile clients are connection settings: the header size (hyper answers 431
//! itself, before the app sees the request, so such a request is counted nowhere), the header
//! read timeout (slowloris) and the number of connections served at once, with a small
//! [`reserve`] beyond it for the probes and the scrape.

mod connections;
mod reserve;
mod stop;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt as _;

use crate::{
    config::{Config, Limits},
    http::{self, AppState},
    metrics::RefusedRequests,
};
use connections::Connections;

pub use stop::{Stop, shutdown_signal};

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    drain: Duration,
    grace: Duration,
    limits: Limits,
    refused: Arc<RefusedRequests>,
}

impl Server {
    /// Binds `address` (port 0 picks a free port), with the shutdown timings and limits of
    /// `config`. Requests refused at the connection limit are counted in `refused`, which the
    /// metrics backend exports.
    pub async fn bind(
        address: SocketAddr,
        state: AppState,
        config: &Config,
        refused: Arc<RefusedRequests>,
    ) -> std::io::Result<Self> {
        let listener = listen(address)?;
        Ok(Self {
            listener,
            state,
            drain: config.shutdown_drain_delay,
            grace: config.shutdown_grace_period,
            limits: config.limits.clone(),
            refused,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the standard app until `shutdown` completes, then drains in-flight requests for at
    /// most the grace period, and cuts those left. Returns how it was asked to stop.
    pub async fn run<S: Into<Stop>>(
        self,
        shutdown: impl Future<Output = S> + Send + 'static,
    ) -> std::io::Result<Stop> {
        self.run_with(http::counted_routes(), shutdown).await
    }

    /// Like [`Server::run`], with `routes` as the counted routes.
    pub async fn run_with<S: Into<Stop>>(
        self,
        routes: Vec<http::Route>,
        shutdown: impl Future<Output = S> + Send + 'static,
    ) -> std::io::Result<Stop> {
        let Server {
            listener,
            state,
            drain,
            grace,
            limits,
            refused,
        } = self;
        let stopped = Arc::new(std::sync::OnceLock::new());
        let signal = {
            let (state, stopped) = (state.clone(), stopped.clone());
            async move {
                let stop = shutdown.await.into();
                let _ = stopped.set(stop);
                state.begin_shutdown();
                match stop {
                    Stop::Drain => {
                        tracing::info!(
                            drain_seconds = drain.as_secs_f64(),
                            "shutting down: /readyz answers 503; still serving during the drain delay"
                        );
                        tokio::time::sleep(drain).await;
                    }
                    Stop::Now => {
                        tracing::info!("shutting down now: /readyz answers 503; no drain delay");
                        stop.tell("shutting down now (the drain delay is for SIGTERM)");
                    }
                }
            }
        };
        let app = http::router(state.clone(), routes);
        let connections = Connections::new();
        // The client's address is read only by spans that record attributes.
        let peers = state.tracing.records_attributes();
        let accepted = Accepted {
            app,
            refused,
            peers,
        };
        accept_until(&listener, &limits, &accepted, &connections, signal).await;
        drop(listener);
        let stop = stopped.get().copied().unwrap_or(Stop::Drain);
        tracing::info!(
            grace_seconds = grace.as_secs_f64(),
            "listener closed: no new connections; waiting for requests in flight"
        );
        stop.tell(&format!(
            "listener closed; waiting up to {} for requests in flight",
            humantime::format_duration(grace)
        ));
        connections.shut_down(grace, &state.unanswered, stop).await;
        Ok(stop)
    }
}

/// A place among the connections served at once.
enum Place {
    /// One of `MAX_CONNECTIONS`.
    Regular(OwnedSemaphorePermit),
    /// One of the `RESERVED_CONNECTIONS` beyond it.
    Reserve(OwnedSemaphorePermit),
}

/// Accepts and serves connections, at most `limits.max_connections` plus the reserve at a time,
/// until `signal`.
async fn accept_until(
    listener: &TcpListener,
    limits: &Limits,
    accepted: &Accepted,
    connections: &Connections,
    signal: impl Future<Output = ()>,
) {
    let mut regular = hyper::server::conn::http1::Builder::new();
    regular
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    let reserve = reserve::builder(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let reserved = Arc::new(Semaphore::new(limits.reserved_connections));
    tokio::pin!(signal);
    loop {
        // A place first: past the limit and the reserve the app stops accepting, and the kernel's
        // backlog holds new connections until one closes.
        let place = tokio::select! {
            biased;
            permit = permits.clone().acquire_owned() => Place::Regular(permit.expect("the semaphore is never closed")),
            permit = reserved.clone().acquire_owned() => Place::Reserve(permit.expect("the semaphore is never closed")),
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
        let io = TokioIo::new(stream);
        // A regular place may have freed while this one waited for a connection.
        let place = match place {
            Place::Reserve(permit) => match permits.clone().try_acquire_owned() {
                Ok(regular) => Place::Regular(regular),
                Err(_) => Place::Reserve(permit),
            },
            regular => regular,
        };
        match place {
            Place::Regular(permit) => {
                let app = accepted.app.clone();
                let client = accepted.peers.then_some(peer);
                let service = hyper::service::service_fn(move |request| {
                    app.clone().oneshot(app_request(request, client))
                });
                let connection = regular.serve_connection(io, service);
                connections.spawn(connection, permit, peer);
            }
            Place::Reserve(permit) => {
                let service = reserve::ReserveService {
                    app: accepted.app.clone(),
                    peer: accepted.peers.then_some(peer),
                    refused: accepted.refused.clone(),
                };
                let connection = reserve.serve_connection(io, service);
                connections.spawn(connection, permit, peer);
            }
        }
    }
}

/// What serves an accepted connection.
struct Accepted {
    app: http::App,
    refused: Arc<RefusedRequests>,
    /// Whether requests carry the client's address ([`ConnectInfo`]).
    peers: bool,
}

/// `request` as the app takes it, with the client's address for the span's attributes when
/// spans record them (an extension costs an allocation, so it is left out otherwise).
fn app_request(
    request: hyper::Request<Incoming>,
    peer: Option<SocketAddr>,
) -> axum::extract::Request {
    let mut request = request.map(Body::new);
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

/// Connections the kernel holds for the app once it stops accepting (capped by
/// `net.core.somaxconn`, 4096 by default). The usual 128 overflows under a load test past the
/// limit, and then the kernel drops new connections, probes included, whose clients retry only
/// after a second.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `address` with a listen backlog of [`LISTEN_BACKLOG`].
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted app can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
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
