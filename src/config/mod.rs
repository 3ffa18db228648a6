//! Configuration: the settings of the server, as command-line flags and environment variables,
//! parsed once and validated at start, then handed down. The ground floor: it imports nothing of
//! the app.
//!
//! A flag beats its variable, which beats the default. Variable names are the Flask original's
//! (`METRICS_BACKEND`, `OTEL_EXPORTER`, ...) and OpenTelemetry's standard `OTEL_*` names. Values are
//! case-insensitive. An invalid value is an error at start (the original silently fell back).
//!
//! - [`values`]: the typed values (choices and lists).
//! - [`parse`]: the value parsers and their messages.
//! - [`otlp`]: the OTLP exporter's settings, general and per signal.
//! - [`sdk`]: the OpenTelemetry SDK's: exporters per signal, batching, limits, aggregation.
//! - [`limits`], [`auth`]: the request limits and the `/metrics` credentials.
//! - [`synthetic`]: the synthetic series (`SYNTHETIC_*`).
//! - [`faults`]: the faults of a pod (readiness, liveness, a crash, CPU and memory stress).
//! - [`env`]: how the environment is read (empty values, secrets, `OTEL_*` clean-up).
//! - [`error`]: errors as one line, and exit code 2.

pub mod auth;
pub mod env;
pub mod error;
pub mod faults;
pub mod limits;
pub mod otlp;
pub mod parse;
pub mod sdk;
pub mod synthetic;
pub mod values;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, error::ErrorKind};
use url::Url;

pub use auth::{AuthSettings, Scope};
pub use error::EXIT_CONFIG;
pub use faults::Faults;
pub use limits::Limits;
pub use otlp::{OtlpSettings, OtlpTarget, PemFile, Signal};
pub use parse::MAX_DOWNSTREAM_TIMEOUT;
pub use sdk::SdkSettings;
pub use synthetic::{SyntheticSettings, SyntheticType};
pub use values::{
    Backend, Compression, ConsoleFormat, Downstreams, Exporter, HistogramAggregation, KeyValues,
    NativeHistograms, OtlpProtocol, PathList, Propagator, Propagators, Sampler,
    TemporalityPreference,
};

use parse::{
    parse_bool, parse_chaos_latency, parse_downstream_timeout, parse_downstreams, parse_duration,
    parse_error_status, parse_interval, parse_key_values, parse_listen, parse_log_filter,
    parse_native_bucket_factor, parse_paths, parse_propagators, parse_ratio, parse_seed,
    parse_value_length_limit,
};

/// The longest latency (fixed plus jitter) that chaos may add to a request, as for `/do_task`.
pub const MAX_CHAOS_LATENCY: Duration = Duration::from_secs(60);

