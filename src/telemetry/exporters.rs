//! Span and metric exporters for `OTEL_EXPORTER` (`console`, `otlp`, `none`), each behind the loss
//! counting of [`super::loss`]; the metric exporter also behind the [`super::tap`] that
//! `/view_metrics` reads with the OpenTelemetry backend.

use std::{collections::HashMap, sync::Arc, time::Duration};

use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
    tonic_types::{metadata::MetadataMap, transport::ClientTlsConfig},
};
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader};
use url::Url;

use super::console::{ConsoleMetricExporter, ConsoleSpanExporter};
use super::loss::{BoundedProcessor, CountingMetricExporter, Losses, bounded_processor};
use super::tap::{Discard, MetricsTap};
use crate::config::{Config, Exporter, OtlpProtocol};
use crate::tls::Roots;

/// How often the console exporter prints the spans that ended: a person watching the terminal
/// sees a request's span within half a second.
const CONSOLE_EVERY: Duration = Duration::from_millis(500);
/// How often spans are sent to a collector, the specification's default (`OTEL_BSP_SCHEDULE_DELAY`).
const OTLP_EVERY: Duration = Duration::from_secs(5);

/// The span processor for the configured exporter, or `None` with `OTEL_EXPORTER=none`.
pub fn span_processor(
    config: &Config,
    losses: &Arc<Losses>,
) -> anyhow::Result<Option<BoundedProcessor>> {
    crate::tls::install_provider();
    Ok(match config.otel_exporter {
        Exporter::None => None,
        Exporter::Console => Some(bounded_processor(
            ConsoleSpanExporter::new(config.console_format),
            losses.clone(),
            CONSOLE_EVERY,
        )),
        Exporter::Otlp => {
            let exporter = match config.otel_exporter_otlp_protocol {
                OtlpProtocol::Grpc => {
                    grpc(SpanExporter::builder().with_tonic(), config)?.build()?
                }
                OtlpProtocol::HttpProtobuf => {
                    http(SpanExporter::builder().with_http(), config, "v1/traces")?.build()?
                }
            };
            Some(bounded_processor(exporter, losses.clone(), OTLP_EVERY))
        }
    })
}

/// Adds the one reader of the meter provider: every `OTEL_METRIC_EXPORT_INTERVAL` it collects,
/// shows the collection to `tap`, then exports it to the configured exporter (with
/// `OTEL_EXPORTER=none`, to nothing further).
pub fn with_periodic_reader(
    builder: MeterProviderBuilder,
    config: &Config,
    losses: &Arc<Losses>,
    tap: &MetricsTap,
) -> anyhow::Result<MeterProviderBuilder> {
    crate::tls::install_provider();
    let interval = config.otel_metric_export_interval;
    Ok(match config.otel_exporter {
        Exporter::None => builder.with_reader(
            PeriodicReader::builder(tap.tee(Discard))
                .with_interval(interval)
                .build(),
        ),
        Exporter::Console => builder.with_reader(
            PeriodicReader::builder(tap.tee(counted(
                ConsoleMetricExporter::new(config.console_format),
                losses,
            )))
            .with_interval(interval)
            .build(),
        ),
        Exporter::Otlp => {
            let exporter = match config.otel_exporter_otlp_protocol {
                OtlpProtocol::Grpc => {
                    grpc(MetricExporter::builder().with_tonic(), config)?.build()?
                }
                OtlpProtocol::HttpProtobuf => {
                    http(MetricExporter::builder().with_http(), config, "v1/metrics")?.build()?
                }
            };
            builder.with_reader(
                PeriodicReader::builder(tap.tee(counted(exporter, losses)))
                    .with_interval(interval)
                    .build(),
            )
        }
    })
}

fn counted<E>(inner: E, losses: &Arc<Losses>) -> CountingMetricExporter<E> {
    CountingMetricExporter {
        inner,
        losses: losses.clone(),
    }
}

/// The endpoint with TLS applied: `OTEL_EXPORTER_OTLP_INSECURE=false` means TLS even for an
/// `http://` URL, as the original's gRPC exporter did.
fn secured(config: &Config) -> Url {
    let mut url = config.otlp_endpoint();
    if !config.otel_exporter_otlp_insecure && url.scheme() == "http" {
        url.set_scheme("https")
            .expect("http and https are interchangeable schemes");
    }
    url
}

/// Configures an OTLP/gRPC exporter builder (spans or metrics alike).
fn grpc<B: WithExportConfig + WithTonicConfig>(builder: B, config: &Config) -> anyhow::Result<B> {
    let url = secured(config);
    let mut builder = builder
        .with_endpoint(url.as_str().trim_end_matches('/'))
        .with_timeout(config.otel_exporter_otlp_timeout)
        .with_metadata(metadata(config)?);
    if url.scheme() == "https" {
        let tls = match Roots::find() {
            Roots::System => ClientTlsConfig::new().with_native_roots(),
            Roots::Embedded => ClientTlsConfig::new().ca_certificates(
                crate::tls::embedded_pem()
                    .into_iter()
                    .map(opentelemetry_otlp::tonic_types::transport::Certificate::from_pem),
            ),
        };
        builder = builder.with_tls_config(tls);
    }
    Ok(builder)
}

/// Configures an OTLP/HTTP exporter builder: the per-signal path is appended to the base endpoint,
/// as the specification says.
fn http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    config: &Config,
    signal_path: &str,
) -> anyhow::Result<B> {
    let url = secured(config);
    let mut builder = builder
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!(
            "{}/{signal_path}",
            url.as_str().trim_end_matches('/')
        ))
        .with_timeout(config.otel_exporter_otlp_timeout)
        .with_headers(headers(config));
    // Even for http://: the default client fails to build where the system has no roots.
    if Roots::find() == Roots::Embedded {
        builder = builder.with_http_client(client_with_embedded_roots(
            config.otel_exporter_otlp_timeout,
        )?);
    }
    Ok(builder)
}

/// An OTLP/HTTP client that trusts the embedded roots. It is built on a thread of its own, as
/// the exporter builds its default one: a blocking client must not be created on a runtime thread.
fn client_with_embedded_roots(timeout: Duration) -> anyhow::Result<reqwest::blocking::Client> {
    let certificates = crate::tls::embedded_certificates()?;
    let build = move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .tls_certs_only(certificates)
            .build()
    };
    match std::thread::spawn(build).join() {
        Ok(client) => Ok(client?),
        Err(_) => anyhow::bail!("building the OTLP/HTTP client panicked"),
    }
}

fn headers(config: &Config) -> HashMap<String, String> {
    config
        .otel_exporter_otlp_headers
        .iter()
        .flat_map(|h| h.0.iter().cloned())
        .collect()
}

fn metadata(config: &Config) -> anyhow::Result<MetadataMap> {
    let mut map = axum::http::HeaderMap::new();
    for (key, value) in headers(config) {
        // Config has checked names and values already.
        let name = axum::http::HeaderName::try_from(key.to_ascii_lowercase())?;
        map.insert(name, axum::http::HeaderValue::try_from(value)?);
    }
    Ok(MetadataMap::from_headers(map))
}
