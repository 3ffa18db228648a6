//! Span, metric and log record exporters for `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` and
//! `OTEL_LOGS_EXPORTER` (`console`, `otlp`, `none`; see [`Config::logs_exporter`] for the default
//! of logs), each behind the loss counting and time limits of [`super::loss`] and
//! [`super::records`]; the metric exporter also behind the [`super::tap`] that
//! `/view_metrics` reads with the OpenTelemetry backend. Each signal has its own OTLP settings
//! (endpoint, protocol, headers, compression, TLS), resolved by the configuration.

use std::{collections::HashMap, sync::Arc, time::Duration};

use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
    tonic_types::{
        metadata::MetadataMap,
        transport::{Certificate, ClientTlsConfig, Identity},
    },
};
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader, Temporality};

use super::console::{ConsoleLogExporter, ConsoleMetricExporter, ConsoleSpanExporter};
use super::deadline::Deadline;
use super::loss::{Batching, BoundedProcessor, CountingMetricExporter, Losses, bounded_processor};
use super::records::{self, BoundedLogProcessor};
use super::tap::{Discard, MetricsTap};
use crate::config::{
    Compression, Config, Exporter, KeyValues, OtlpProtocol, OtlpTarget, Signal,
    TemporalityPreference,
};
use crate::tls::Roots;

/// How often the console exporter prints the spans that ended, unless `OTEL_BSP_SCHEDULE_DELAY`
/// says otherwise: a person watching the terminal sees a request's span within half a second.
const CONSOLE_EVERY: Duration = Duration::from_millis(500);
/// How often spans are sent to a collector, the specification's default (`OTEL_BSP_SCHEDULE_DELAY`).
const OTLP_EVERY: Duration = Duration::from_secs(5);
/// How often log records are sent to a collector, the specification's default
/// (`OTEL_BLRP_SCHEDULE_DELAY`).
const OTLP_LOGS_EVERY: Duration = Duration::from_secs(1);

/// The span processor for the traces exporter, or `None` when spans go nowhere.
pub fn span_processor(
    config: &Config,
    losses: &Arc<Losses>,
) -> anyhow::Result<Option<BoundedProcessor>> {
    crate::tls::install_provider();
    let exporter = config.traces_exporter();
    let batching = Batching {
        capacity: config.sdk.otel_bsp_max_queue_size,
        batch_size: config.sdk.span_batch_size(),
        every: config
            .sdk
            .otel_bsp_schedule_delay
            .unwrap_or(match exporter {
                Exporter::Console => CONSOLE_EVERY,
                _ => OTLP_EVERY,
            }),
        export_timeout: config.sdk.otel_bsp_export_timeout,
    };
    Ok(match exporter {
        Exporter::None => None,
        Exporter::Console => Some(bounded_processor(
            ConsoleSpanExporter::new(config.console_format),
            losses.clone(),
            batching,
        )),
        Exporter::Otlp => {
            let target = config.otlp(Signal::Traces);
            let exporter = match target.protocol {
                OtlpProtocol::Grpc => {
                    grpc(SpanExporter::builder().with_tonic(), &target)?.build()?
                }
                OtlpProtocol::HttpProtobuf => {
                    http(SpanExporter::builder().with_http(), &target)?.build()?
                }
            };
            Some(bounded_processor(exporter, losses.clone(), batching))
        }
    })
}

/// The log record processor for the logs exporter, or `None` when records go nowhere: then no
/// logger provider is made, and no record is ever built.
pub fn log_processor(
    config: &Config,
    losses: &Arc<Losses>,
) -> anyhow::Result<Option<BoundedLogProcessor>> {
    crate::tls::install_provider();
    let exporter = config.logs_exporter();
    let batching = Batching {
        capacity: config.sdk.otel_blrp_max_queue_size,
        batch_size: config.sdk.log_batch_size(),
        every: config
            .sdk
            .otel_blrp_schedule_delay
            .unwrap_or(match exporter {
                Exporter::Console => CONSOLE_EVERY,
                _ => OTLP_LOGS_EVERY,
            }),
        export_timeout: config.sdk.otel_blrp_export_timeout,
    };
    Ok(match exporter {
        Exporter::None => None,
        Exporter::Console => Some(records::bounded_processor(
            ConsoleLogExporter::new(config.console_format),
            losses.clone(),
            batching,
        )),
        Exporter::Otlp => {
            let target = config.otlp(Signal::Logs);
            let exporter = match target.protocol {
                OtlpProtocol::Grpc => {
                    grpc(LogExporter::builder().with_tonic(), &target)?.build()?
                }
                OtlpProtocol::HttpProtobuf => {
                    http(LogExporter::builder().with_http(), &target)?.build()?
                }
            };
            Some(records::bounded_processor(
                exporter,
                losses.clone(),
                batching,
            ))
        }
    })
}

