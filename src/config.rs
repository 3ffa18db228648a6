//! Configuration: command-line flags and environment variables, parsed once and validated at start.
//!
//! A flag beats its variable, which beats the default. Variable names are the Flask original's
//! (`METRICS_BACKEND`, `OTEL_EXPORTER`, ...) and OpenTelemetry's standard `OTEL_*` names. Values are
//! case-insensitive. An invalid value is an error at start (the original silently fell back).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{
    ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
    error::ContextKind, error::ErrorKind,
};
use url::Url;

use crate::chaos::{ChaosSettings, InvalidSetting};

/// Exit code for invalid configuration, as for any usage error.
pub const EXIT_CONFIG: i32 = 2;

/// Everything the service needs to start, typed and validated.
#[derive(Debug, Clone, Parser)]
#[command(name = "prom-metrics-app", version = crate::VERSION, about, long_about = None)]
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

    /// Where traces (and OTel metrics) go: `console` prints them to stdout, `otlp` sends them to a collector, `none` drops them.
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

    /// OTLP collector URL [default: http://localhost:4317 for grpc, http://localhost:4318 for http/protobuf].
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

    /// Address and port to listen on; a host name is resolved at start (the `healthcheck` command probes it, reading 0.0.0.0 as loopback).
    #[arg(long, env = "LISTEN_ADDR", value_name = "LISTEN_ADDR", default_value = "0.0.0.0:5000", value_parser = parse_listen, global = true)]
    pub listen: SocketAddr,

    /// After SIGTERM/SIGINT, how long the app keeps serving with /readyz answering 503 before it closes its listener, so load balancers see it leave; `0` turns it off.
    #[arg(long, env = "SHUTDOWN_DRAIN_DELAY", value_name = "SHUTDOWN_DRAIN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_drain_delay: Duration,

    /// How long in-flight requests may run once the listener is closed, e.g. `30s`, `500ms`, `2m`.
    #[arg(long, env = "SHUTDOWN_GRACE_PERIOD", value_name = "SHUTDOWN_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,

    /// Request paths that get no server span, comma-separated (exact paths, or prefixes ending in `*`); `none` traces every path. Counting is never affected.
    #[arg(long, env = "TRACES_EXCLUDED_PATHS", value_name = "TRACES_EXCLUDED_PATHS", default_value = "/healthz,/readyz", value_parser = parse_paths)]
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

    /// Authentication of /metrics (METRICS_AUTH_*).
    #[command(flatten)]
    pub auth: crate::http::auth::AuthSettings,

    /// Limits on requests and connections (MAX_*, HEADER_READ_TIMEOUT).
    #[command(flatten)]
    pub limits: crate::server::Limits,

    /// What to do instead of serving; without a command the app serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The binary's commands besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Probe /healthz of a running instance and exit 0 if it answers 200, 1 otherwise. Made for
    /// container HEALTHCHECKs and `helm test`: the image has no shell and no curl.
    Healthcheck(HealthcheckArgs),
    /// Put a running instance under load: requests at a fixed rate, over a weighted mix of paths.
    ///
    /// Prints what came back: status codes, errors, latency percentiles and the rate achieved.
    /// Runs for 10s when neither --duration nor --requests is given. Exits 0 when the run
    /// completed (HTTP errors are measurements), 1 when no request could connect, 2 on a bad flag.
    Load(crate::load::LoadArgs),
}

/// Options of `prom-metrics-app healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe [default: /healthz on LISTEN_ADDR, with 0.0.0.0 or [::] read as loopback].
    #[arg(long, value_name = "URL", value_parser = parse_probe_url)]
    pub url: Option<Url>,

    /// How long to wait for the answer, e.g. `2s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Which metrics backend records the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// prometheus-client registry, pulled from /metrics.
    Prometheus,
    /// OpenTelemetry SDK, pushed by a periodic reader.
    Otel,
}

/// Where spans and OTel metrics are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Exporter {
    /// Lines on stdout, in the CONSOLE_FORMAT.
    Console,
    /// OTLP to a collector.
    Otlp,
    /// No export.
    None,
}

