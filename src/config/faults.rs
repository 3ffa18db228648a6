//! The faults of a pod, beside the chaos settings of requests: readiness and liveness that fail
//! on demand, a crash on demand, and CPU and memory kept busy.

use clap::{ArgAction, Args};

use super::parse::parse_bool;

/// The most cores that `CHAOS_CPU_STRESS` may keep busy.
pub const MAX_CPU_STRESS: f64 = 64.0;
/// The most bytes that `CHAOS_MEMORY_STRESS` may hold: 1 TiB. A container's memory limit is
/// usually far lower; going over it is a fault worth testing too (the kubelet restarts the pod).
pub const MAX_MEMORY_STRESS: u64 = 1 << 40;

/// The faults of a pod (flattened into [`super::Config`]); all but `CHAOS_ALLOW_PANIC` change at
/// runtime on /chaos and /api/chaos.
#[derive(Debug, Clone, Args)]
pub struct Faults {
    /// Whether /readyz answers 200; false makes it answer 503 while the app keeps serving everything else, so that the pod leaves its Service.
    #[arg(long, env = "CHAOS_READY", value_name = "CHAOS_READY", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub chaos_ready: bool,

    /// Whether /healthz answers 200; false makes it answer 503, so that a liveness probe fails and the kubelet restarts the container.
    #[arg(long, env = "CHAOS_HEALTHY", value_name = "CHAOS_HEALTHY", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub chaos_healthy: bool,

    /// Let `POST /panic` end the process with exit code 101, as a crash would; without it, /panic answers 403. Set at start only; the bare flag means true.
    #[arg(long, env = "CHAOS_ALLOW_PANIC", value_name = "CHAOS_ALLOW_PANIC", default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub chaos_allow_panic: bool,

    /// CPU cores kept busy, from 0 to 64, fractions allowed (0.5 keeps one core busy half of the time).
    #[arg(long, env = "CHAOS_CPU_STRESS", value_name = "CHAOS_CPU_STRESS", default_value = "0", value_parser = parse_cpu_stress)]
    pub chaos_cpu_stress: f64,

    /// Memory held and touched, in bytes, with an optional unit as in Kubernetes (`64Mi`, `1Gi`, `100M`), at most 1Ti.
    #[arg(long, env = "CHAOS_MEMORY_STRESS", value_name = "CHAOS_MEMORY_STRESS", default_value = "0", value_parser = parse_memory_stress)]
    pub chaos_memory_stress: u64,
}

/// Cores from 0 to [`MAX_CPU_STRESS`].
pub fn parse_cpu_stress(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(cores) if (0.0..=MAX_CPU_STRESS).contains(&cores) => Ok(cores),
        _ => Err("expected a number of cores from 0 to 64, such as 1 or 0.5".to_string()),
    }
}

/// Bytes, with an optional unit (`Ki`, `Mi`, `Gi`, `Ti` are powers of 1024; `K`, `M`, `G`, `T`
/// of 1000), at most [`MAX_MEMORY_STRESS`].
pub fn parse_memory_stress(value: &str) -> Result<u64, String> {
    match parse_size::parse_size(value.trim()) {
        Ok(bytes) if bytes <= MAX_MEMORY_STRESS => Ok(bytes),
        _ => Err(
            "expected a number of bytes up to 1Ti, with an optional unit, such as 67108864, 64Mi or 1Gi"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_takes_bytes_and_the_units_of_kubernetes() {
        assert_eq!(parse_memory_stress("0"), Ok(0));
        assert_eq!(parse_memory_stress("67108864"), Ok(64 << 20));
        assert_eq!(parse_memory_stress("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory_stress("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory_stress("100M"), Ok(100_000_000));
        assert_eq!(parse_memory_stress("1Ti"), Ok(1 << 40));
        for bad in ["-1", "2Ti", "lots", "", "1.5.2Mi"] {
            assert!(parse_memory_stress(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_takes_cores_and_fractions() {
        assert_eq!(parse_cpu_stress("0.5"), Ok(0.5));
        assert_eq!(parse_cpu_stress("64"), Ok(64.0));
        for bad in ["-0.1", "65", "NaN", "inf", "one"] {
            assert!(parse_cpu_stress(bad).is_err(), "{bad}");
        }
    }
}
