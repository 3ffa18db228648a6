//! The OpenTelemetry SDK's own settings under the specification's names: which exporter each
//! signal has (`OTEL_*_EXPORTER`, `OTEL_SDK_DISABLED`), the batch span processor (`OTEL_BSP_*`),
//! the batch log record processor (`OTEL_BLRP_*`), the metric reader's export timeout, the span attribute count limit, and the aggregation and
//! temporality of the OTel backend's metrics.

use std::time::Duration;

use clap::{ArgAction, Args};

use super::parse::{parse_bool, parse_interval};
use super::values::{Exporter, HistogramAggregation, TemporalityPreference};

/// The largest span queue: at the default attribute value limit a queued span holds about 8 kB.
pub const MAX_SPAN_QUEUE: usize = 1_000_000;

/// The SDK settings (flattened into [`super::Config`]).
#[derive(Debug, Clone, Args)]
pub struct SdkSettings {
    /// `true` turns every OpenTelemetry signal off, whatever the exporters say: nothing is exported, while the app serves, counts and writes trace ids in its log lines as usual.
    #[arg(long, env = "OTEL_SDK_DISABLED", value_name = "OTEL_SDK_DISABLED", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub otel_sdk_disabled: bool,

    /// Where spans go: `console`, `otlp` or `none` [default: OTEL_EXPORTER].
    #[arg(
        long,
        env = "OTEL_TRACES_EXPORTER",
        value_name = "OTEL_TRACES_EXPORTER",
        ignore_case = true
    )]
    pub otel_traces_exporter: Option<Exporter>,

    /// Where the OTel backend's metrics go: `console`, `otlp` or `none` [default: OTEL_EXPORTER].
    #[arg(
        long,
        env = "OTEL_METRICS_EXPORTER",
        value_name = "OTEL_METRICS_EXPORTER",
        ignore_case = true
    )]
    pub otel_metrics_exporter: Option<Exporter>,

    /// Where log records go: `console`, `otlp` or `none` [default: OTEL_EXPORTER].
    #[arg(
        long,
        env = "OTEL_LOGS_EXPORTER",
        value_name = "OTEL_LOGS_EXPORTER",
        ignore_case = true
    )]
    pub otel_logs_exporter: Option<Exporter>,

    /// Longest wait between two span exports, in milliseconds [default: 500 for console, 5000 for otlp].
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", value_name = "OTEL_BSP_SCHEDULE_DELAY", value_parser = parse_interval)]
    pub otel_bsp_schedule_delay: Option<Duration>,

    /// Time limit of one span export, retries included, in milliseconds; spans of an export past it are counted as lost.
    #[arg(long, env = "OTEL_BSP_EXPORT_TIMEOUT", value_name = "OTEL_BSP_EXPORT_TIMEOUT", default_value = "30000", value_parser = parse_interval)]
    pub otel_bsp_export_timeout: Duration,

    /// Most spans waiting for export, from 1 to 1000000; spans that end while it is full are dropped and counted.
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE", value_name = "OTEL_BSP_MAX_QUEUE_SIZE", default_value = "2048", value_parser = parse_queue_size)]
    pub otel_bsp_max_queue_size: usize,

    /// Most spans in one export, from 1 to 1000000; more than OTEL_BSP_MAX_QUEUE_SIZE counts as the queue's size.
    #[arg(long, env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", value_name = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default_value = "512", value_parser = parse_queue_size)]
    pub otel_bsp_max_export_batch_size: usize,

    /// Longest wait between two log record exports, in milliseconds [default: 500 for console, 1000 for otlp].
    #[arg(long, env = "OTEL_BLRP_SCHEDULE_DELAY", value_name = "OTEL_BLRP_SCHEDULE_DELAY", value_parser = parse_interval)]
    pub otel_blrp_schedule_delay: Option<Duration>,

    /// Time limit of one log record export, retries included, in milliseconds; records of an export past it are counted as lost.
    #[arg(long, env = "OTEL_BLRP_EXPORT_TIMEOUT", value_name = "OTEL_BLRP_EXPORT_TIMEOUT", default_value = "30000", value_parser = parse_interval)]
    pub otel_blrp_export_timeout: Duration,

    /// Most log records waiting for export, from 1 to 1000000; records emitted while it is full are dropped and counted.
    #[arg(long, env = "OTEL_BLRP_MAX_QUEUE_SIZE", value_name = "OTEL_BLRP_MAX_QUEUE_SIZE", default_value = "2048", value_parser = parse_queue_size)]
    pub otel_blrp_max_queue_size: usize,

    /// Most log records in one export, from 1 to 1000000; more than OTEL_BLRP_MAX_QUEUE_SIZE counts as the queue's size.
    #[arg(long, env = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", value_name = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", default_value = "512", value_parser = parse_queue_size)]
    pub otel_blrp_max_export_batch_size: usize,

    /// Time limit of one metric export, in milliseconds; an export past it is counted as failed.
    #[arg(long, env = "OTEL_METRIC_EXPORT_TIMEOUT", value_name = "OTEL_METRIC_EXPORT_TIMEOUT", default_value = "30000", value_parser = parse_interval)]
    pub otel_metric_export_timeout: Duration,

    /// Most attributes a span (and each of its events and links) keeps, from 0 to 65535; the rest are dropped and counted in the span's dropped attributes count.
    #[arg(long, env = "OTEL_ATTRIBUTE_COUNT_LIMIT", value_name = "OTEL_ATTRIBUTE_COUNT_LIMIT", default_value = "128", value_parser = parse_count_limit)]
    pub otel_attribute_count_limit: u32,

    /// Aggregation of the OTel backend's histograms: `explicit_bucket_histogram` (the app's fixed buckets) or `base2_exponential_bucket_histogram`.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        value_name = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        default_value = "explicit_bucket_histogram",
        ignore_case = true
    )]
    pub otel_exporter_otlp_metrics_default_histogram_aggregation: HistogramAggregation,

    /// Most buckets of each exponential histogram's positive (and negative) range, from 2 to 16384.
    #[arg(long, env = "EXPONENTIAL_HISTOGRAM_MAX_SIZE", value_name = "EXPONENTIAL_HISTOGRAM_MAX_SIZE", default_value = "160", value_parser = parse_max_size)]
    pub exponential_histogram_max_size: u32,

    /// Highest scale (finest resolution) of an exponential histogram, from -10 to 20: at scale s neighbouring bounds differ by a factor 2^(2^-s).
    #[arg(long, env = "EXPONENTIAL_HISTOGRAM_MAX_SCALE", value_name = "EXPONENTIAL_HISTOGRAM_MAX_SCALE", default_value = "20", value_parser = parse_max_scale, allow_hyphen_values = true)]
    pub exponential_histogram_max_scale: i8,

    /// Temporality the OTLP metric exporter asks for: `cumulative`, `delta` or `lowmemory`, applied per instrument kind as the specification says.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        value_name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        default_value = "cumulative",
        ignore_case = true
    )]
    pub otel_exporter_otlp_metrics_temporality_preference: TemporalityPreference,
}

