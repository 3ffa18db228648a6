//! The parsers of setting values. Each error says what is valid; [`super::error::one_line`] prints
//! it on one line with the variable, the flag and the value.

use std::{net::SocketAddr, time::Duration};

use url::Url;

use super::values::{Downstreams, KeyValues, NativeHistograms, PathList, Propagator, Propagators};

pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("valid values are true, false (also 1, 0, yes, no, on, off)".to_string()),
    }
}

pub fn parse_log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("{e}; expected a filter such as info or warn,prom_metrics_app=debug"))
}

/// Like [`parse_key_values`], with names and values that are valid HTTP headers.
pub fn parse_headers(value: &str) -> Result<KeyValues, String> {
    let headers = parse_key_values(value)?;
    for (name, value) in &headers.0 {
        axum::http::HeaderName::try_from(name.to_ascii_lowercase())
            .map_err(|_| format!("'{name}' is not a valid header name"))?;
        axum::http::HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("the value of '{name}' is not a valid header value"))?;
    }
    Ok(headers)
}

/// Parses an OTLP endpoint. A bare `host:port`, as the original's examples wrote it, gets `http://`;
/// `OTEL_EXPORTER_OTLP_INSECURE=false` later turns it into TLS, as the specification says.
pub fn parse_endpoint(value: &str) -> Result<Url, String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| format!("{e}; expected a URL such as http://collector:4317"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(
            "expected an http:// or https:// URL with a host, such as http://collector:4317"
                .to_string(),
        );
    }
    Ok(url)
}

/// Parses the `healthcheck --url`: plain `http://` only, since it probes a local instance.
pub fn parse_probe_url(value: &str) -> Result<Url, String> {
    match Url::parse(value.trim()) {
        Ok(url) if url.scheme() == "http" && url.host_str().is_some() => Ok(url),
        _ => Err("expected an http:// URL, such as http://127.0.0.1:5000/healthz".to_string()),
    }
}

/// Parses `IP:PORT` or `HOST:PORT`; a host name is resolved now, and its first address is used.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    let expected =
        "expected IP:PORT or HOST:PORT, such as 0.0.0.0:5000, [::]:5000 or localhost:5000";
    let value = value.trim();
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            std::net::ToSocketAddrs::to_socket_addrs(value)
                .map_err(|e| format!("cannot resolve '{host}': {e}; {expected}"))?
                .next()
                .ok_or_else(|| format!("'{host}' has no address; {expected}"))
        }
        _ => Err(expected.to_string()),
    }
}

/// Parses a comma-separated list of paths, each starting with `/`; `none` is the empty list.
pub fn parse_paths(value: &str) -> Result<PathList, String> {
    let mut paths = Vec::new();
    for path in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if path.eq_ignore_ascii_case("none") {
            continue;
        }
        if !path.starts_with('/') {
            return Err(format!(
                "'{path}' is not a path; expected paths such as /healthz,/readyz,/static/*, or none"
            ));
        }
        paths.push(path.to_string());
    }
    Ok(PathList(paths))
}

pub fn parse_millis(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| "expected a whole number of milliseconds, such as 10000".to_string())
}

pub fn parse_interval(value: &str) -> Result<Duration, String> {
    match parse_millis(value)? {
        d if d.is_zero() => {
            Err("expected a whole number of milliseconds above 0, such as 10000".to_string())
        }
        d => Ok(d),
    }
}

pub fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("expected a number from 0 to 1, such as 0.25".to_string()),
    }
}

/// Parses a duration: a number of seconds (`30`, `1.5`), or a number with units as `humantime`
/// reads them (`30s`, `500ms`, `2m`, `1.5s`, `1h 30m`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let invalid = || "expected a duration such as 30s, 500ms, 2m or 30 (seconds)".to_string();
    match value.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).map_err(|_| invalid()),
        Err(_) => humantime::parse_duration(value).map_err(|_| invalid()),
    }
}

/// The largest `NATIVE_HISTOGRAM_BUCKET_FACTOR`: 2^16, the growth of the coarsest native schema (-4).
pub const MAX_NATIVE_BUCKET_FACTOR: f64 = 65536.0;