/// How the `console` exporter writes spans and metrics to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsoleFormat {
    /// One line per span or data point: `span "GET /" trace_id=… status=unset duration_ms=… key=value …`.
    Compact,
    /// One line per export, in the OTLP/JSON encoding the Collector's file exporter writes.
    OtlpJson,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Trace samplers of the OpenTelemetry specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

/// One context propagation format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagator {
    TraceContext,
    Baggage,
    B3,
    B3Multi,
}

/// The ordered, de-duplicated list of propagation formats (empty for `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagators(pub Vec<Propagator>);

/// Request paths: exact, or prefixes when they end in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathList(pub Vec<String>);

impl PathList {
    /// Whether `path` is in the list.
    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == entry,
        })
    }
}

/// The downstream base URLs of `/chain`, in the order they are called (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Downstreams(pub Vec<Url>);

/// An ordered list of `key=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValues(pub Vec<(String, String)>);

impl Config {
    /// Parses flags and environment; on bad input prints one line and exits with code 2.
    pub fn parse_or_exit() -> Self {
        match Self::try_parse_args(std::env::args_os()) {
            Ok(config) => config,
            Err(err) => match one_line(&err) {
                Some(line) => {
                    eprintln!("{line}");
                    std::process::exit(EXIT_CONFIG);
                }
                None => err.exit(),
            },
        }
    }

    /// Parses `args` and the environment. A variable set to an empty value counts as unset, as the
    /// OpenTelemetry specification requires (and as templated manifests often produce).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Self::command();
        let empty: Vec<clap::Id> = command
            .get_arguments()
            .filter(|arg| {
                arg.get_env()
                    .is_some_and(|env| std::env::var_os(env).is_some_and(|v| v.is_empty()))
            })
            .map(|arg| arg.get_id().clone())
            .collect();
        for id in empty {
            command = command.mut_arg(id, |arg| arg.env(None));
        }
        let config = Self::from_arg_matches(&command.try_get_matches_from(args)?)?;
        config.chaos_settings().map_err(|err| {
            Self::command().error(
                ErrorKind::ArgumentConflict,
                format!(
                    "CHAOS_LATENCY (--chaos-latency) plus CHAOS_JITTER (--chaos-jitter): {err}"
                ),
            )
        })?;
        config
            .auth
            .validate()
            .map_err(|err| Self::command().error(ErrorKind::ArgumentConflict, err))?;
        Ok(config)
    }

    /// The chaos settings the app starts with.
    pub fn chaos_settings(&self) -> Result<ChaosSettings, InvalidSetting> {
        ChaosSettings {
            error_rate: self.chaos_error_rate,
            error_status: self.chaos_error_status,
            latency_seconds: self.chaos_latency.as_secs_f64(),
            jitter_seconds: self.chaos_jitter.as_secs_f64(),
            latency_rate: self.chaos_latency_rate,
        }
        .validate()
    }

    /// The OTLP endpoint, defaulting by protocol as the OpenTelemetry specification does.
    pub fn otlp_endpoint(&self) -> Url {
        if let Some(url) = &self.otel_exporter_otlp_endpoint {
            return url.clone();
        }
        let default = match self.otel_exporter_otlp_protocol {
            OtlpProtocol::Grpc => "http://localhost:4317",
            OtlpProtocol::HttpProtobuf => "http://localhost:4318",
        };
        Url::parse(default).expect("default endpoints are valid URLs")
    }

    /// The sampling ratio for the ratio samplers.
    pub fn sampler_ratio(&self) -> f64 {
        self.otel_traces_sampler_arg.unwrap_or(1.0)
    }

    /// The default configuration, as if started with no flags and no variables: the environment
    /// of whoever runs it (a test, say) is not read.
    pub fn defaults() -> Self {
        let mut command = Self::command();
        let ids: Vec<clap::Id> = command
            .get_arguments()
            .map(|arg| arg.get_id().clone())
            .collect();
        for id in ids {
            command = command.mut_arg(id, |arg| arg.env(None));
        }
        let matches = command
            .try_get_matches_from(["prom-metrics-app"])
            .expect("defaults are valid");
        Self::from_arg_matches(&matches).expect("defaults are valid")
    }
}