/// Everything the service needs to start, typed and validated.
#[derive(Debug, Clone, Parser)]
#[command(name = "prom-metrics-app", version = crate::VERSION, about = "Serve the app (the default command)", long_about = None)]
pub struct Config {
    /// Metrics backend: `prometheus` serves /metrics; `otel` pushes metrics through the OpenTelemetry SDK.
    #[arg(
        long,
        env = "METRICS_BACKEND",
        value_name = "METRICS_BACKEND",
        default_value = "prometheus",
        ignore_case = true
    )]
    pub metrics_backend: Backend,

    /// Also keep the request histograms as Prometheus native histograms, served in the protobuf format: the largest growth factor from one native bucket to the next (such as 1.1, the resolution client_golang users commonly pick), or `off` for classic buckets only.
    #[arg(long, env = "NATIVE_HISTOGRAM_BUCKET_FACTOR", value_name = "NATIVE_HISTOGRAM_BUCKET_FACTOR", default_value = "1.1", value_parser = parse_native_bucket_factor)]
    pub native_histogram_bucket_factor: NativeHistograms,

    /// Where traces, OTel metrics and log records go unless OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER or OTEL_LOGS_EXPORTER says otherwise: `console` prints them to stdout, `otlp` sends them to a collector, `none` drops them.
    #[arg(
        long,
        env = "OTEL_EXPORTER",
        value_name = "OTEL_EXPORTER",
        default_value = "console",
        ignore_case = true
    )]
    pub otel_exporter: Exporter,

    /// Line format of the `console` exporter, for people or for tools.
    #[arg(
        long,
        env = "CONSOLE_FORMAT",
        value_name = "CONSOLE_FORMAT",
        default_value = "compact",
        ignore_case = true
    )]
    pub console_format: ConsoleFormat,

    /// Trace sampler, as the OpenTelemetry specification names them.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        value_name = "OTEL_TRACES_SAMPLER",
        default_value = "parentbased_always_on",
        ignore_case = true
    )]
    pub otel_traces_sampler: Sampler,

    /// Sampling ratio from 0 to 1 for the `traceidratio` samplers [default: 1].
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", value_name = "OTEL_TRACES_SAMPLER_ARG", value_parser = parse_ratio)]
    pub otel_traces_sampler_arg: Option<f64>,

    /// Interval between two collections of OTel metrics, each pushed and shown by /view_metrics, in
    /// milliseconds.
    #[arg(long, env = "OTEL_METRIC_EXPORT_INTERVAL", value_name = "OTEL_METRIC_EXPORT_INTERVAL", default_value = "10000", value_parser = parse_interval)]
    pub otel_metric_export_interval: Duration,

    /// Context propagation formats, comma-separated: tracecontext, baggage, b3, b3multi, none.
    #[arg(long, env = "OTEL_PROPAGATORS", value_name = "OTEL_PROPAGATORS", default_value = "tracecontext,baggage", value_parser = parse_propagators)]
    pub otel_propagators: Propagators,

    /// `service.name` of the telemetry resource [default: prom-metrics-app].
    #[arg(long, env = "OTEL_SERVICE_NAME", value_name = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,

    /// Longest span attribute value taken from a request (path, query, user agent, host), in characters; longer ones are cut, which bounds the memory of queued spans.
    #[arg(long, env = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", value_name = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", default_value = "4096", value_parser = parse_value_length_limit)]
    pub otel_attribute_value_length_limit: usize,

    /// Extra resource attributes, as `key=value,key2=value2`.
    #[arg(long, env = "OTEL_RESOURCE_ATTRIBUTES", value_name = "OTEL_RESOURCE_ATTRIBUTES", value_parser = parse_key_values)]
    pub otel_resource_attributes: Option<KeyValues>,

    /// Log to stdout instead of the rotated file `logs/prom-metrics-app.log`.
    #[arg(long, env = "LOG_TO_STDOUT", value_name = "LOG_TO_STDOUT", default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub log_to_stdout: bool,

    /// Log filter in `RUST_LOG` syntax, e.g. `info`, `warn,prom_metrics_app=debug`.
    #[arg(long, env = "RUST_LOG", value_name = "RUST_LOG", default_value = "info", value_parser = parse_log_filter)]
    pub log_level: String,

    /// Folder of the log file when not logging to stdout.
    #[arg(long, env = "LOG_DIR", value_name = "LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,

    /// Address and port to listen on; a host name is resolved at start.
    #[arg(long, env = "LISTEN_ADDR", value_name = "LISTEN_ADDR", default_value = "0.0.0.0:5000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// After SIGTERM/SIGINT, how long the app keeps serving with /readyz answering 503 before it closes its listener, so load balancers see it leave; `0` turns it off.
    #[arg(long, env = "SHUTDOWN_DRAIN_DELAY", value_name = "SHUTDOWN_DRAIN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_drain_delay: Duration,

    /// How long in-flight requests may run once the listener is closed, e.g. `30s`, `500ms`, `2m`.
    #[arg(long, env = "SHUTDOWN_GRACE_PERIOD", value_name = "SHUTDOWN_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,

    /// Request paths that get no server span, comma-separated (exact paths, or prefixes ending in `*`); `none` traces every path. Probes and scrapes by default. Counting is never affected.
    #[arg(long, env = "TRACES_EXCLUDED_PATHS", value_name = "TRACES_EXCLUDED_PATHS", default_value = "/healthz,/readyz,/metrics", value_parser = parse_paths)]
    pub traces_excluded_paths: PathList,

    /// Base URLs that `GET /chain` calls in turn, comma-separated (`http://` or `https://`); each is called at `/chain` under its path. Empty: `/chain` answers as the last hop.
    #[arg(long, env = "DOWNSTREAM_URL", value_name = "DOWNSTREAM_URL", default_value = "", hide_default_value = true, value_parser = parse_downstreams)]
    pub downstream_url: Downstreams,

    /// Time limit of one downstream call of `/chain`, answer included, e.g. `2s`, `500ms`.
    #[arg(long, env = "DOWNSTREAM_TIMEOUT", value_name = "DOWNSTREAM_TIMEOUT", default_value = "2s", value_parser = parse_downstream_timeout)]
    pub downstream_timeout: Duration,

    /// Share of application requests answered with CHAOS_ERROR_STATUS instead of their real answer, from 0 to 1; changeable at runtime on /chaos and /api/chaos.
    #[arg(long, env = "CHAOS_ERROR_RATE", value_name = "CHAOS_ERROR_RATE", default_value = "0", value_parser = parse_ratio)]
    pub chaos_error_rate: f64,

    /// Status of an injected failure, from 400 to 599.
    #[arg(long, env = "CHAOS_ERROR_STATUS", value_name = "CHAOS_ERROR_STATUS", default_value = "500", value_parser = parse_error_status)]
    pub chaos_error_status: u16,

    /// Latency added to application requests (on a CHAOS_LATENCY_RATE share of them), e.g. `200ms`; latency and jitter together at most 60s.
    #[arg(long, env = "CHAOS_LATENCY", value_name = "CHAOS_LATENCY", default_value = "0s", value_parser = parse_chaos_latency)]
    pub chaos_latency: Duration,

    /// Up to this much more latency, uniformly random, on each delayed request, e.g. `50ms`.
    #[arg(long, env = "CHAOS_JITTER", value_name = "CHAOS_JITTER", default_value = "0s", value_parser = parse_chaos_latency)]
    pub chaos_jitter: Duration,

    /// Share of application requests that get the added latency, from 0 to 1.
    #[arg(long, env = "CHAOS_LATENCY_RATE", value_name = "CHAOS_LATENCY_RATE", default_value = "1", value_parser = parse_ratio)]
    pub chaos_latency_rate: f64,

    /// Seed of the random chaos decisions, for repeatable runs; unset: random.
    #[arg(long, env = "CHAOS_SEED", value_name = "CHAOS_SEED", value_parser = parse_seed)]
    pub chaos_seed: Option<u64>,

    /// The faults of a pod (CHAOS_READY, CHAOS_HEALTHY, CHAOS_ALLOW_PANIC, CHAOS_*_STRESS).
    #[command(flatten)]
    pub faults: Faults,

    /// The OTLP exporter (OTEL_EXPORTER_OTLP_*).
    #[command(flatten)]
    pub otlp: OtlpSettings,

    /// The OpenTelemetry SDK (OTEL_SDK_DISABLED, OTEL_*_EXPORTER, OTEL_BSP_*, ...).
    #[command(flatten)]
    pub sdk: SdkSettings,

    /// Authentication of /metrics (METRICS_AUTH_*).
    #[command(flatten)]
    pub auth: AuthSettings,

    /// Limits on requests and connections (MAX_*, HEADER_READ_TIMEOUT).
    #[command(flatten)]
    pub limits: Limits,

    /// The synthetic series (SYNTHETIC_*).
    #[command(flatten)]
    pub synthetic: SyntheticSettings,
}

