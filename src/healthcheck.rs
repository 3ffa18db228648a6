//! `prom-metrics-app healthcheck`: probes `/healthz` of a running instance, for container
//! HEALTHCHECKs and `helm test`, since the image has no shell and no curl.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use clap::Args;
use url::Url;

use crate::{
    config::parse::{parse_duration, parse_listen, parse_probe_url},
    errors::root_cause,
};

/// Options of `prom-metrics-app healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe [default: /healthz on LISTEN_ADDR, with 0.0.0.0 or [::] read as loopback].
    #[arg(long, value_name = "URL", value_parser = parse_probe_url)]
    pub url: Option<Url>,

    /// The address the instance listens on, as it was started with (read when --url is not given).
    #[arg(long, env = "LISTEN_ADDR", value_name = "LISTEN_ADDR", default_value = "0.0.0.0:5000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// How long to wait for the answer, e.g. `2s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Probes the instance and returns whether it answered 200, after printing one line that says
/// what was probed and what came back.
pub async fn run(args: &HealthcheckArgs) -> bool {
    let url = args.url.clone().unwrap_or_else(|| healthz_url(args.listen));
    // No proxy: the probe is always meant for the instance itself, whatever HTTP_PROXY says.
    let client = crate::tls::client_builder()
        .and_then(|builder| builder.no_proxy().timeout(args.timeout).build());
    let answer = match client {
        Ok(client) => client.get(url.clone()).send().await,
        Err(err) => Err(err),
    };
    match answer {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            eprintln!("healthy: {url} answered {}", response.status());
            true
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            false
        }
        Err(err) => {
            eprintln!("unhealthy: {url}: {}", root_cause(&err));
            false
        }
    }
}

/// `/healthz` on the listen address, with an unspecified address (0.0.0.0, [::]) read as the
/// loopback address of the same family: that is where a server bound to "any" can be reached.
pub fn healthz_url(listen: SocketAddr) -> Url {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, listen.port());
    Url::parse(&format!("http://{address}/healthz")).expect("an IP and a port make a valid URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            healthz_url("0.0.0.0:5000".parse().unwrap()).as_str(),
            "http://127.0.0.1:5000/healthz"
        );
        assert_eq!(
            healthz_url("[::]:8080".parse().unwrap()).as_str(),
            "http://[::1]:8080/healthz"
        );
        assert_eq!(
            healthz_url("10.1.2.3:5000".parse().unwrap()).as_str(),
            "http://10.1.2.3:5000/healthz"
        );
    }
}
