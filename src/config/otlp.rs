//! The OTLP exporter's settings under the names the OpenTelemetry specification gives them: the
//! general `OTEL_EXPORTER_OTLP_*` ones and, over them, the per-signal
//! `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_*` ones. [`OtlpSettings::target`] resolves them for
//! one signal: a per-signal value beats the general one, which beats the default.

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use clap::{ArgAction, Args};
use url::Url;

use super::parse::{parse_bool, parse_endpoint, parse_headers, parse_millis};
use super::values::{Compression, KeyValues, OtlpProtocol};

/// A telemetry signal, as the per-signal settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// The signal's name in paths (`/v1/traces`) and messages.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The signal's part of a per-signal variable's name (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub fn variable(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }
}

/// A PEM file read and checked at start. `Debug` shows the path, never the content: it may be a
/// private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its content.
    pub pem: Arc<str>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemFile").field("path", &self.path).finish()
    }
}

fn read_pem(value: &str) -> Result<PemFile, String> {
    let path = PathBuf::from(value.trim());
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    Ok(PemFile {
        path,
        pem: pem.into(),
    })
}

/// Parses a file of one or more PEM certificates (a CA bundle, or a client's chain).
pub fn parse_certificate_file(value: &str) -> Result<PemFile, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let file = read_pem(value)?;
    let certificates = CertificateDer::pem_slice_iter(file.pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("'{}' is not PEM: {e}", file.path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "'{}' holds no certificate; expected a PEM file with -----BEGIN CERTIFICATE-----",
            file.path.display()
        ));
    }
    Ok(file)
}

/// Parses a file holding one PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key_file(value: &str) -> Result<PemFile, String> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let file = read_pem(value)?;
    PrivateKeyDer::from_pem_slice(file.pem.as_bytes()).map_err(|e| {
        format!(
            "'{}' holds no private key ({e}); expected a PEM file with -----BEGIN PRIVATE KEY-----",
            file.path.display()
        )
    })?;
    Ok(file)
}

/// The general OTLP settings, and each signal's over them (flattened into [`super::Config`]).
#[derive(Debug, Clone, Args)]
pub struct OtlpSettings {
    /// OTLP collector URL; over http/protobuf, /v1/traces, /v1/metrics or /v1/logs is appended to it [default: http://localhost:4317 for grpc, http://localhost:4318 for http/protobuf].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_endpoint)]
    pub otel_exporter_otlp_endpoint: Option<Url>,

    /// `false`: send OTLP over TLS with the system's roots, even to an http:// URL; `true`: as the URL's scheme says.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_INSECURE", value_name = "OTEL_EXPORTER_OTLP_INSECURE", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub otel_exporter_otlp_insecure: bool,

    /// OTLP transport: `grpc` or `http/protobuf`.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_name = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "grpc",
        ignore_case = true
    )]
    pub otel_exporter_otlp_protocol: OtlpProtocol,

    /// Headers sent with every OTLP export, as `key=value,key2=value2` (values URL-encoded).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_HEADERS", value_name = "OTEL_EXPORTER_OTLP_HEADERS", value_parser = parse_headers, hide_env_values = true)]
    pub otel_exporter_otlp_headers: Option<KeyValues>,

    /// Time limit of one OTLP export, in milliseconds.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", value_name = "OTEL_EXPORTER_OTLP_TIMEOUT", default_value = "10000", value_parser = parse_millis)]
    pub otel_exporter_otlp_timeout: Duration,

    /// Compression of OTLP exports: `gzip` or `none`.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_COMPRESSION",
        value_name = "OTEL_EXPORTER_OTLP_COMPRESSION",
        default_value = "none",
        ignore_case = true
    )]
    pub otel_exporter_otlp_compression: Compression,

    /// PEM file of the certificates that a TLS collector's certificate must chain to, instead of the system's roots.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE", value_name = "OTEL_EXPORTER_OTLP_CERTIFICATE", value_parser = parse_certificate_file)]
    pub otel_exporter_otlp_certificate: Option<PemFile>,

    /// PEM file of the private key that the app presents to a TLS collector (mTLS); needs a client certificate.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_KEY", value_name = "OTEL_EXPORTER_OTLP_CLIENT_KEY", value_parser = parse_key_file)]
    pub otel_exporter_otlp_client_key: Option<PemFile>,

    /// PEM file of the certificate chain that the app presents to a TLS collector (mTLS); needs a client key.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", value_name = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", value_parser = parse_certificate_file)]
    pub otel_exporter_otlp_client_certificate: Option<PemFile>,

    #[command(flatten)]
    pub traces: TracesOtlp,

    #[command(flatten)]
    pub metrics: MetricsOtlp,

    #[command(flatten)]
    pub logs: LogsOtlp,
}