impl Config {
    /// Parses `args` and the environment as the server's settings (see [`env`] for empty values),
    /// then checks the settings that go together.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = env::without_empty_variables(Self::command());
        let config = Self::from_arg_matches(&command.try_get_matches_from(args)?)?;
        config
            .validate()
            .map_err(|err| Self::command().error(ErrorKind::ArgumentConflict, err))?;
        Ok(config)
    }

    /// Checks the settings that go together; the message names them and says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let latency = self.chaos_latency + self.chaos_jitter;
        if latency > MAX_CHAOS_LATENCY {
            return Err(format!(
                "CHAOS_LATENCY (--chaos-latency) plus CHAOS_JITTER (--chaos-jitter) must be at most 60s, not {}s",
                latency.as_secs_f64()
            ));
        }
        self.otlp.validate()?;
        self.synthetic.validate()?;
        self.auth.validate()
    }

    /// The general OTLP endpoint, defaulting by protocol as the OpenTelemetry specification does.
    pub fn otlp_endpoint(&self) -> Url {
        self.otlp.endpoint(self.otlp.otel_exporter_otlp_protocol)
    }

    /// Where spans go: `OTEL_TRACES_EXPORTER`, else `OTEL_EXPORTER`; `none` with
    /// `OTEL_SDK_DISABLED`.
    pub fn traces_exporter(&self) -> Exporter {
        self.exporter(self.sdk.otel_traces_exporter)
    }

    /// Where the OTel backend's metrics go: `OTEL_METRICS_EXPORTER`, else `OTEL_EXPORTER`; `none`
    /// with `OTEL_SDK_DISABLED`.
    pub fn metrics_exporter(&self) -> Exporter {
        self.exporter(self.sdk.otel_metrics_exporter)
    }

    /// Where log records go: `OTEL_LOGS_EXPORTER`, else `OTEL_EXPORTER`; `none` with
    /// `OTEL_SDK_DISABLED`.
    pub fn logs_exporter(&self) -> Exporter {
        self.exporter(self.sdk.otel_logs_exporter)
    }

    fn exporter(&self, own: Option<Exporter>) -> Exporter {
        match self.sdk.otel_sdk_disabled {
            true => Exporter::None,
            false => own.unwrap_or(self.otel_exporter),
        }
    }

    /// Where and how `signal` goes over OTLP.
    pub fn otlp(&self, signal: Signal) -> OtlpTarget {
        self.otlp.target(signal)
    }

    /// The sampling ratio for the ratio samplers.
    pub fn sampler_ratio(&self) -> f64 {
        self.otel_traces_sampler_arg.unwrap_or(1.0)
    }

    /// The default configuration, as if started with no flags and no variables: the environment
    /// of whoever runs it (a test, say) is not read.
    pub fn defaults() -> Self {
        let matches = env::without_variables(Self::command())
            .try_get_matches_from(["prom-metrics-app"])
            .expect("defaults are valid");
        Self::from_arg_matches(&matches).expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_original() {
        let config = Config::defaults();

        assert_eq!(config.metrics_backend, Backend::Prometheus);
        assert_eq!(config.otel_exporter, Exporter::Console);
        assert_eq!(config.console_format, ConsoleFormat::Compact);
        assert_eq!(config.otlp_endpoint().as_str(), "http://localhost:4317/");
        assert!(config.otlp.otel_exporter_otlp_insecure);
        assert!(!config.log_to_stdout);
        assert_eq!(config.listen, "0.0.0.0:5000".parse().unwrap());
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(30));
        assert_eq!(config.otel_metric_export_interval, Duration::from_secs(10));
        assert_eq!(
            config.native_histogram_bucket_factor,
            NativeHistograms::default()
        );
    }

    #[test]
    fn values_are_case_insensitive() {
        let config = parse(&[
            "--metrics-backend",
            "OTEL",
            "--otel-exporter",
            "CONSOLE",
            "--console-format",
            "OTLP-Json",
        ])
        .unwrap();

        assert_eq!(config.metrics_backend, Backend::Otel);
        assert_eq!(config.otel_exporter, Exporter::Console);
        assert_eq!(config.console_format, ConsoleFormat::OtlpJson);
    }

    #[test]
    fn invalid_backend_names_variable_value_and_choices() {
        let err = parse(&["--metrics-backend", "foo"]).unwrap_err();

        let line = error::one_line(&err, &Config::command()).unwrap();
        assert!(line.contains("METRICS_BACKEND"), "{line}");
        assert!(line.contains("'foo'"), "{line}");
        assert!(line.contains("prometheus, otel"), "{line}");
    }

    #[test]
    fn invalid_bool_names_valid_choices() {
        let err = parse(&["--otel-exporter-otlp-insecure", "maybe"]).unwrap_err();

        let line = error::one_line(&err, &Config::command()).unwrap();
        assert!(
            line.contains("OTEL_EXPORTER_OTLP_INSECURE") && line.contains("maybe"),
            "{line}"
        );
        assert!(line.contains("true, false"), "{line}");
    }

    #[test]
    fn endpoint_default_follows_protocol() {
        let config = parse(&["--otel-exporter-otlp-protocol", "http/protobuf"]).unwrap();

        assert_eq!(config.otlp_endpoint().as_str(), "http://localhost:4318/");
    }

    #[test]
    fn probes_and_scrapes_are_excluded_from_tracing_by_default() {
        let config = Config::defaults();

        assert!(config.traces_excluded_paths.matches("/healthz"));
        assert!(config.traces_excluded_paths.matches("/readyz"));
        assert!(config.traces_excluded_paths.matches("/metrics"));
        assert!(!config.traces_excluded_paths.matches("/"));
        assert_eq!(config.shutdown_drain_delay, Duration::from_secs(5));
    }

    #[test]
    fn downstream_settings_default_to_none_and_two_seconds() {
        let config = Config::defaults();

        assert!(config.downstream_url.0.is_empty());
        assert_eq!(config.downstream_timeout, Duration::from_secs(2));
    }

    #[test]
    fn an_invalid_downstream_url_names_the_variable_and_the_value() {
        let err = parse(&["--downstream-url", "http://b:5000,ftp://c"]).unwrap_err();

        let line = error::one_line(&err, &Config::command()).unwrap();
        assert!(line.contains("DOWNSTREAM_URL (--downstream-url)"), "{line}");
        assert!(line.contains("'http://b:5000,ftp://c'"), "{line}");
        assert!(line.contains("http:// or https://"), "{line}");
    }

    #[test]
    fn sampler_arg_must_be_a_ratio() {
        assert!(parse(&["--otel-traces-sampler-arg", "1.5"]).is_err());
        assert_eq!(
            parse(&["--otel-traces-sampler-arg", "0.25"])
                .unwrap()
                .sampler_ratio(),
            0.25
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Every flag that takes a value, but `--listen`, which resolves host names.
        fn flags() -> Vec<String> {
            Config::command()
                .get_arguments()
                .filter(|arg| arg.get_env().is_some() && arg.get_id() != "listen")
                .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_value_of_any_setting_parses_or_is_one_clear_error(
                index in any::<prop::sample::Index>(),
                value in ".{0,40}",
            ) {
                let flags = flags();
                let flag = index.get(&flags);
                match parse(&[&format!("{flag}={value}")]) {
                    Ok(_) => {}
                    Err(err) => {
                        if let Some(line) = error::one_line(&err, &Config::command()) {
                            prop_assert!(line.starts_with("error: invalid value"), "{}", line);
                        }
                    }
                }
            }

            #[test]
            fn valid_numbers_round_trip(
                rate in 0.0..=1.0f64,
                connections in 1usize..=1_000_000,
                body in 1usize..=(1 << 30),
                header in 8192usize..=(1 << 20),
                seed in any::<u64>(),
                millis in 1u64..=1_000_000,
            ) {
                let config = parse(&[
                    &format!("--chaos-error-rate={rate}"),
                    &format!("--max-connections={connections}"),
                    &format!("--max-body-bytes={body}"),
                    &format!("--max-header-bytes={header}"),
                    &format!("--chaos-seed={seed}"),
                    &format!("--otel-exporter-otlp-timeout={millis}"),
                ])
                .unwrap();

                prop_assert_eq!(config.chaos_error_rate, rate);
                prop_assert_eq!(config.limits.max_connections, connections);
                prop_assert_eq!(config.limits.max_body_bytes, body);
                prop_assert_eq!(config.limits.max_header_bytes, header);
                prop_assert_eq!(config.chaos_seed, Some(seed));
                prop_assert_eq!(config.otlp.otel_exporter_otlp_timeout, Duration::from_millis(millis));
            }
        }
    }
}
