//! The app's own state as metrics, one table for both backends: the chaos settings in force, as
//! gauges, and the running totals of lost telemetry, as counters. Each row names the family as the
//! Prometheus backend exposes it and the instrument as the OpenTelemetry backend exports it (whose
//! unit a Prometheus receiver turns into the same suffix), with one description and one way to read
//! the value.

use crate::{chaos::ChaosSettings, telemetry::LossTotals};

/// A gauge of the chaos settings.
pub struct ChaosGauge {
    /// The Prometheus family.
    pub prometheus: &'static str,
    /// The OpenTelemetry instrument.
    pub otel: &'static str,
    /// The OpenTelemetry unit, in UCUM; empty for none.
    pub unit: &'static str,
    pub description: &'static str,
    pub read: fn(&ChaosSettings) -> f64,
}

/// A running total of lost telemetry.
pub struct LossCounter {
    /// The Prometheus family, without the `_total` that the encoder appends.
    pub prometheus: &'static str,
    /// The OpenTelemetry instrument.
    pub otel: &'static str,
    /// The OpenTelemetry unit, in UCUM.
    pub unit: &'static str,
    pub description: &'static str,
    pub read: fn(&LossTotals) -> u64,
}

fn one_if(flag: bool) -> f64 {
    f64::from(u8::from(flag))
}

/// The chaos settings, one gauge each.
pub const CHAOS_GAUGES: [ChaosGauge; 10] = [
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_error_ratio",
        otel: "prom_metrics_app.chaos.error_ratio",
        unit: "1",
        description: "Share of application requests answered with an injected failure (chaos settings)",
        read: |s| s.error_rate,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_error_status_code",
        otel: "prom_metrics_app.chaos.error_status_code",
        unit: "",
        description: "Status of injected failures (chaos settings)",
        read: |s| f64::from(s.error_status),
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_latency_seconds",
        otel: "prom_metrics_app.chaos.latency",
        unit: "s",
        description: "Latency added to delayed application requests (chaos settings)",
        read: |s| s.latency_seconds,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_jitter_seconds",
        otel: "prom_metrics_app.chaos.jitter",
        unit: "s",
        description: "Largest random latency added on top of the fixed one (chaos settings)",
        read: |s| s.jitter_seconds,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_latency_ratio",
        otel: "prom_metrics_app.chaos.latency_ratio",
        unit: "1",
        description: "Share of application requests that are delayed (chaos settings)",
        read: |s| s.latency_rate,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_ready",
        otel: "prom_metrics_app.chaos.ready",
        unit: "",
        description: "1 while /readyz answers as usual, 0 while the chaos settings make it answer 503",
        read: |s| one_if(s.ready),
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_healthy",
        otel: "prom_metrics_app.chaos.healthy",
        unit: "",
        description: "1 while /healthz answers as usual, 0 while the chaos settings make it answer 503",
        read: |s| one_if(s.healthy),
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_cpu_stress_cores",
        otel: "prom_metrics_app.chaos.cpu_stress_cores",
        unit: "{cpu}",
        description: "CPU cores kept busy by the chaos settings",
        read: |s| s.cpu_stress_cores,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_memory_stress_bytes",
        otel: "prom_metrics_app.chaos.memory_stress",
        unit: "By",
        description: "Memory held and touched by the chaos settings",
        read: |s| s.memory_stress_bytes as f64,
    },
    ChaosGauge {
        prometheus: "prom_metrics_app_chaos_panic_allowed",
        otel: "prom_metrics_app.chaos.panic_allowed",
        unit: "",
        description: "1 when POST /panic ends the process (CHAOS_ALLOW_PANIC), 0 when it is refused",
        read: |s| one_if(s.panic_allowed),
    },
];

/// The telemetry lost on the way out, one counter each.
pub const LOSS_COUNTERS: [LossCounter; 6] = [
    LossCounter {
        prometheus: "prom_metrics_app_telemetry_dropped_spans",
        otel: "prom_metrics_app.telemetry.dropped_spans",
        unit: "{span}",
        description: "Spans dropped because the export queue was full",
        read: |t| t.dropped_spans,
    },
    LossCounter {
        prometheus: "prom_metrics_app_telemetry_failed_spans",
        otel: "prom_metrics_app.telemetry.failed_spans",
        unit: "{span}",
        description: "Spans in exports that failed",
        read: |t| t.failed_spans,
    },
    LossCounter {
        prometheus: "prom_metrics_app_telemetry_failed_metric_exports",
        otel: "prom_metrics_app.telemetry.failed_metric_exports",
        unit: "{export}",
        description: "Metric exports that failed",
        read: |t| t.failed_metric_exports,
    },
    LossCounter {
        prometheus: "prom_metrics_app_telemetry_dropped_log_records",
        otel: "prom_metrics_app.telemetry.dropped_log_records",
        unit: "{log_record}",
        description: "Log records dropped because the export queue was full",
        read: |t| t.dropped_log_records,
    },
    LossCounter {
        prometheus: "prom_metrics_app_telemetry_failed_log_records",
        otel: "prom_metrics_app.telemetry.failed_log_records",
        unit: "{log_record}",
        description: "Log records in exports that failed",
        read: |t| t.failed_log_records,
    },
    LossCounter {
        prometheus: "prom_metrics_app_log_lines_dropped",
        otel: "prom_metrics_app.log_lines.dropped",
        unit: "{line}",
        description: "Log lines dropped because the reader of stdout or the log file was too slow",
        read: |t| t.dropped_log_lines,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// What an OpenTelemetry-to-Prometheus translation makes of an instrument's name and unit
    /// (dots to underscores, `s` to `_seconds`, `By` to `_bytes`; annotations and `1` add no
    /// suffix here), so that both backends' families line up.
    fn translated(otel: &str, unit: &str) -> String {
        let name = otel.replace('.', "_");
        let suffix = match unit {
            "s" => "_seconds",
            "By" => "_bytes",
            _ => "",
        };
        if name.ends_with(suffix) {
            name
        } else {
            name + suffix
        }
    }

    #[test]
    fn both_backends_name_each_gauge_and_counter_alike() {
        let gauges: Vec<(String, &str)> = CHAOS_GAUGES
            .iter()
            .map(|g| (translated(g.otel, g.unit), g.prometheus))
            .collect();
        let counters: Vec<(String, &str)> = LOSS_COUNTERS
            .iter()
            .map(|c| (translated(c.otel, c.unit), c.prometheus))
            .collect();

        for (translated, prometheus) in gauges.iter().chain(&counters) {
            assert_eq!(translated, prometheus);
        }
    }

    #[test]
    fn each_gauge_reads_its_own_setting() {
        let settings = ChaosSettings {
            error_rate: 0.25,
            error_status: 503,
            latency_seconds: 1.5,
            jitter_seconds: 0.5,
            latency_rate: 0.75,
            ready: false,
            healthy: true,
            cpu_stress_cores: 2.0,
            memory_stress_bytes: 1024,
            panic_allowed: true,
        };

        let values: Vec<f64> = CHAOS_GAUGES.iter().map(|g| (g.read)(&settings)).collect();

        assert_eq!(
            values,
            [0.25, 503.0, 1.5, 0.5, 0.75, 0.0, 1.0, 2.0, 1024.0, 1.0]
        );
    }
}