/// One signal's own OTLP settings, each unset by default: the general one then applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalOtlp {
    pub endpoint: Option<Url>,
    pub headers: Option<KeyValues>,
    pub timeout: Option<Duration>,
    pub protocol: Option<OtlpProtocol>,
    pub compression: Option<Compression>,
    pub insecure: Option<bool>,
    pub certificate: Option<PemFile>,
    pub client_key: Option<PemFile>,
    pub client_certificate: Option<PemFile>,
}

/// The per-signal settings of `$signal` as clap arguments, and their conversion into a
/// [`SignalOtlp`]: three signals, one shape, so the names are made once, here.
macro_rules! signal_settings {
    ($name:ident, $signal:literal, $upper:literal, $note:literal) => {
        #[doc = concat!("The `OTEL_EXPORTER_OTLP_", $upper, "_*` settings.")]
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_endpoint"),
                long = concat!("otel-exporter-otlp-", $signal, "-endpoint"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_ENDPOINT"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_ENDPOINT"),
                value_parser = parse_endpoint,
                help = concat!("OTLP URL of ", $signal, " alone, used as given over http/protobuf too (nothing is appended); unset: OTEL_EXPORTER_OTLP_ENDPOINT.", $note)
            )]
            pub endpoint: Option<Url>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_headers"),
                long = concat!("otel-exporter-otlp-", $signal, "-headers"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_HEADERS"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_HEADERS"),
                value_parser = parse_headers,
                hide_env_values = true,
                help = concat!("Headers of ", $signal, " exports, instead of OTEL_EXPORTER_OTLP_HEADERS, as `key=value,key2=value2`.", $note)
            )]
            pub headers: Option<KeyValues>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_timeout"),
                long = concat!("otel-exporter-otlp-", $signal, "-timeout"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_TIMEOUT"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_TIMEOUT"),
                value_parser = parse_millis,
                help = concat!("Time limit of one ", $signal, " export in milliseconds; unset: OTEL_EXPORTER_OTLP_TIMEOUT.", $note)
            )]
            pub timeout: Option<Duration>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_protocol"),
                long = concat!("otel-exporter-otlp-", $signal, "-protocol"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_PROTOCOL"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_PROTOCOL"),
                ignore_case = true,
                help = concat!("OTLP transport of ", $signal, ", `grpc` or `http/protobuf`; unset: OTEL_EXPORTER_OTLP_PROTOCOL.", $note)
            )]
            pub protocol: Option<OtlpProtocol>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_compression"),
                long = concat!("otel-exporter-otlp-", $signal, "-compression"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_COMPRESSION"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_COMPRESSION"),
                ignore_case = true,
                help = concat!("Compression of ", $signal, " exports, `gzip` or `none`; unset: OTEL_EXPORTER_OTLP_COMPRESSION.", $note)
            )]
            pub compression: Option<Compression>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_insecure"),
                long = concat!("otel-exporter-otlp-", $signal, "-insecure"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_INSECURE"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_INSECURE"),
                value_parser = parse_bool,
                action = ArgAction::Set,
                help = concat!("`false`: ", $signal, " over TLS even to an http:// URL; unset: OTEL_EXPORTER_OTLP_INSECURE.", $note)
            )]
            pub insecure: Option<bool>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_certificate"),
                long = concat!("otel-exporter-otlp-", $signal, "-certificate"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CERTIFICATE"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CERTIFICATE"),
                value_parser = parse_certificate_file,
                help = concat!("PEM file of the CA certificates that the ", $signal, " collector's must chain to; unset: OTEL_EXPORTER_OTLP_CERTIFICATE.", $note)
            )]
            pub certificate: Option<PemFile>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_client_key"),
                long = concat!("otel-exporter-otlp-", $signal, "-client-key"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CLIENT_KEY"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CLIENT_KEY"),
                value_parser = parse_key_file,
                help = concat!("PEM file of the client key presented to the ", $signal, " collector; unset: OTEL_EXPORTER_OTLP_CLIENT_KEY.", $note)
            )]
            pub client_key: Option<PemFile>,

            #[arg(
                id = concat!("otel_exporter_otlp_", $signal, "_client_certificate"),
                long = concat!("otel-exporter-otlp-", $signal, "-client-certificate"),
                env = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CLIENT_CERTIFICATE"),
                value_name = concat!("OTEL_EXPORTER_OTLP_", $upper, "_CLIENT_CERTIFICATE"),
                value_parser = parse_certificate_file,
                help = concat!("PEM file of the client certificate presented to the ", $signal, " collector; unset: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE.", $note)
            )]
            pub client_certificate: Option<PemFile>,
        }

        impl $name {
            /// These settings, apart from the clap arguments.
            pub fn settings(&self) -> SignalOtlp {
                SignalOtlp {
                    endpoint: self.endpoint.clone(),
                    headers: self.headers.clone(),
                    timeout: self.timeout,
                    protocol: self.protocol,
                    compression: self.compression,
                    insecure: self.insecure,
                    certificate: self.certificate.clone(),
                    client_key: self.client_key.clone(),
                    client_certificate: self.client_certificate.clone(),
                }
            }
        }
    };
}