/// Parses `NATIVE_HISTOGRAM_BUCKET_FACTOR`: `off`, or a factor above 1 and at most 65536.
pub fn parse_native_bucket_factor(value: &str) -> Result<NativeHistograms, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(NativeHistograms::Off);
    }
    match value.parse::<f64>() {
        Ok(factor) if factor > 1.0 && factor <= MAX_NATIVE_BUCKET_FACTOR => {
            Ok(NativeHistograms::BucketFactor(factor))
        }
        _ => Err(format!(
            "expected off, or a bucket growth factor above 1 and at most {MAX_NATIVE_BUCKET_FACTOR}, such as 1.1"
        )),
    }
}

/// Parses `CHAOS_ERROR_STATUS`: an error status, 400 to 599.
pub fn parse_error_status(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(status) if (400..=599).contains(&status) => Ok(status),
        _ => Err("expected an error status from 400 to 599, such as 500 or 503".to_string()),
    }
}

/// Parses `CHAOS_LATENCY` and `CHAOS_JITTER`: a duration from 0 to 60 s.
pub fn parse_chaos_latency(value: &str) -> Result<Duration, String> {
    match parse_duration(value) {
        Ok(latency) if latency.as_secs_f64() <= super::MAX_CHAOS_LATENCY.as_secs_f64() => {
            Ok(latency)
        }
        _ => Err("expected a duration from 0 to 60s, such as 200ms or 1.5s".to_string()),
    }
}

pub fn parse_seed(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number from 0 to 18446744073709551615".to_string())
}

/// The longest a downstream call of `/chain` may be allowed to take.
pub const MAX_DOWNSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `DOWNSTREAM_URL`: comma-separated `http://` or `https://` base URLs with a host and
/// without a query or fragment. Empty items are skipped, so an empty value means no downstream.
pub fn parse_downstreams(value: &str) -> Result<Downstreams, String> {
    let expected = "expected http:// or https:// base URLs, comma-separated, such as http://b:5000,https://c.example";
    let mut urls = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let url =
            Url::parse(item).map_err(|e| format!("'{item}' is not a URL ({e}); {expected}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "'{item}' is not an http:// or https:// URL with a host; {expected}"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("'{item}' has a query or a fragment; {expected}"));
        }
        urls.push(url);
    }
    Ok(Downstreams(urls))
}

/// Parses `DOWNSTREAM_TIMEOUT`: a duration above 0, at most [`MAX_DOWNSTREAM_TIMEOUT`].
pub fn parse_downstream_timeout(value: &str) -> Result<Duration, String> {
    let range = "expected a duration from 1ms to 60s, such as 2s or 500ms";
    match parse_duration(value) {
        Ok(timeout) if timeout >= Duration::from_millis(1) && timeout <= MAX_DOWNSTREAM_TIMEOUT => {
            Ok(timeout)
        }
        _ => Err(range.to_string()),
    }
}

pub fn parse_propagators(value: &str) -> Result<Propagators, String> {
    let mut list = Vec::new();
    for name in value.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        let propagator = match name.as_str() {
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            "b3" => Propagator::B3,
            "b3multi" => Propagator::B3Multi,
            "none" | "" => continue,
            other => {
                return Err(format!(
                    "'{other}' is not supported; valid values are tracecontext, baggage, b3, b3multi, none"
                ));
            }
        };
        if !list.contains(&propagator) {
            list.push(propagator);
        }
    }
    Ok(Propagators(list))
}

/// Parses the W3C-baggage-like `key=value,key2=value2` lists of `OTEL_EXPORTER_OTLP_HEADERS` and
/// `OTEL_RESOURCE_ATTRIBUTES`, with percent-encoded values.
pub fn parse_key_values(value: &str) -> Result<KeyValues, String> {
    let mut pairs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, val) = item
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("'{item}' is not key=value; expected key=value,key2=value2"))?;
        let val =
            url::form_urlencoded::parse(format!("v={}", val.trim().replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        pairs.push((key.trim().to_string(), val));
    }
    Ok(KeyValues(pairs))
}

/// The largest `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`: a request head is at most 1 MiB anyway.
pub const MAX_VALUE_LENGTH_LIMIT: usize = 1 << 20;

