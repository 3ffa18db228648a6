//! The command line: `prom-metrics-app [serve]`, `prom-metrics-app load` and
//! `prom-metrics-app healthcheck`. Parsed here, at the top, so that no lower module knows which
//! commands exist; each command's own flags live with the command.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind};

use crate::{
    config::{Config, EXIT_CONFIG, env, error::one_line},
    healthcheck::HealthcheckArgs,
    load::LoadArgs,
};

/// The binary's command line. Without a command it serves, with the server's flags.
#[derive(Debug, Parser)]
#[command(name = "prom-metrics-app", version = crate::VERSION, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    serve: Config,

    #[command(subcommand)]
    command: Option<Command>,
}

/// What the binary is asked to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app: what the binary does without a command, with the same flags.
    Serve(Box<Config>),
    /// Probe /healthz of a running instance and exit 0 if it answers 200, 1 otherwise. Made for
    /// container HEALTHCHECKs and `helm test`: the image has no shell and no curl.
    Healthcheck(HealthcheckArgs),
    /// Put a running instance under load: requests at a fixed rate, over a weighted mix of paths.
    ///
    /// Prints what came back: status codes, errors, latency percentiles and the rate achieved.
    /// Runs for 10s when neither --duration nor --requests is given. Exits 0 when the run
    /// completed (HTTP errors are measurements), 1 when no request could connect, 2 on a bad flag.
    Load(LoadArgs),
}

/// Parses the command line and the environment; on bad input prints one line and exits with
/// code 2 (help and version print and exit 0, as clap does).
pub fn parse_or_exit() -> Command {
    match try_parse_args(std::env::args_os()) {
        Ok(command) => command,
        Err(err) => match one_line(&err, &Cli::command()) {
            Some(line) => {
                eprintln!("{line}");
                std::process::exit(EXIT_CONFIG);
            }
            None => err.exit(),
        },
    }
}

/// Parses `args` and the environment into the command to run, its settings validated.
pub fn try_parse_args<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = env::without_empty_variables(Cli::command()).try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let command = match cli.command {
        Some(command) => command,
        None => Command::Serve(Box::new(cli.serve)),
    };
    if let Command::Serve(config) = &command {
        config
            .validate()
            .map_err(|err| Cli::command().error(ErrorKind::ArgumentConflict, err))?;
    }
    Ok(command)
}

/// The variables the command line documents, every command's.
pub fn documented_variables() -> Vec<String> {
    env::documented(&Cli::command())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        try_parse_args(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
    }

    #[test]
    fn without_a_command_the_binary_serves_with_the_flags_given() {
        let Ok(Command::Serve(config)) = parse(&["--metrics-backend", "otel"]) else {
            panic!("serves");
        };

        assert_eq!(config.metrics_backend, crate::config::Backend::Otel);
    }

    #[test]
    fn serve_takes_the_same_flags_as_no_command() {
        let Ok(Command::Serve(config)) = parse(&["serve", "--listen", "127.0.0.1:5001"]) else {
            panic!("serves");
        };

        assert_eq!(config.listen.port(), 5001);
    }

    #[test]
    fn load_and_healthcheck_have_their_own_flags() {
        let load = parse(&["load", "--target", "http://127.0.0.1:5000", "--rate", "5"]);
        let probe = parse(&["healthcheck", "--listen", "127.0.0.1:5002"]);

        assert!(matches!(load, Ok(Command::Load(args)) if args.rate == 5.0));
        assert!(matches!(probe, Ok(Command::Healthcheck(args)) if args.listen.port() == 5002));
    }

    #[test]
    fn an_invalid_value_of_a_command_names_its_flag() {
        let err = parse(&["load", "--target", "http://a:1", "--rate", "0"]).unwrap_err();

        let line = one_line(&err, &Cli::command()).unwrap();
        assert!(line.contains("--rate") && line.contains("'0'"), "{line}");
    }

    #[test]
    fn settings_that_do_not_go_together_stop_serve_too() {
        let err = parse(&["serve", "--chaos-latency", "50s", "--chaos-jitter", "20s"]).unwrap_err();

        assert!(err.to_string().contains("CHAOS_JITTER"), "{err}");
    }
}