signal_settings!(TracesOtlp, "traces", "TRACES", "");
signal_settings!(MetricsOtlp, "metrics", "METRICS", "");
signal_settings!(LogsOtlp, "logs", "LOGS", "");

/// Where and how one signal goes over OTLP, every setting resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// The URL requests go to: with gRPC the collector's, with HTTP the whole export URL. An
    /// `http://` URL is turned into `https://` when the signal is not insecure.
    pub endpoint: Url,
    pub protocol: OtlpProtocol,
    pub headers: KeyValues,
    pub timeout: Duration,
    pub compression: Compression,
    /// The roots that the collector's certificate must chain to; `None`: the system's.
    pub certificate: Option<PemFile>,
    /// The client's key and certificate chain, for mTLS.
    pub identity: Option<(PemFile, PemFile)>,
}

impl OtlpSettings {
    /// One signal's own settings.
    pub fn signal(&self, signal: Signal) -> SignalOtlp {
        match signal {
            Signal::Traces => self.traces.settings(),
            Signal::Metrics => self.metrics.settings(),
            Signal::Logs => self.logs.settings(),
        }
    }

    /// The general endpoint, defaulting by protocol as the specification does.
    pub fn endpoint(&self, protocol: OtlpProtocol) -> Url {
        if let Some(url) = &self.otel_exporter_otlp_endpoint {
            return url.clone();
        }
        let default = match protocol {
            OtlpProtocol::Grpc => "http://localhost:4317",
            OtlpProtocol::HttpProtobuf => "http://localhost:4318",
        };
        Url::parse(default).expect("default endpoints are valid URLs")
    }

    /// `signal`'s settings resolved: its own, else the general ones, else the defaults. A
    /// per-signal endpoint is used as given; over HTTP, the general one gets `/v1/<signal>`.
    pub fn target(&self, signal: Signal) -> OtlpTarget {
        let own = self.signal(signal);
        let protocol = own.protocol.unwrap_or(self.otel_exporter_otlp_protocol);
        let mut endpoint = match (&own.endpoint, protocol) {
            (Some(url), _) => url.clone(),
            (None, OtlpProtocol::Grpc) => self.endpoint(protocol),
            (None, OtlpProtocol::HttpProtobuf) => {
                let base = self.endpoint(protocol);
                let joined = format!(
                    "{}/v1/{}",
                    base.as_str().trim_end_matches('/'),
                    signal.name()
                );
                Url::parse(&joined).expect("a path appended to a URL is a URL")
            }
        };
        let insecure = own.insecure.unwrap_or(self.otel_exporter_otlp_insecure);
        if !insecure && endpoint.scheme() == "http" {
            endpoint
                .set_scheme("https")
                .expect("http and https are interchangeable schemes");
        }
        let key = own
            .client_key
            .or_else(|| self.otel_exporter_otlp_client_key.clone());
        let chain = own
            .client_certificate
            .or_else(|| self.otel_exporter_otlp_client_certificate.clone());
        OtlpTarget {
            endpoint,
            protocol,
            headers: own
                .headers
                .or_else(|| self.otel_exporter_otlp_headers.clone())
                .unwrap_or_default(),
            timeout: own.timeout.unwrap_or(self.otel_exporter_otlp_timeout),
            compression: own
                .compression
                .unwrap_or(self.otel_exporter_otlp_compression),
            certificate: own
                .certificate
                .or_else(|| self.otel_exporter_otlp_certificate.clone()),
            identity: key.zip(chain),
        }
    }

