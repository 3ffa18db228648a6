//! Records the source revision for the `prom_metrics_app_build_info` metric: the variable
//! `PROM_METRICS_APP_REVISION` if set (as in container builds), else the git commit, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PROM_METRICS_APP_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let revision = std::env::var("PROM_METRICS_APP_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROM_METRICS_APP_REVISION={revision}");
}
