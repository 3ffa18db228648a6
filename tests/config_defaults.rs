//! `Config::defaults()` ignores the environment of whoever runs it. A test binary of its own: it
//! sets variables, which must not leak into tests running beside it.

use prom_metrics_app::config::{Backend, Config, Exporter};

#[test]
fn defaults_ignore_the_environment() {
    // SAFETY: this binary has one test and no other thread that reads the environment.
    unsafe {
        std::env::set_var("METRICS_BACKEND", "otel");
        std::env::set_var("OTEL_EXPORTER", "otlp");
        std::env::set_var("LISTEN_ADDR", "127.0.0.1:1");
    }

    let config = Config::defaults();
    let parsed = Config::try_parse_args(["prom-metrics-app"]).unwrap();

    assert_eq!(config.metrics_backend, Backend::Prometheus);
    assert_eq!(config.otel_exporter, Exporter::Console);
    assert_eq!(config.listen.port(), 5000);
    assert_eq!(
        parsed.metrics_backend,
        Backend::Otel,
        "the environment is set"
    );
}