impl SdkSettings {
    /// Spans in one export at most: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, within the queue's size as
    /// the specification requires (so a small `OTEL_BSP_MAX_QUEUE_SIZE` alone is enough).
    pub fn span_batch_size(&self) -> usize {
        self.otel_bsp_max_export_batch_size
            .min(self.otel_bsp_max_queue_size)
    }

    /// Log records in one export at most: `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`, within the queue's
    /// size, as for spans.
    pub fn log_batch_size(&self) -> usize {
        self.otel_blrp_max_export_batch_size
            .min(self.otel_blrp_max_queue_size)
    }
}

fn parse_whole(value: &str, min: i64, max: i64, example: i64) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, such as {example}"
        )),
    }
}

/// Parses a span or log record count of a batch processor: 1 to [`MAX_SPAN_QUEUE`].
pub fn parse_queue_size(value: &str) -> Result<usize, String> {
    parse_whole(value, 1, MAX_SPAN_QUEUE as i64, 512).map(|n| n as usize)
}

/// Parses `OTEL_ATTRIBUTE_COUNT_LIMIT`: 0 to 65535.
pub fn parse_count_limit(value: &str) -> Result<u32, String> {
    parse_whole(value, 0, 65_535, 128).map(|n| n as u32)
}

/// Parses `EXPONENTIAL_HISTOGRAM_MAX_SIZE`: 2 to 16384 buckets.
pub fn parse_max_size(value: &str) -> Result<u32, String> {
    parse_whole(value, 2, 16_384, 160).map(|n| n as u32)
}

