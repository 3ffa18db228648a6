//! Logs: a rotated file by default, stdout with `LOG_TO_STDOUT`; an access line per request.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::helpers::{binary_command, eventually, get_text, parse_exposition, spawn_binary, value};

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

#[tokio::test(flavor = "multi_thread")]
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

/// The binary logging to a stdout pipe that nobody reads, its address and what it wrote on stderr.
struct Unread {
    child: std::process::Child,
    address: std::net::SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Kept open and never read, so that the pipe fills up.
    _stdout: std::process::ChildStdout,
}

impl Drop for Unread {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_with_unread_stdout() -> Unread {
    let mut child = binary_command()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_TO_STDOUT", "true")
        .env("OTEL_EXPORTER", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(address) = line.split("listening on ").nth(1) {
            break address.trim().parse().unwrap();
        }
    };
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    Unread {
        child,
        address,
        stderr,
        _stdout: stdout,
    }
}

/// How long `GET /healthz` takes to answer 200, or `None` if it fails or takes over a second.
async fn healthz_latency(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
) -> Option<Duration> {
    let start = Instant::now();
    let response = client
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?;
    (response.status() == 200).then(|| start.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdout_nobody_reads_costs_log_lines_not_requests_or_probes() {
    const REQUESTS: usize = 20_000;
    const CONCURRENCY: usize = 32;
    let app = spawn_with_unread_stdout();
    let address = app.address;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let probe_client = reqwest::Client::new();
    let bursting = Arc::new(std::sync::atomic::AtomicBool::new(true));

    let prober = tokio::spawn({
        let bursting = bursting.clone();
        async move {
            let mut latencies = Vec::new();
            while bursting.load(std::sync::atomic::Ordering::Relaxed) {
                latencies.push(healthz_latency(&probe_client, address).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            latencies
        }
    });
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..REQUESTS / CONCURRENCY {
                    let response = client.get(format!("http://{address}/")).send().await;
                    match response.map(|r| r.status().as_u16()) {
                        Ok(200) => {}
                        // One failure is enough: a stuck server would otherwise take minutes.
                        other => return Err(format!("{other:?}")),
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for worker in workers {
        if let Err(err) = worker.await.unwrap() {
            failures.push(err);
        }
    }
    bursting.store(false, std::sync::atomic::Ordering::Relaxed);
    let during = prober.await.unwrap();
    let after = eventually(Duration::from_secs(2), || async {
        healthz_latency(&reqwest::Client::new(), address)
            .await
            .filter(|&l| l <= Duration::from_millis(100))
    })
    .await;
    let dropped = eventually(Duration::from_secs(5), || async {
        let text = get_text(&client, &format!("http://{address}/metrics")).await?;
        let dropped = value(
            &parse_exposition(&text),
            "prom_metrics_app_log_lines_dropped_total",
        );
        (dropped > 0.0).then_some(dropped)
    })
    .await;
    let warned = eventually(Duration::from_secs(5), || async {
        let stderr = app.stderr.lock().unwrap().clone();
        stderr.contains("log writer is behind").then_some(stderr)
    })
    .await;

    assert!(
        failures.is_empty(),
        "{} workers failed: {failures:?}",
        failures.len()
    );
    assert!(!during.is_empty(), "/healthz was probed during the burst");
    assert!(
        during.iter().all(Option::is_some),
        "probes failed or took over a second during the burst: {during:?}"
    );
    // A shared, loaded machine stalls any process now and then: nine probes in ten, not all, are
    // held to 100 ms. A server stuck on its log would fail them all.
    let fast = during
        .iter()
        .flatten()
        .filter(|&&l| l <= Duration::from_millis(100))
        .count();
    assert!(
        fast * 10 >= during.len() * 9,
        "{fast} of {} probes within 100 ms during the burst: {during:?}",
        during.len()
    );
    assert!(after.is_some(), "/healthz after the burst took over 100 ms");
    assert!(
        dropped.is_some(),
        "no dropped log lines counted on /metrics"
    );
    assert!(
        warned.is_some(),
        "no warning on stderr: {:?}",
        app.stderr.lock().unwrap()
    );
}
