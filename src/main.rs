//! The `prom-metrics-app` binary: parse the command line, then serve (start telemetry, serve until
//! SIGTERM or SIGINT, drain and flush), or run the `healthcheck` or `load` command, which need no
//! telemetry.

use std::{io::Write, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use prom_metrics_app::{
    cli::{self, Command},
    config::{Config, env},
    healthcheck,
    http::{self, AppState},
    load, metrics, server,
    telemetry::{self, Telemetry},
};

/// Upper bound on flushing spans and metrics at shutdown, both together.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let command = cli::parse_or_exit();
    // SAFETY: no other thread exists yet; the runtime is built below.
    let ignored = unsafe { env::remove_otel_variables(&cli::documented_variables()) };
    // `load` carries its requests on one thread (see `load::runner`); the server uses every core.
    let runtime = match &command {
        Command::Load(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Healthcheck(args) => match runtime.block_on(healthcheck::run(&args)) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Command::Load(args) => {
            match runtime.block_on(load::run(&args, async {
                server::shutdown_signal().await;
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(err.exit_code())
                }
            }
        }
        Command::Serve(config) => match runtime.block_on(serve(*config, ignored)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(config: Config, ignored: Vec<String>) -> anyhow::Result<()> {
    let view = metrics::otel::view(
        http::max_server_series(),
        telemetry::histogram_aggregation(&config),
    );
    let telemetry = Telemetry::init(&config, view)?;
    if !ignored.is_empty() {
        tracing::warn!(
            variables = %ignored.join(","),
            "ignoring OpenTelemetry variables that this app does not support (see docs/configuration.md)"
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
    // Before the app says it listens: a signal from then on stops it gracefully.
    let signal = server::shutdown_signal();
    tracing::info!(
        version = prom_metrics_app::VERSION,
        revision = prom_metrics_app::REVISION,
        %address,
        backend = %config.metrics_backend,
        traces_exporter = %config.traces_exporter(),
        metrics_exporter = %config.metrics_exporter(),
        logs_exporter = %config.logs_exporter(),
        "prom-metrics-app started"
    );
    let synthetic = prom_metrics_app::synthetic::Settings::from_config(&config);
    if synthetic.metrics > 0 {
        synthetic.log("synthetic series on: their counts are on /api/synthetic");
    }
    // One line on stderr whatever the log destination, so a person (or a test) sees where it
    // listens; written at once, so no other output can split it.
    let line = format!(
        "prom-metrics-app {} listening on {address}\n",
        prom_metrics_app::VERSION
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    let stop = server.run(signal).await?;
    telemetry
        .shutdown(FLUSH_TIMEOUT, |step| stop.tell(step))
        .await;
    Ok(())
}
