//! The flags of `prom-metrics-app load` and their parsers. Each parser's error says what is
//! valid; `Config::parse_or_exit` prints it on one line with the flag and the value, and exits 2.

use std::time::Duration;

use clap::Args;
use url::Url;

use super::mix::Mix;

/// How long a run lasts when neither `--duration` nor `--requests` bounds it.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The highest `--rate`: beyond it one scheduler thread could not keep up anyway.
const MAX_RATE: f64 = 1_000_000.0;

/// Options of `prom-metrics-app load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the instance to load, http:// or https://; the paths of --mix are appended to it.
    #[arg(long, value_name = "URL", value_parser = parse_target)]
    pub target: Url,

    /// Requests started per second, on a fixed schedule however slowly the target answers.
    #[arg(long, value_name = "N", default_value = "100", value_parser = parse_rate)]
    pub rate: f64,

    /// How long to send, e.g. `10s`, `500ms`, `1m` [default: 10s when --requests is not given either].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many requests; with --duration too, whichever comes first.
    #[arg(long, value_name = "N", value_parser = parse_requests)]
    pub requests: Option<u64>,

    /// Most requests in flight at once; a request that finds them all busy waits, and starts late.
    #[arg(long, value_name = "C", default_value = "64", value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Paths and their weights, as `PATH=WEIGHT,...`: `/=70,/do_task?seconds=0.1=30`. Each entry
    /// is split at its last `=`, so paths may carry queries.
    #[arg(long, value_name = "PATH=WEIGHT,...", default_value = "/=100", value_parser = Mix::parse)]
    pub mix: Mix,

    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Time limit of one request, from sending it to the end of the answer's body.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Seed of the random choice of paths: the same seed sends the same sequence [default: a random seed, shown in the summary].
    #[arg(long, value_name = "N", value_parser = parse_seed)]
    pub seed: Option<u64>,
}

impl LoadArgs {
    /// The run's bounds, `(duration, requests)`: at least one is set.
    pub fn bounds(&self) -> (Option<Duration>, Option<u64>) {
        match (self.duration, self.requests) {
            (None, None) => (Some(DEFAULT_DURATION), None),
            bounds => bounds,
        }
    }
}

/// Parses the target: an http:// or https:// URL with a host, and without a query or fragment,
/// since the mix's paths are appended to it.
fn parse_target(value: &str) -> Result<Url, String> {
    let expected = "expected an http:// or https:// base URL, such as http://127.0.0.1:5000";
    let url = Url::parse(value.trim()).map_err(|e| format!("{e}; {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(expected.to_string());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{expected}, without a query or fragment (queries go into --mix)"
        ));
    }
    Ok(url)
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= MAX_RATE => Ok(rate),
        _ => Err(format!(
            "expected requests per second above 0 and at most {MAX_RATE}, such as 100 or 0.5"
        )),
    }
}

fn parse_requests(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err("expected a whole number of requests above 0, such as 1000".to_string()),
    }
}

fn parse_concurrency(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err("expected a whole number of requests in flight above 0, such as 64".to_string()),
    }
}

fn parse_seed(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a whole number from 0 to {}", u64::MAX))
}

/// A duration as the other duration settings take it, above 0.
fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    match crate::config::parse::parse_duration(value)? {
        d if d.is_zero() => {
            Err("expected a duration above 0, such as 10s, 500ms, 1m or 30 (seconds)".to_string())
        }
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        Command::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .map(|command| command.load)
    }

    #[test]
    fn defaults_bound_the_run_to_ten_seconds() {
        let args = parse(&["--target", "http://127.0.0.1:5000"]).unwrap();

        assert_eq!(args.bounds(), (Some(Duration::from_secs(10)), None));
        assert_eq!(args.concurrency, 64);
        assert_eq!(args.timeout, Duration::from_secs(10));
        assert_eq!(args.mix.to_string(), "/=100");
        assert!(!args.json);
    }

    #[test]
    fn requests_alone_bound_the_run_without_a_duration() {
        let args = parse(&["--target", "http://a:1", "--requests", "5"]).unwrap();

        assert_eq!(args.bounds(), (None, Some(5)));
    }

    #[test]
    fn durations_are_read_like_the_other_settings() {
        let args = parse(&["--target", "http://a:1", "--duration", "500ms"]).unwrap();

        assert_eq!(args.duration, Some(Duration::from_millis(500)));
        assert_eq!(parse_positive_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("soon").is_err());
    }

    #[test]
    fn the_target_is_an_http_base_url() {
        assert!(parse_target("https://example.com/app/").is_ok());
        assert!(parse_target("ftp://example.com").is_err());
        assert!(parse_target("127.0.0.1:5000").is_err());
        assert!(
            parse_target("http://a:1/?x=1")
                .unwrap_err()
                .contains("query")
        );
    }

    #[test]
    fn numbers_must_be_above_zero() {
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_requests("0").is_err());
        assert!(parse_concurrency("0").is_err());
        assert!(parse_seed("-1").is_err());
    }
}
