//! Records the source revision for the `prom_metrics_app_build_info` metric: the variable
//! `PROM_METRICS_APP_REVISION` if set (as in container builds), else the git commit, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PROM_METRICS_APP_REVISION");
    // Where git keeps HEAD and the refs (not `.git/` in a worktree); a path that does not exist
    // would make cargo rerun this script, and rebuild the crate, on every build.
    for name in ["HEAD", "refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("PROM_METRICS_APP_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROM_METRICS_APP_REVISION={revision}");
}

/// The trimmed output of `git ARGS`, if git exists, succeeds and prints something.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}
