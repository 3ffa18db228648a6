//! `prom-metrics-app healthcheck`: probes `/healthz` of a running instance, for container
//! HEALTHCHECKs and `helm test`, since the image has no shell and no curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

use crate::config::HealthcheckArgs;

/// Probes the instance and returns whether it answered 200, after printing one line that says
/// what was probed and what came back.
pub async fn run(listen: SocketAddr, args: &HealthcheckArgs) -> bool {
    let url = args.url.clone().unwrap_or_else(|| healthz_url(listen));
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

/// The innermost cause, such as "Connection refused (os error 111)": reqwest's own message
/// ("error sending request for url ...") does not say what went wrong.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
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
