//! OpenTelemetry's HTTP semantic conventions, as this app applies them: the bounded method label,
//! `error.type`, the route of unmatched paths, the scheme and protocol version. Shared by the
//! request layer, the metrics backends and the client calls of `/chain`, so that spans and metrics
//! spell every attribute the same way.

use axum::http::{Method, Version};

/// The method label of a method outside the standard set.
pub const OTHER_METHOD: &str = "_OTHER";

/// The standard methods, in the order [`method_index`] numbers them; [`OTHER_METHOD`] comes last.
pub const METHODS: [&str; 10] = [
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "CONNECT",
    OTHER_METHOD,
];

/// Normalises a method to the bounded set of the conventions.
pub fn method_label(method: &Method) -> &'static str {
    METHODS[method_index(method)]
}

/// The position of a method's label in [`METHODS`].
pub fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::HEAD => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::OPTIONS => 5,
        Method::PATCH => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => 9,
    }
}

/// The `http.route` value shared by every path that matched no route, so that random URLs cannot
/// create new series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// `url.scheme` of every request: the app serves plain HTTP (TLS, if any, ends before it).
pub const URL_SCHEME: &str = "http";

/// Status recorded for a request whose client went away before the answer (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// `error.type`: why a request failed, from a bounded set. On the server side, set for a 5xx
/// answer, for a request whose client went away and for one cut at shutdown; a 4xx is the client's error and gets none, as
/// the conventions say for servers. On the client side (the calls of `/chain`), set for any answer
/// of 400 or more and for a call that got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// An error status, recorded as its code ("500").
    Status(u16),
    /// The client closed the connection before the answer.
    ClientClosed,
    /// The server stopped before answering: a request cut at the end of the shutdown grace period.
    Shutdown,
    /// An outgoing call got no complete answer within its time limit.
    Timeout,
    /// An outgoing call could not connect (refused, unknown host, failed TLS handshake).
    ConnectionFailed,
    /// An outgoing call got an answer that could not be read (cut short, too large).
    InvalidResponse,
    /// An outgoing call failed in another way (the conventions' fallback value).
    Other,
}

impl ErrorType {
    /// The error type of a request answered with `status`, or dropped unanswered (`aborted`).
    pub fn of(status: u16, aborted: bool) -> Option<Self> {
        if aborted {
            Some(ErrorType::ClientClosed)
        } else if status >= 500 {
            Some(ErrorType::Status(status))
        } else {
            None
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorType::Status(status) => write!(f, "{status}"),
            ErrorType::ClientClosed => f.write_str("client_closed"),
            ErrorType::Shutdown => f.write_str("shutdown"),
            ErrorType::Timeout => f.write_str("timeout"),
            ErrorType::ConnectionFailed => f.write_str("connection_failed"),
            ErrorType::InvalidResponse => f.write_str("invalid_response"),
            ErrorType::Other => f.write_str("_OTHER"),
        }
    }
}

/// `network.protocol.version` of an HTTP version, if it is one of the known versions.
pub fn protocol_version(version: Version) -> Option<&'static str> {
    match version {
        Version::HTTP_09 => Some("0.9"),
        Version::HTTP_10 => Some("1.0"),
        Version::HTTP_11 => Some("1.1"),
        Version::HTTP_2 => Some("2"),
        Version::HTTP_3 => Some("3"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_is_set_for_5xx_and_dropped_requests_only() {
        assert_eq!(ErrorType::of(200, false), None);
        assert_eq!(ErrorType::of(404, false), None);
        assert_eq!(ErrorType::of(503, false), Some(ErrorType::Status(503)));
        assert_eq!(ErrorType::of(499, true), Some(ErrorType::ClientClosed));
        assert_eq!(ErrorType::Status(500).to_string(), "500");
        assert_eq!(ErrorType::ClientClosed.to_string(), "client_closed");
        assert_eq!(ErrorType::Shutdown.to_string(), "shutdown");
        assert_eq!(ErrorType::Timeout.to_string(), "timeout");
        assert_eq!(ErrorType::Other.to_string(), "_OTHER");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"PURGE").unwrap();

        assert_eq!(method_label(&custom), "_OTHER");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::CONNECT), "CONNECT");
    }
}