/// Adds the one reader of the meter provider: every `OTEL_METRIC_EXPORT_INTERVAL` it collects,
/// shows the collection to `tap`, then exports it to the metrics exporter (with `none`, to
/// nothing further), within `OTEL_METRIC_EXPORT_TIMEOUT`.
pub fn with_periodic_reader(
    builder: MeterProviderBuilder,
    config: &Config,
    losses: &Arc<Losses>,
    tap: &MetricsTap,
) -> anyhow::Result<MeterProviderBuilder> {
    crate::tls::install_provider();
    let interval = config.otel_metric_export_interval;
    let counted = |exporter| {
        CountingMetricExporter::new(
            exporter,
            losses.clone(),
            Deadline::new(config.sdk.otel_metric_export_timeout),
        )
    };
    Ok(match config.metrics_exporter() {
        Exporter::None => builder.with_reader(
            PeriodicReader::builder(tap.tee(Discard))
                .with_interval(interval)
                .build(),
        ),
        Exporter::Console => builder.with_reader(
            PeriodicReader::builder(tap.tee(CountingMetricExporter::new(
                ConsoleMetricExporter::new(config.console_format),
                losses.clone(),
                Deadline::new(config.sdk.otel_metric_export_timeout),
            )))
            .with_interval(interval)
            .build(),
        ),
        Exporter::Otlp => {
            let target = config.otlp(Signal::Metrics);
            let temporality =
                temporality(config.sdk.otel_exporter_otlp_metrics_temporality_preference);
            let exporter = match target.protocol {
                OtlpProtocol::Grpc => grpc(
                    MetricExporter::builder()
                        .with_temporality(temporality)
                        .with_tonic(),
                    &target,
                )?
                .build()?,
                OtlpProtocol::HttpProtobuf => http(
                    MetricExporter::builder()
                        .with_temporality(temporality)
                        .with_http(),
                    &target,
                )?
                .build()?,
            };
            builder.with_reader(
                PeriodicReader::builder(tap.tee(counted(exporter)))
                    .with_interval(interval)
                    .build(),
            )
        }
    })
}

/// The SDK's temporality for the preference; the SDK applies it per instrument kind as the
/// specification says (`lowmemory`: deltas for synchronous counters and histograms only).
fn temporality(preference: TemporalityPreference) -> Temporality {
    match preference {
        TemporalityPreference::Cumulative => Temporality::Cumulative,
        TemporalityPreference::Delta => Temporality::Delta,
        TemporalityPreference::LowMemory => Temporality::LowMemory,
    }
}

/// Configures an OTLP/gRPC exporter builder (spans, metrics or logs alike).
fn grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    target: &OtlpTarget,
) -> anyhow::Result<B> {
    let mut builder = builder
        .with_endpoint(target.endpoint.as_str().trim_end_matches('/'))
        .with_timeout(target.timeout)
        .with_metadata(metadata(&target.headers)?);
    if target.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if target.endpoint.scheme() == "https" {
        let mut tls = match (&target.certificate, Roots::find()) {
            (Some(ca), _) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem.as_bytes()))
            }
            (None, Roots::System) => ClientTlsConfig::new().with_native_roots(),
            (None, Roots::Embedded) => ClientTlsConfig::new().ca_certificates(
                crate::tls::embedded_pem()
                    .into_iter()
                    .map(Certificate::from_pem),
            ),
        };
        if let Some((key, chain)) = &target.identity {
            tls = tls.identity(Identity::from_pem(chain.pem.as_bytes(), key.pem.as_bytes()));
        }
        builder = builder.with_tls_config(tls);
    }
    Ok(builder)
}

/// Configures an OTLP/HTTP exporter builder: the target's endpoint is the whole export URL.
fn http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    target: &OtlpTarget,
) -> anyhow::Result<B> {
    let mut builder = builder
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(target.endpoint.as_str())
        .with_timeout(target.timeout)
        .with_headers(headers(&target.headers))
        .with_http_client(http_client(target)?);
    if target.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(builder)
}

/// The OTLP/HTTP client: it trusts `OTEL_EXPORTER_OTLP_CERTIFICATE` when set, else the roots
/// found (the default client fails to build where the system has none, even for http://), and
/// presents the client certificate when one is set. Built on a thread of its own, as the exporter
/// builds its default one: a blocking client must not be created on a runtime thread.
fn http_client(target: &OtlpTarget) -> anyhow::Result<reqwest::blocking::Client> {
    crate::tls::install_provider();
    let roots = match (&target.certificate, Roots::find()) {
        (Some(ca), _) => Some(reqwest::Certificate::from_pem_bundle(ca.pem.as_bytes())?),
        (None, Roots::Embedded) => Some(crate::tls::embedded_certificates()?),
        (None, Roots::System) => None,
    };
    let identity = match &target.identity {
        Some((key, chain)) => Some(reqwest::Identity::from_pem(
            format!("{}\n{}", chain.pem, key.pem).as_bytes(),
        )?),
        None => None,
    };
    let timeout = target.timeout;
    let build = move || {
        let mut client = reqwest::blocking::Client::builder().timeout(timeout);
        if let Some(roots) = roots {
            client = client.tls_certs_only(roots);
        }
        if let Some(identity) = identity {
            client = client.identity(identity);
        }
        client.build()
    };
    match std::thread::spawn(build).join() {
        Ok(client) => Ok(client?),
        Err(_) => anyhow::bail!("building the OTLP/HTTP client panicked"),
    }
}

fn headers(headers: &KeyValues) -> HashMap<String, String> {
    headers.0.iter().cloned().collect()
}

fn metadata(headers: &KeyValues) -> anyhow::Result<MetadataMap> {
    let mut map = axum::http::HeaderMap::new();
    for (key, value) in &headers.0 {
        // Config has checked names and values already.
        let name = axum::http::HeaderName::try_from(key.to_ascii_lowercase())?;
        map.insert(name, axum::http::HeaderValue::try_from(value.as_str())?);
    }
    Ok(MetadataMap::from_headers(map))
}
