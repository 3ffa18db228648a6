//! The `prom-metrics-app` binary: parse the configuration, start telemetry, serve until SIGTERM or
//! SIGINT, then drain and flush.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use prom_metrics_app::{
    config::{Command, Config},
    healthcheck,
    http::AppState,
    metrics, server,
    telemetry::Telemetry,
};

/// Upper bound on flushing spans and metrics at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse_or_exit();
    if let Some(Command::Healthcheck(args)) = &config.command {
        return match healthcheck::run(config.listen, args).await {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        };
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let telemetry = Telemetry::init(&config)?;
    let backend = metrics::build(&config, &telemetry);
    let state = AppState::new(backend, &config);
    let server = server::Server::bind(config.listen, state, config.shutdown_grace_period)
        .await
        .with_context(|| format!("cannot listen on {} (LISTEN_ADDR)", config.listen))?;
    let address = server.local_addr()?;
    tracing::info!(
        version = prom_metrics_app::VERSION,
        revision = prom_metrics_app::REVISION,
        %address,
        backend = ?config.metrics_backend,
        exporter = ?config.otel_exporter,
        "prom-metrics-app started"
    );
    // One line on stderr whatever the log destination, so a person (or a test) sees where it listens.
    eprintln!(
        "prom-metrics-app {} listening on {address}",
        prom_metrics_app::VERSION
    );
    server.run(server::shutdown_signal()).await?;
    telemetry.shutdown(FLUSH_TIMEOUT).await;
    Ok(())
}
