//! The limits that protect the server from oversized, slow or too many requests.

use std::time::Duration;

use clap::Args;

use super::parse::parse_duration;

/// Limits on requests and connections (flattened into [`super::Config`]).
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest request head (request line and headers) in bytes, from 8192 (hyper's minimum) to 1048576; larger gets 431.
    #[arg(long, env = "MAX_HEADER_BYTES", value_name = "MAX_HEADER_BYTES", default_value = "16384", value_parser = parse_header_bytes)]
    pub max_header_bytes: usize,

    /// Largest request body in bytes, from 1 to 1073741824; larger gets 413.
    #[arg(long, env = "MAX_BODY_BYTES", value_name = "MAX_BODY_BYTES", default_value = "65536", value_parser = parse_body_bytes)]
    pub max_body_bytes: usize,

    /// How long a client may take to send a request's headers before its connection is closed, from 100ms to 5m.
    #[arg(long, env = "HEADER_READ_TIMEOUT", value_name = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_header_timeout)]
    pub header_read_timeout: Duration,

    /// Most connections served at once, from 1 to 1000000; beyond it, the reserve, then the listen backlog.
    #[arg(long, env = "MAX_CONNECTIONS", value_name = "MAX_CONNECTIONS", default_value = "1024", value_parser = parse_connections)]
    pub max_connections: usize,

    /// Connections accepted beyond MAX_CONNECTIONS, from 0 to 100000, each for one request: /healthz, /readyz and /metrics are served, others get 503.
    #[arg(long, env = "RESERVED_CONNECTIONS", value_name = "RESERVED_CONNECTIONS", default_value = "128", value_parser = parse_reserved)]
    pub reserved_connections: usize,
}

fn parse_bounded(value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

fn parse_header_bytes(value: &str) -> Result<usize, String> {
    parse_bounded(value, 8192, 1 << 20).map_err(|e| format!("{e} (bytes), such as 16384"))
}

fn parse_body_bytes(value: &str) -> Result<usize, String> {
    parse_bounded(value, 1, 1 << 30).map_err(|e| format!("{e} (bytes), such as 65536"))
}

fn parse_connections(value: &str) -> Result<usize, String> {
    parse_bounded(value, 1, 1_000_000).map_err(|e| format!("{e}, such as 1024"))
}

fn parse_reserved(value: &str) -> Result<usize, String> {
    parse_bounded(value, 0, 100_000).map_err(|e| format!("{e}, such as 128"))
}

fn parse_header_timeout(value: &str) -> Result<Duration, String> {
    match parse_duration(value) {
        Ok(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(300) => Ok(d),
        _ => Err("expected a duration from 100ms to 5m, such as 10s".to_string()),
    }
}
