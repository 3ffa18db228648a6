//! The HTTP/1.1 client of `load`: hyper's connection-level client, one connection per request in
//! flight, each kept for the next request once its answer has been read to the end. No pool, no
//! redirects (the load goes to the target and nowhere else), no proxy (it would measure the
//! proxy), TLS for `https://` targets.
//!
//! A general-purpose client (`reqwest`) costs more than the load it sends at these rates: URL
//! parsing, a shared pool behind locks, and its own tasks per request. Here a request is a
//! header map and a write on a connection that the same thread drives.

use std::{cell::Cell, net::SocketAddr, sync::Arc};

use http_body_util::{BodyExt as _, Empty};
use hyper::{
    Request, Uri,
    body::Bytes,
    client::conn::http1::{self, SendRequest},
    header::{HOST, HeaderValue, USER_AGENT},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, rustls::pki_types::ServerName};
use url::Url;

use super::outcome::{ErrorKind, TransportError};

/// A connection to the target, ready for the next request once the last one's body is read.
pub type Connection = SendRequest<Empty<Bytes>>;

/// Where the requests go, and how to connect there.
pub struct Target {
    /// The target's addresses, tried in order.
    addresses: Vec<SocketAddr>,
    /// The `Host` header: the target's host and port, as in its URL.
    host: HeaderValue,
    user_agent: HeaderValue,
    /// TLS for an `https://` target.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// Resolves `url`'s host once, and prepares TLS when its scheme asks for it.
    pub async fn new(url: &Url) -> Result<Self, String> {
        let host = url.host_str().ok_or("the target has no host")?;
        let port = url
            .port_or_known_default()
            .ok_or("the target has no port")?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        // An IPv6 host comes bracketed from the URL; the resolver wants it bare.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|err| format!("cannot resolve {host}: {err}"))?
            .collect();
        let tls = match url.scheme() {
            "https" => {
                let name = ServerName::try_from(bare.to_string())
                    .map_err(|err| format!("{host} is not a TLS server name: {err}"))?;
                let config = crate::tls::rustls_client_config();
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(Self {
            addresses,
            host: HeaderValue::try_from(authority).map_err(|err| err.to_string())?,
            user_agent: HeaderValue::from_static(concat!(
                "prom-metrics-app-load/",
                env!("CARGO_PKG_VERSION")
            )),
            tls,
        })
    }

    /// Sends `GET path` on `connection`, or on a new one when there is none or it was closed,
    /// and reads the whole answer. Gives back the connection when it can carry the next
    /// request. `connected` turns true once a connection is there, so that a caller that gives
    /// up on the request can tell a connect timeout from a slow answer. No timer of its own: a
    /// timer per request would wake the runtime's driver for each (see `runner`).
    pub async fn get(
        &self,
        connection: Option<Connection>,
        path: &Uri,
        connected: &Cell<bool>,
    ) -> (Result<u16, TransportError>, Option<Connection>) {
        let mut connection = connection.filter(|c| !c.is_closed());
        // A kept connection that the server closed meanwhile gets the request back unsent, once:
        // then the request goes on a new connection, as any client does.
        for _ in 0..2 {
            let mut sender = match connection.take() {
                Some(sender) => sender,
                None => match self.connect().await {
                    Ok(sender) => sender,
                    Err(err) => return (Err(err), None),
                },
            };
            connected.set(true);
            if sender.ready().await.is_err() {
                continue;
            }
            let response = match sender.try_send_request(self.request(path)).await {
                Ok(response) => response,
                Err(mut err) => match err.take_message() {
                    // Not sent: the connection was closed before it could carry the request.
                    Some(_) => continue,
                    None => return (Err(other(&err.into_error())), None),
                },
            };
            let status = response.status().as_u16();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                if let Err(err) = frame {
                    return (Err(other(&err)), None);
                }
            }
            return (Ok(status), Some(sender));
        }
        (
            Err(failure(
                ErrorKind::Other,
                "the connection closed before the request could be sent".into(),
            )),
            None,
        )
    }

    fn request(&self, path: &Uri) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(USER_AGENT, self.user_agent.clone());
        request
    }

    /// A new connection, driven by a task of its own until both sides are done with it.
    async fn connect(&self) -> Result<Connection, TransportError> {
        let mut last = None;
        let mut stream = None;
        for address in &self.addresses {
            match TcpStream::connect(address).await {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(err) => last = Some(err),
            }
        }
        let Some(stream) = stream else {
            return Err(match last {
                Some(err) => not_connected(&err),
                None => failure(ErrorKind::Connect, "the host has no address".into()),
            });
        };
        // Requests are small and sent whole: no waiting for more bytes to fill a packet.
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => handshake(stream).await,
            Some((tls, name)) => {
                let stream = tls
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|err| not_connected(&err))?;
                handshake(stream).await
            }
        }
    }
}

/// HTTP/1.1 over a connected stream, plain or TLS; the connection is driven by a task of its own.
async fn handshake<S>(stream: S) -> Result<Connection, TransportError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| not_connected(&err))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn failure(kind: ErrorKind, cause: String) -> TransportError {
    TransportError { kind, cause }
}

fn not_connected(err: &(dyn std::error::Error + 'static)) -> TransportError {
    failure(ErrorKind::Connect, crate::errors::root_cause(err))
}

fn other(err: &hyper::Error) -> TransportError {
    failure(ErrorKind::Other, crate::errors::root_cause(err))
}