    /// Checks that each signal's client key and client certificate come together.
    pub fn validate(&self) -> Result<(), String> {
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let own = self.signal(signal);
            let key = own.client_key.is_some() || self.otel_exporter_otlp_client_key.is_some();
            let chain = own.client_certificate.is_some()
                || self.otel_exporter_otlp_client_certificate.is_some();
            let upper = signal.variable();
            let (set, missing) = match (key, chain) {
                (true, false) => ("CLIENT_KEY", "CLIENT_CERTIFICATE"),
                (false, true) => ("CLIENT_CERTIFICATE", "CLIENT_KEY"),
                _ => continue,
            };
            return Err(format!(
                "a client {} is set for {} without a client {}: set OTEL_EXPORTER_OTLP_{missing} (or OTEL_EXPORTER_OTLP_{upper}_{missing}) too, or unset OTEL_EXPORTER_OTLP_{set} and OTEL_EXPORTER_OTLP_{upper}_{set}",
                set.trim_start_matches("CLIENT_").to_ascii_lowercase(),
                signal.name(),
                missing.trim_start_matches("CLIENT_").to_ascii_lowercase(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::config::{Config, error::one_line};

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
    }

    /// A CA certificate, and a certificate with its key: files in a fresh folder.
    fn pem_files() -> (PathBuf, PathBuf, PathBuf) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pma-pem-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        std::fs::write(&files.0, cert.pem()).unwrap();
        std::fs::write(&files.1, cert.pem()).unwrap();
        std::fs::write(&files.2, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn every_otlp_variable_is_named_as_the_specification_spells_it() {
        let documented = crate::config::env::documented(&Config::command());
        let settings = [
            "ENDPOINT",
            "HEADERS",
            "TIMEOUT",
            "PROTOCOL",
            "COMPRESSION",
            "INSECURE",
            "CERTIFICATE",
            "CLIENT_KEY",
            "CLIENT_CERTIFICATE",
        ];

        let missing: Vec<String> = ["", "TRACES_", "METRICS_", "LOGS_"]
            .iter()
            .flat_map(|signal| {
                settings
                    .iter()
                    .map(move |setting| format!("OTEL_EXPORTER_OTLP_{signal}{setting}"))
            })
            .filter(|name| !documented.contains(name))
            .collect();

        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn each_signal_takes_its_own_settings_over_the_general_ones() {
        let config = parse(&[
            "--otel-exporter-otlp-endpoint=http://collector:4318",
            "--otel-exporter-otlp-protocol=http/protobuf",
            "--otel-exporter-otlp-headers=team=sre",
            "--otel-exporter-otlp-compression=gzip",
            "--otel-exporter-otlp-timeout=2000",
            "--otel-exporter-otlp-traces-protocol=grpc",
            "--otel-exporter-otlp-traces-headers=x-key=a%20b",
            "--otel-exporter-otlp-traces-timeout=500",
            "--otel-exporter-otlp-metrics-endpoint=http://prometheus:9090/api/v1/otlp/v1/metrics",
            "--otel-exporter-otlp-metrics-compression=NONE",
            "--otel-exporter-otlp-logs-protocol=http/protobuf",
        ])
        .unwrap();

        let traces = config.otlp(Signal::Traces);
        let metrics = config.otlp(Signal::Metrics);
        let logs = config.otlp(Signal::Logs);
        assert_eq!(traces.protocol, OtlpProtocol::Grpc);
        assert_eq!(
            traces.endpoint.as_str(),
            "http://collector:4318/",
            "gRPC takes the general URL as it is"
        );
        assert_eq!(traces.headers.0, [("x-key".into(), "a b".into())]);
        assert_eq!(traces.timeout, Duration::from_millis(500));
        assert_eq!(traces.compression, Compression::Gzip);
        assert_eq!(
            metrics.endpoint.as_str(),
            "http://prometheus:9090/api/v1/otlp/v1/metrics",
            "a signal's own URL is used as given"
        );
        assert_eq!(metrics.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(metrics.headers.0, [("team".into(), "sre".into())]);
        assert_eq!(metrics.timeout, Duration::from_secs(2));
        assert_eq!(metrics.compression, Compression::None);
        assert_eq!(logs.endpoint.as_str(), "http://collector:4318/v1/logs");
    }

    #[test]
    fn without_any_endpoint_each_signal_gets_the_default_of_its_protocol() {
        let config = parse(&["--otel-exporter-otlp-metrics-protocol=http/protobuf"]).unwrap();

        assert_eq!(
            config.otlp(Signal::Traces).endpoint.as_str(),
            "http://localhost:4317/"
        );
        assert_eq!(
            config.otlp(Signal::Metrics).endpoint.as_str(),
            "http://localhost:4318/v1/metrics"
        );
        assert_eq!(
            config.otlp(Signal::Metrics).compression,
            Compression::None,
            "uncompressed by default"
        );
    }

    #[test]
    fn a_signal_that_is_not_insecure_goes_over_tls_even_to_an_http_url() {
        let config = parse(&[
            "--otel-exporter-otlp-endpoint=http://collector:4317",
            "--otel-exporter-otlp-metrics-insecure=false",
        ])
        .unwrap();
        let general = parse(&[
            "--otel-exporter-otlp-insecure=false",
            "--otel-exporter-otlp-traces-insecure=true",
        ])
        .unwrap();

        assert_eq!(config.otlp(Signal::Traces).endpoint.scheme(), "http");
        assert_eq!(config.otlp(Signal::Metrics).endpoint.scheme(), "https");
        assert_eq!(general.otlp(Signal::Traces).endpoint.scheme(), "http");
        assert_eq!(general.otlp(Signal::Logs).endpoint.scheme(), "https");
    }

    #[test]
    fn certificate_and_key_files_are_read_and_checked_at_start() {
        let (ca, cert, key) = pem_files();
        let (ca, cert, key) = (
            ca.to_str().unwrap(),
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        );

        let config = parse(&[
            &format!("--otel-exporter-otlp-certificate={ca}"),
            &format!("--otel-exporter-otlp-client-key={key}"),
            &format!("--otel-exporter-otlp-client-certificate={cert}"),
            &format!("--otel-exporter-otlp-traces-certificate={cert}"),
        ])
        .unwrap();

        let metrics = config.otlp(Signal::Metrics);
        assert_eq!(
            metrics.certificate.as_ref().unwrap().path,
            PathBuf::from(ca)
        );
        let (client_key, chain) = metrics.identity.as_ref().unwrap();
        assert!(client_key.pem.contains("PRIVATE KEY"));
        assert!(chain.pem.contains("BEGIN CERTIFICATE"));
        assert!(
            !format!("{client_key:?}").contains("PRIVATE"),
            "never shown"
        );
        let traces = config.otlp(Signal::Traces);
        assert_eq!(traces.certificate.unwrap().path, PathBuf::from(cert));
        for (flag, value, expected) in [
            (
                "--otel-exporter-otlp-certificate",
                "/nonexistent/ca.pem",
                "cannot read",
            ),
            ("--otel-exporter-otlp-certificate", key, "no certificate"),
            (
                "--otel-exporter-otlp-metrics-client-key",
                cert,
                "no private key",
            ),
            (
                "--otel-exporter-otlp-logs-client-certificate",
                "/nonexistent",
                "cannot read",
            ),
        ] {
            let err = parse(&[&format!("{flag}={value}")]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(line.contains(expected), "{line}");
            assert!(line.contains("OTEL_EXPORTER_OTLP_"), "{line}");
        }
    }

    #[test]
    fn a_client_key_and_a_client_certificate_go_together_for_each_signal() {
        let (_, cert, key) = pem_files();
        let key = format!("--otel-exporter-otlp-client-key={}", key.display());
        let signal_cert = format!(
            "--otel-exporter-otlp-logs-client-certificate={}",
            cert.display()
        );
        let general_cert = format!("--otel-exporter-otlp-client-certificate={}", cert.display());

        let alone = parse(&[&key]).unwrap().validate().unwrap_err();
        let logs_only = parse(&[&key, &signal_cert])
            .unwrap()
            .validate()
            .unwrap_err();
        let both = parse(&[&key, &general_cert]).unwrap().validate();

        assert!(
            alone.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE") && alone.contains("traces"),
            "{alone}"
        );
        assert!(logs_only.contains("for traces"), "{logs_only}");
        assert_eq!(both, Ok(()));
    }

    #[test]
    fn invalid_per_signal_values_name_their_variable() {
        for (flag, variable) in [
            (
                "--otel-exporter-otlp-traces-endpoint=ftp://x",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                "--otel-exporter-otlp-metrics-headers=bad name=x",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            ),
            (
                "--otel-exporter-otlp-logs-timeout=soon",
                "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
            ),
            (
                "--otel-exporter-otlp-metrics-protocol=http/json",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ),
            (
                "--otel-exporter-otlp-compression=zstd",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ),
            (
                "--otel-exporter-otlp-traces-compression=br",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            ),
            (
                "--otel-exporter-otlp-logs-insecure=maybe",
                "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
            ),
        ] {
            let err = parse(&[flag]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(line.contains(variable), "{flag}: {line}");
        }
    }
}
