//! Logs: a rotated file by default, stdout with `LOG_TO_STDOUT`; an access line per request.

use std::time::Duration;

use crate::helpers::{binary_command, eventually, spawn_binary};

#[tokio::test]
async fn log_to_stdout_writes_a_start_line_and_one_access_line_per_request() {
    let binary = spawn_binary(&[]);

    reqwest::get(binary.url("/")).await.unwrap();
    reqwest::get(binary.url("/nowhere")).await.unwrap();
    let stdout = eventually(Duration::from_secs(5), || async {
        let out = binary.stdout();
        out.contains("GET /nowhere 404").then_some(out)
    })
    .await
    .unwrap_or_else(|| binary.stdout());

    assert!(stdout.contains("prom-metrics-app started"), "{stdout}");
    let start = stdout
        .lines()
        .find(|l| l.contains("prom-metrics-app started"))
        .unwrap_or_default();
    assert!(
        start.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{start}"
    );
    // As configured, not as the code spells its types.
    assert!(start.contains("backend=prometheus"), "{start}");
    assert!(start.contains("exporter=none"), "{start}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("access: GET / 200"))
            .count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("access: GET /nowhere 404"))
            .count(),
        1,
        "{stdout}"
    );
}

#[tokio::test]
async fn without_log_to_stdout_lines_go_to_the_log_file() {
    let dir = std::env::temp_dir().join(format!("pma-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = binary_command()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("OTEL_EXPORTER", "none")
        .env("LOG_DIR", &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let line = stderr.next().unwrap().unwrap();
    let address = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();

    reqwest::get(format!("http://{address}/do_task?seconds=0"))
        .await
        .unwrap();
    let log = eventually(Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(dir.join("prom-metrics-app.log")).ok()?;
        text.contains("GET /do_task 200").then_some(text)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let log = log.expect("an access line in logs/prom-metrics-app.log");
    assert!(log.contains("prom-metrics-app started"), "{log}");
}

#[tokio::test]
async fn rust_log_controls_levels_per_target() {
    let binary = spawn_binary(&[("RUST_LOG", "warn,access=info")]);

    reqwest::get(binary.url("/")).await.unwrap();
    let stdout = eventually(Duration::from_secs(5), || async {
        let out = binary.stdout();
        out.contains("access: GET / 200").then_some(out)
    })
    .await;

    let stdout = stdout.expect("access lines are kept at info");
    assert!(
        !stdout.contains("prom-metrics-app started"),
        "info lines of other targets are filtered out: {stdout}"
    );
}

#[tokio::test]
async fn an_abandoned_request_still_gets_its_access_line() {
    let binary = spawn_binary(&[]);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let result = impatient.get(binary.url("/do_task?seconds=3")).send().await;
    let stdout = eventually(Duration::from_secs(5), || async {
        let out = binary.stdout();
        out.contains("access: GET /do_task 499").then_some(out)
    })
    .await;

    assert!(result.is_err());
    assert!(stdout.is_some(), "{}", binary.stdout());
}