/// Parses `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`: a number of characters, from 1 to 1048576.
pub fn parse_value_length_limit(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(limit) if (1..=MAX_VALUE_LENGTH_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(format!(
            "expected a whole number of characters from 1 to {MAX_VALUE_LENGTH_LIMIT}, such as 4096"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_bucket_factor_is_off_or_above_one() {
        assert_eq!(
            parse_native_bucket_factor("1.1"),
            Ok(NativeHistograms::BucketFactor(1.1))
        );
        assert_eq!(parse_native_bucket_factor("OFF"), Ok(NativeHistograms::Off));
        for bad in ["1", "0.5", "-2", "nan", "inf", "70000", "fine"] {
            assert!(parse_native_bucket_factor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn endpoint_must_be_http_or_https() {
        assert_eq!(
            parse_endpoint("collector:4317").unwrap().as_str(),
            "http://collector:4317/"
        );
        assert!(parse_endpoint("not a url").is_err());
        assert!(parse_endpoint("ftp://collector:21").is_err());
        assert!(parse_endpoint("https://collector:4317").is_ok());
    }

    #[test]
    fn propagators_are_parsed_in_order_without_duplicates() {
        let parsed = parse_propagators("b3multi, tracecontext,b3multi").unwrap();

        assert_eq!(
            parsed.0,
            vec![Propagator::B3Multi, Propagator::TraceContext]
        );
        assert!(parse_propagators("none").unwrap().0.is_empty());
        assert!(parse_propagators("xray").unwrap_err().contains("xray"));
    }

    #[test]
    fn key_values_are_percent_decoded() {
        let parsed = parse_key_values("api-key=a%20b,team=sre").unwrap();

        assert_eq!(parsed.0[0], ("api-key".to_string(), "a b".to_string()));
        assert_eq!(parsed.0[1], ("team".to_string(), "sre".to_string()));
        assert!(parse_key_values("novalue").is_err());
    }

    #[test]
    fn headers_must_be_valid_http_headers() {
        assert!(parse_headers("x-api-key=abc").is_ok());
        assert!(
            parse_headers("bad name=abc")
                .unwrap_err()
                .contains("bad name")
        );
        assert!(parse_headers("x-key=a%0Ab").is_err());
    }

    #[test]
    fn listen_accepts_host_names() {
        let address = parse_listen("localhost:5000").unwrap();

        assert!(address.ip().is_loopback(), "{address}");
        assert_eq!(address.port(), 5000);
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("localhost:99999").is_err());
        assert!(parse_listen("[::]:5000").is_ok());
    }

    #[test]
    fn excluded_paths_match_exactly_or_by_prefix() {
        let paths = parse_paths("/healthz, /static/*").unwrap();

        assert!(paths.matches("/healthz"));
        assert!(!paths.matches("/healthz/more"));
        assert!(paths.matches("/static/style.css"));
        assert!(!paths.matches("/"));
        assert!(parse_paths("none").unwrap().0.is_empty());
        assert!(parse_paths("healthz").unwrap_err().contains("healthz"));
    }

    #[test]
    fn downstreams_are_http_base_urls_in_order() {
        let parsed = parse_downstreams(" http://b:5000, https://c.example/prefix/ ,").unwrap();

        let urls: Vec<&str> = parsed.0.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://b:5000/", "https://c.example/prefix/"]);
        assert!(parse_downstreams("").unwrap().0.is_empty());
        for bad in [
            "b:5000",
            "ftp://b",
            "http://",
            "http://b/?x=1",
            "http://b/#top",
            "not a url",
        ] {
            let err = parse_downstreams(bad).unwrap_err();
            assert!(err.contains("http://"), "{bad}: {err}");
        }
    }

    #[test]
    fn downstream_timeout_is_bounded() {
        assert_eq!(
            parse_downstream_timeout("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_downstream_timeout("1m"), Ok(Duration::from_secs(60)));
        for bad in ["0", "0s", "61s", "2m", "soon", "-1"] {
            assert!(
                parse_downstream_timeout(bad)
                    .unwrap_err()
                    .contains("1ms to 60s"),
                "{bad}"
            );
        }
    }
}