/// Parses `EXPONENTIAL_HISTOGRAM_MAX_SCALE`: -10 to 20, the SDK's range.
pub fn parse_max_scale(value: &str) -> Result<i8, String> {
    parse_whole(value, -10, 20, 20).map(|n| n as i8)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::config::{Config, error::one_line};

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
    }

    #[test]
    fn each_signal_has_its_exporter_with_otel_exporter_as_the_default() {
        let config = parse(&[
            "--otel-exporter=console",
            "--otel-metrics-exporter=OTLP",
            "--otel-logs-exporter=console",
        ])
        .unwrap();
        let defaults = Config::defaults();
        let otlp = parse(&["--otel-exporter=otlp"]).unwrap();

        assert_eq!(config.traces_exporter(), Exporter::Console);
        assert_eq!(config.metrics_exporter(), Exporter::Otlp);
        assert_eq!(config.logs_exporter(), Exporter::Console);
        assert_eq!(
            [
                defaults.traces_exporter(),
                defaults.metrics_exporter(),
                defaults.logs_exporter()
            ],
            [Exporter::Console; 3]
        );
        assert_eq!(otlp.logs_exporter(), Exporter::Otlp);
        let err = parse(&["--otel-traces-exporter=zipkin"]).unwrap_err();
        let line = one_line(&err, &Config::command()).unwrap();
        assert!(line.contains("OTEL_TRACES_EXPORTER") && line.contains("console, otlp, none"));
    }

    #[test]
    fn a_disabled_sdk_exports_nothing_whatever_the_exporters_say() {
        let config = parse(&[
            "--otel-exporter=otlp",
            "--otel-traces-exporter=console",
            "--otel-sdk-disabled=TRUE",
        ])
        .unwrap();

        assert!(!Config::defaults().sdk.otel_sdk_disabled);
        assert_eq!(
            [
                config.traces_exporter(),
                config.metrics_exporter(),
                config.logs_exporter()
            ],
            [Exporter::None; 3]
        );
    }

    #[test]
    fn batch_settings_default_to_the_specification_and_are_bounded() {
        let defaults = Config::defaults().sdk;
        let config = parse(&[
            "--otel-bsp-schedule-delay=200",
            "--otel-bsp-export-timeout=1500",
            "--otel-bsp-max-queue-size=4",
            "--otel-bsp-max-export-batch-size=2",
        ])
        .unwrap();

        assert_eq!(defaults.otel_bsp_schedule_delay, None, "by exporter");
        assert_eq!(defaults.otel_bsp_export_timeout, Duration::from_secs(30));
        assert_eq!(defaults.otel_bsp_max_queue_size, 2048);
        assert_eq!(defaults.otel_bsp_max_export_batch_size, 512);
        assert_eq!(
            config.sdk.otel_bsp_schedule_delay,
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            config.sdk.otel_bsp_export_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(
            (
                config.sdk.otel_bsp_max_queue_size,
                config.sdk.otel_bsp_max_export_batch_size
            ),
            (4, 2)
        );
        for bad in [
            "--otel-bsp-schedule-delay=0",
            "--otel-bsp-export-timeout=soon",
            "--otel-bsp-max-queue-size=0",
            "--otel-bsp-max-export-batch-size=-1",
        ] {
            let err = parse(&[bad]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(line.contains("OTEL_BSP_"), "{line}");
        }
        let small_queue = parse(&["--otel-bsp-max-queue-size=100"]).unwrap();
        assert_eq!(small_queue.sdk.span_batch_size(), 100, "within the queue");
        assert_eq!(config.sdk.span_batch_size(), 2);
    }

    #[test]
    fn log_batch_settings_default_to_the_specification_and_are_bounded() {
        let defaults = Config::defaults().sdk;
        let config = parse(&[
            "--otel-blrp-schedule-delay=200",
            "--otel-blrp-export-timeout=1500",
            "--otel-blrp-max-queue-size=4",
            "--otel-blrp-max-export-batch-size=2",
        ])
        .unwrap();

        assert_eq!(defaults.otel_blrp_schedule_delay, None, "by exporter");
        assert_eq!(defaults.otel_blrp_export_timeout, Duration::from_secs(30));
        assert_eq!(
            (
                defaults.otel_blrp_max_queue_size,
                defaults.otel_blrp_max_export_batch_size
            ),
            (2048, 512)
        );
        assert_eq!(
            config.sdk.otel_blrp_schedule_delay,
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            config.sdk.otel_blrp_export_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(config.sdk.log_batch_size(), 2);
        let small_queue = parse(&["--otel-blrp-max-queue-size=100"]).unwrap();
        assert_eq!(small_queue.sdk.log_batch_size(), 100, "within the queue");
        for (bad, value) in [
            ("--otel-blrp-schedule-delay=0", "'0'"),
            ("--otel-blrp-export-timeout=soon", "'soon'"),
            ("--otel-blrp-max-queue-size=0", "'0'"),
            ("--otel-blrp-max-export-batch-size=2000000", "'2000000'"),
        ] {
            let err = parse(&[bad]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(
                line.contains("OTEL_BLRP_") && line.contains(value),
                "{line}"
            );
        }
    }

    #[test]
    fn the_metric_export_timeout_and_the_attribute_count_limit_parse_with_their_defaults() {
        let defaults = Config::defaults().sdk;
        let config = parse(&[
            "--otel-metric-export-timeout=250",
            "--otel-attribute-count-limit=0",
        ])
        .unwrap();

        assert_eq!(defaults.otel_metric_export_timeout, Duration::from_secs(30));
        assert_eq!(defaults.otel_attribute_count_limit, 128);
        assert_eq!(
            config.sdk.otel_metric_export_timeout,
            Duration::from_millis(250)
        );
        assert_eq!(config.sdk.otel_attribute_count_limit, 0);
        for (bad, variable) in [
            (
                "--otel-metric-export-timeout=0",
                "OTEL_METRIC_EXPORT_TIMEOUT",
            ),
            (
                "--otel-attribute-count-limit=70000",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ),
        ] {
            let err = parse(&[bad]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(line.contains(variable), "{line}");
        }
    }

    #[test]
    fn histogram_aggregation_size_scale_and_temporality_parse_as_named() {
        let defaults = Config::defaults().sdk;
        let config = parse(&[
            "--otel-exporter-otlp-metrics-default-histogram-aggregation=BASE2_EXPONENTIAL_BUCKET_HISTOGRAM",
            "--exponential-histogram-max-size=40",
            "--exponential-histogram-max-scale",
            "-3",
            "--otel-exporter-otlp-metrics-temporality-preference=LowMemory",
        ])
        .unwrap();

        assert_eq!(
            defaults.otel_exporter_otlp_metrics_default_histogram_aggregation,
            HistogramAggregation::ExplicitBucketHistogram
        );
        assert_eq!(
            (
                defaults.exponential_histogram_max_size,
                defaults.exponential_histogram_max_scale
            ),
            (160, 20),
            "the SDK's defaults"
        );
        assert_eq!(
            defaults.otel_exporter_otlp_metrics_temporality_preference,
            TemporalityPreference::Cumulative
        );
        assert_eq!(
            config
                .sdk
                .otel_exporter_otlp_metrics_default_histogram_aggregation,
            HistogramAggregation::Base2ExponentialBucketHistogram
        );
        assert_eq!(config.sdk.exponential_histogram_max_size, 40);
        assert_eq!(config.sdk.exponential_histogram_max_scale, -3);
        assert_eq!(
            config.sdk.otel_exporter_otlp_metrics_temporality_preference,
            TemporalityPreference::LowMemory
        );
        for (bad, variable) in [
            (
                "--otel-exporter-otlp-metrics-default-histogram-aggregation=summary",
                "explicit_bucket_histogram, base2_exponential_bucket_histogram",
            ),
            (
                "--exponential-histogram-max-size=1",
                "EXPONENTIAL_HISTOGRAM_MAX_SIZE",
            ),
            (
                "--exponential-histogram-max-scale=21",
                "EXPONENTIAL_HISTOGRAM_MAX_SCALE",
            ),
            (
                "--otel-exporter-otlp-metrics-temporality-preference=sometimes",
                "cumulative, delta, lowmemory",
            ),
        ] {
            let err = parse(&[bad]).unwrap_err();
            let line = one_line(&err, &Config::command()).unwrap();
            assert!(line.contains(variable), "{line}");
        }
    }
}