/// Removes every `OTEL_*` variable from the process environment once [`Config`] has read the ones
/// it documents, so that nothing else reads them: the OpenTelemetry SDK would otherwise apply
/// `OTEL_EXPORTER_OTLP_HEADERS` over the flag's headers, and honour variables the app does not
/// document (`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_TRACES_*`, ...). Returns the names of those
/// undocumented ones that were set, sorted, to warn about.
///
/// # Safety
///
/// Must be called while no other thread exists: changing the environment races with any read of
/// it from another thread.
pub unsafe fn remove_otel_variables() -> Vec<String> {
    let command = Config::command();
    let documented: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    let mut ignored = Vec::new();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with("OTEL_") {
            // SAFETY: the caller guarantees that no other thread exists.
            unsafe { std::env::remove_var(&name) };
            if !documented.contains(&name) {
                ignored.push(name);
            }
        }
    }
    ignored.sort();
    ignored
}

/// The name a choice value has on the command line and in variables (`otel`, `http/protobuf`),
/// so that logs and pages show it as it is configured.
macro_rules! display_as_value {
    ($($kind:ty),*) => {$(
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let value = self.to_possible_value().expect("no variant is skipped");
                f.write_str(value.get_name())
            }
        }
    )*};
}

display_as_value!(Backend, Exporter, OtlpProtocol, Sampler);

/// Renders an invalid-value error as one line that names the variable, the flag, the value and the
/// valid choices. Other clap errors (help, version, unknown flags) keep clap's own output.
fn one_line(err: &clap::Error) -> Option<String> {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let arg = err.get(ContextKind::InvalidArg)?.to_string();
    let value = err
        .get(ContextKind::InvalidValue)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let flag = arg.split_whitespace().next().unwrap_or(&arg).to_string();
    let command = Config::command();
    let variable = command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .unwrap_or_else(|| flag.clone());
    let reason = match err.get(ContextKind::ValidValue) {
        Some(clap::error::ContextValue::Strings(valid)) => {
            format!("valid values are {}", valid.join(", "))
        }
        _ => std::error::Error::source(err)
            .map(|source| source.to_string())
            .unwrap_or_else(|| "see --help".to_string()),
    };
    let setting = if variable == flag {
        flag
    } else {
        format!("{variable} ({flag})")
    };
    Some(format!(
        "error: invalid value '{value}' for {setting}: {reason}"
    ))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("valid values are true, false (also 1, 0, yes, no, on, off)".to_string()),
    }
}

fn parse_log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("{e}; expected a filter such as info or warn,prom_metrics_app=debug"))
}

/// Like [`parse_key_values`], with names and values that are valid HTTP headers.
fn parse_headers(value: &str) -> Result<KeyValues, String> {
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
fn parse_endpoint(value: &str) -> Result<Url, String> {
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
fn parse_probe_url(value: &str) -> Result<Url, String> {
    match Url::parse(value.trim()) {
        Ok(url) if url.scheme() == "http" && url.host_str().is_some() => Ok(url),
        _ => Err("expected an http:// URL, such as http://127.0.0.1:5000/healthz".to_string()),
    }
}

/// Parses `IP:PORT` or `HOST:PORT`; a host name is resolved now, and its first address is used.
fn parse_listen(value: &str) -> Result<SocketAddr, String> {
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
fn parse_paths(value: &str) -> Result<PathList, String> {
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

fn parse_millis(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| "expected a whole number of milliseconds, such as 10000".to_string())
}

fn parse_interval(value: &str) -> Result<Duration, String> {
    match parse_millis(value)? {
        d if d.is_zero() => {
            Err("expected a whole number of milliseconds above 0, such as 10000".to_string())
        }
        d => Ok(d),
    }
}

fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("expected a number from 0 to 1, such as 0.25".to_string()),
    }
}

/// Parses `30s`, `500ms`, `2m` or a plain number of seconds.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim().to_ascii_lowercase();
    let invalid = || "expected a duration such as 30s, 500ms, 2m or 30 (seconds)".to_string();
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else {
        (value.as_str(), 1.0)
    };
    let number: f64 = number.trim().parse().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| invalid())
}

