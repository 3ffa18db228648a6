//! The `prom-metrics-app` binary: parse the configuration, start telemetry, serve until SIGTERM or
//! SIGINT, then drain and flush. The `healthcheck` and `load` commands run instead of serving,
//! without telemetry.

use std::{io::Write, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use prom_metrics_app::{
    config::{self, Command, Config},
    healthcheck,
    http::AppState,
    load, metrics, server,
    telemetry::Telemetry,
};

/// Upper bound on flushing spans and metrics at shutdown, both together.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let config = Config::parse_or_exit();
    // SAFETY: no other thread exists yet; the runtime is built below.
    let ignored = unsafe { config::remove_otel_variables() };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match &config.command {
        Some(Command::Healthcheck(args)) => {
            return match runtime.block_on(healthcheck::run(config.listen, args)) {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            };
        }
        Some(Command::Load(args)) => {
            return match runtime.block_on(load::run(args, server::shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(err.exit_code())
                }
            };
        }
        None => {}
    }
    match runtime.block_on(run(config, ignored)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, ignored: Vec<String>) -> anyhow::Result<()> {
    let telemetry = Telemetry::init(&config)?;
    if !ignored.is_empty() {
        tracing::warn!(
            variables = %ignored.join(","),
            "ignoring OpenTelemetry variables that this app does not support (see the README's configuration table)"
        );
    }
    // Counted by the server, exported by the backend.
    let refused = Arc::new(metrics::RefusedRequests::default());
    let backend = metrics::build(&config, &telemetry, &refused);
    let state = AppState::traced(
        backend,
        &config,
        telemetry.tracer(),
        Some(telemetry.access_log()),
    );
    let server = server::Server::bind(config.listen, state, &config, refused)
        .await
        .with_context(|| format!("cannot listen on {} (LISTEN_ADDR)", config.listen))?;
    let address = server.local_addr()?;
    tracing::info!(
        version = prom_metrics_app::VERSION,
        revision = prom_metrics_app::REVISION,
        %address,
        backend = %config.metrics_backend,
        exporter = %config.otel_exporter,
        "prom-metrics-app started"
    );
    // One line on stderr whatever the log destination, so a person (or a test) sees where it
    // listens; written at once, so no other output can split it.
    let line = format!(
        "prom-metrics-app {} listening on {address}\n",
        prom_metrics_app::VERSION
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    server.run(server::shutdown_signal()).await?;
    telemetry.shutdown(FLUSH_TIMEOUT).await;
    Ok(())
}
