//! The running configuration as the pages and the JSON snapshot show it: never a secret.

use serde::Serialize;
use url::Url;

use crate::config::{Backend, Config, Exporter, Propagator, Signal};

/// What is running and where its spans go, fixed at start. Userinfo, query and fragment are
/// removed from the endpoint, and of the OTLP headers only the names are kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct About {
    /// `METRICS_BACKEND`: `prometheus` or `otel`.
    pub backend: String,
    /// The traces exporter (`OTEL_TRACES_EXPORTER`, else `OTEL_EXPORTER`): `otlp`, `console` or
    /// `none` (also with `OTEL_SDK_DISABLED`).
    pub exporter: String,
    /// The OTLP protocol of traces: `grpc` or `http/protobuf`.
    pub protocol: String,
    /// The OTLP endpoint of traces without secrets; `None` unless the exporter is `otlp`.
    pub endpoint: Option<String>,
    /// The names of the OTLP headers set; their values are never shown.
    pub otlp_header_names: Vec<String>,
    /// `OTEL_TRACES_SAMPLER`, with its ratio for the ratio samplers.
    pub sampler: String,
    /// `OTEL_PROPAGATORS`, in order (empty for `none`).
    pub propagators: Vec<&'static str>,
    /// The listen address as configured.
    pub listen: String,
    /// Where logs go: `stdout` or the log file's path.
    pub log: String,
    /// The version of this build.
    pub version: &'static str,
    /// The source revision of this build.
    pub revision: &'static str,
}

impl About {
    /// The shown configuration of `config`.
    pub fn of(config: &Config) -> Self {
        let sampler = config.otel_traces_sampler.to_string();
        let traces = config.otlp(Signal::Traces);
        Self {
            backend: config.metrics_backend.to_string(),
            exporter: config.traces_exporter().to_string(),
            protocol: traces.protocol.to_string(),
            endpoint: (config.traces_exporter() == Exporter::Otlp)
                .then(|| without_secrets(&traces.endpoint)),
            otlp_header_names: traces
                .headers
                .0
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            sampler: match sampler.ends_with("traceidratio") {
                true => format!("{sampler} ({})", config.sampler_ratio()),
                false => sampler,
            },
            propagators: config
                .otel_propagators
                .0
                .iter()
                .map(|p| match p {
                    Propagator::TraceContext => "tracecontext",
                    Propagator::Baggage => "baggage",
                    Propagator::B3 => "b3",
                    Propagator::B3Multi => "b3multi",
                })
                .collect(),
            listen: config.listen.to_string(),
            log: match config.log_to_stdout {
                true => "stdout".to_string(),
                false => config
                    .log_dir
                    .join(crate::telemetry::LOG_FILE)
                    .display()
                    .to_string(),
            },
            version: crate::VERSION,
            revision: crate::REVISION,
        }
    }

    /// Whether `/metrics` is served: only the Prometheus backend is scraped.
    pub fn scraped(&self) -> bool {
        self.backend == Backend::Prometheus.to_string()
    }

    /// The propagators as configured, `none` for none.
    pub fn propagator_list(&self) -> String {
        match self.propagators.is_empty() {
            true => "none".to_string(),
            false => self.propagators.join(","),
        }
    }
}

/// `url` without user name, password, query or fragment, where credentials may hide.
pub fn without_secrets(url: &Url) -> String {
    let mut url = url.clone();
    // Setting these fails only for URLs that cannot have them, which then have none to remove.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_lose_userinfo_query_and_fragment() {
        let url =
            Url::parse("https://user:s3cret@collector.example:4318/otlp?token=abc#x").unwrap();

        assert_eq!(without_secrets(&url), "https://collector.example:4318/otlp");
    }

    #[test]
    fn header_values_are_never_kept() {
        let config = Config::try_parse_args([
            "prom-metrics-app",
            "--otel-exporter",
            "otlp",
            "--otel-exporter-otlp-headers",
            "authorization=Bearer%20s3cret",
        ])
        .unwrap();

        let about = About::of(&config);

        assert_eq!(about.otlp_header_names, ["authorization"]);
        assert!(!format!("{about:?}").contains("s3cret"));
        assert_eq!(about.endpoint.as_deref(), Some("http://localhost:4317/"));
    }
}