/// Parses `CHAOS_ERROR_STATUS`: an error status, 400 to 599.
fn parse_error_status(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(status) if (400..=599).contains(&status) => Ok(status),
        _ => Err("expected an error status from 400 to 599, such as 500 or 503".to_string()),
    }
}

/// Parses `CHAOS_LATENCY` and `CHAOS_JITTER`: a duration from 0 to 60 s.
fn parse_chaos_latency(value: &str) -> Result<Duration, String> {
    match parse_duration(value) {
        Ok(latency) if latency.as_secs_f64() <= crate::chaos::MAX_LATENCY_SECONDS => Ok(latency),
        _ => Err("expected a duration from 0 to 60s, such as 200ms or 1.5s".to_string()),
    }
}

fn parse_seed(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number from 0 to 18446744073709551615".to_string())
}

/// The longest a downstream call of `/chain` may be allowed to take.
pub const MAX_DOWNSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `DOWNSTREAM_URL`: comma-separated `http://` or `https://` base URLs with a host and
/// without a query or fragment. Empty items are skipped, so an empty value means no downstream.
fn parse_downstreams(value: &str) -> Result<Downstreams, String> {
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
fn parse_downstream_timeout(value: &str) -> Result<Duration, String> {
    let range = "expected a duration from 1ms to 60s, such as 2s or 500ms";
    match parse_duration(value) {
        Ok(timeout) if timeout >= Duration::from_millis(1) && timeout <= MAX_DOWNSTREAM_TIMEOUT => {
            Ok(timeout)
        }
        _ => Err(range.to_string()),
    }
}

fn parse_propagators(value: &str) -> Result<Propagators, String> {
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
fn parse_key_values(value: &str) -> Result<KeyValues, String> {
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
        assert!(config.otel_exporter_otlp_insecure);
        assert!(!config.log_to_stdout);
        assert_eq!(config.listen, "0.0.0.0:5000".parse().unwrap());
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(30));
        assert_eq!(config.otel_metric_export_interval, Duration::from_secs(10));
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

        let line = one_line(&err).unwrap();
        assert!(line.contains("METRICS_BACKEND"), "{line}");
        assert!(line.contains("'foo'"), "{line}");
        assert!(line.contains("prometheus, otel"), "{line}");
    }

    #[test]
    fn invalid_bool_names_valid_choices() {
        let err = parse(&["--otel-exporter-otlp-insecure", "maybe"]).unwrap_err();

        let line = one_line(&err).unwrap();
        assert!(
            line.contains("OTEL_EXPORTER_OTLP_INSECURE") && line.contains("maybe"),
            "{line}"
        );
        assert!(line.contains("true, false"), "{line}");
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
    fn endpoint_default_follows_protocol() {
        let config = parse(&["--otel-exporter-otlp-protocol", "http/protobuf"]).unwrap();

        assert_eq!(config.otlp_endpoint().as_str(), "http://localhost:4318/");
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
    fn probes_are_excluded_from_tracing_by_default() {
        let config = Config::defaults();

        assert!(config.traces_excluded_paths.matches("/healthz"));
        assert!(config.traces_excluded_paths.matches("/readyz"));
        assert!(!config.traces_excluded_paths.matches("/"));
        assert_eq!(config.shutdown_drain_delay, Duration::from_secs(5));
    }

    #[test]
    fn choices_display_as_configured() {
        assert_eq!(Backend::Prometheus.to_string(), "prometheus");
        assert_eq!(OtlpProtocol::HttpProtobuf.to_string(), "http/protobuf");
        assert_eq!(
            Sampler::ParentbasedAlwaysOn.to_string(),
            "parentbased_always_on"
        );
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
    fn downstream_settings_default_to_none_and_two_seconds() {
        let config = Config::defaults();

        assert!(config.downstream_url.0.is_empty());
        assert_eq!(config.downstream_timeout, Duration::from_secs(2));
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

    #[test]
    fn an_invalid_downstream_url_names_the_variable_and_the_value() {
        let err = parse(&["--downstream-url", "http://b:5000,ftp://c"]).unwrap_err();

        let line = one_line(&err).unwrap();
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
                        if let Some(line) = one_line(&err) {
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
                prop_assert_eq!(config.otel_exporter_otlp_timeout, Duration::from_millis(millis));
            }
        }
    }
}
