//! Graceful shutdown of the real binary on SIGTERM and SIGINT, and of the in-process server: the
//! drain, and the requests cut at the end of the grace period, recorded before the flush.

use std::time::{Duration, Instant};

use prom_metrics_app::{config::Config, http, metrics::Format};

use crate::{
    helpers::{parse_exposition, spawn_app_configured, spawn_binary, value},
    otlp,
};

async fn in_flight_task_completes_after(signal: i32) {
    let mut binary = spawn_binary(&[]);
    let url = binary.url("/do_task?seconds=2");
    let task = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(500)).await;

    binary.signal(signal);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::get(binary.url("/healthz")).await;
    let status = task.await.unwrap();
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(status.ok(), Some(200), "the in-flight task completes");
    assert!(refused.is_err(), "no new connections once shutdown began");
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_task_finish_then_exits_0() {
    in_flight_task_completes_after(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_lets_an_in_flight_task_finish_then_exits_0() {
    in_flight_task_completes_after(libc::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grace_period_bounds_the_drain() {
    let mut binary = spawn_binary(&[("SHUTDOWN_GRACE_PERIOD", "500ms")]);
    let url = binary.url("/do_task?seconds=30");
    let task = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = std::time::Instant::now();
    binary.signal(libc::SIGTERM);
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(code, Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        task.await.unwrap().is_err(),
        "the unfinished task is cut off"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_during_the_drain_delay_before_the_listener_closes() {
    let mut binary = spawn_binary(&[("SHUTDOWN_DRAIN_DELAY", "2s")]);
    let client = reqwest::Client::builder()
        // A new connection for each request: what a load balancer's probe does.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(binary.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    binary.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = client
        .get(binary.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    let live = client
        .get(binary.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    let home = client.get(binary.url("/")).send().await.unwrap().status();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = client.get(binary.url("/readyz")).send().await;
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(10));
        (code, binary.stdout())
    })
    .await
    .unwrap();

    assert_eq!(ready, 503, "not ready, seen over a new connection");
    assert_eq!(live, 200, "still alive");
    assert_eq!(home, 200, "still serving during the drain");
    assert!(after.is_err(), "the listener is closed after the delay");
    assert_eq!(code, Some(0));
    // Each step of the shutdown is logged, in order.
    let steps = [
        "received SIGTERM",
        "/readyz answers 503",
        "listener closed",
        "requests drained",
        "telemetry flushed",
        "exiting",
    ];
    let mut rest = stdout.as_str();
    for step in steps {
        let at = rest
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order in {stdout}"));
        rest = &rest[at..];
    }
}

/// A request sent in the background; its result is the status, or the error of a cut connection.
fn in_background(url: String) -> tokio::task::JoinHandle<Result<u16, reqwest::Error>> {
    tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_at_the_end_of_the_grace_is_exported_as_a_shutdown_error_before_the_flush() {
    let (address, received) = otlp::start_grpc(None).await;
    let endpoint = format!("http://{address}");
    let mut binary = spawn_binary(&[
        ("SHUTDOWN_GRACE_PERIOD", "1s"),
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
    ]);
    let task = in_background(binary.url("/do_task?seconds=10"));
    // Nothing observable marks a request as started; half a second is ample to reach the handler.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    binary.signal(libc::SIGTERM);
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(15));
        (code, binary.stdout())
    })
    .await
    .unwrap();
    let took = start.elapsed();
    let answer = task.await.unwrap();

    assert_eq!(code, Some(0), "{stdout}");
    // The grace period, the flush bound (5 s) and a second.
    assert!(took < Duration::from_secs(7), "exited after {took:?}");
    assert!(answer.is_err(), "the client saw an answer: {answer:?}");
    let spans = received.spans();
    let cut = spans
        .iter()
        .find(|s| s.name == "GET /do_task")
        .unwrap_or_else(|| panic!("no span of the cut request in {spans:#?}"));
    assert_eq!(cut.status_code, 2, "STATUS_CODE_ERROR");
    assert_eq!(
        cut.attributes.get("error.type").map(String::as_str),
        Some("shutdown")
    );
    assert_eq!(
        cut.attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("int:503")
    );
    // Counted once, in the metrics of the last export, the shutdown flush.
    assert_eq!(received.sum("http_requests"), Some(1));
    assert_eq!(received.sum("http_error_5xx"), Some(1));
    let (_, points) = received
        .histogram("http.server.request.duration")
        .expect("http.server.request.duration");
    let shutdown: Vec<_> = points
        .iter()
        .filter(|(attributes, _)| {
            attributes.get("error.type").map(String::as_str) == Some("shutdown")
        })
        .collect();
    assert_eq!(shutdown.len(), 1, "{points:?}");
    assert_eq!(shutdown[0].1, 1);
    // Recorded, then flushed; nothing but the last line after the flush.
    let (before, after) = stdout
        .split_once("telemetry flushed")
        .unwrap_or_else(|| panic!("no flush in {stdout}"));
    let access = before
        .find("GET /do_task 503")
        .unwrap_or_else(|| panic!("no access line before the flush in {stdout}"));
    let cut_line = before
        .find("cut the requests still in flight")
        .unwrap_or_else(|| panic!("no cut line before the flush in {stdout}"));
    assert!(access < cut_line, "{stdout}");
    let later: Vec<&str> = after.lines().skip(1).collect();
    assert!(
        later.len() == 1 && later[0].contains("exiting"),
        "after the flush: {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_at_the_end_of_the_grace_is_counted_once_as_a_5xx_shutdown() {
    let config = Config::try_parse_args([
        "prom-metrics-app",
        "--shutdown-grace-period",
        "500ms",
        "--shutdown-drain-delay",
        "0",
    ])
    .unwrap();
    let mut app = spawn_app_configured(config, http::counted_routes()).await;
    let task = in_background(app.url("/do_task?seconds=10"));
    // Nothing observable marks a request as started; a third of a second is ample.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.shut_down().await;
    let answer = task.await.unwrap();
    let text = String::from_utf8(app.state.backend.encode(Format::Text).unwrap().unwrap()).unwrap();
    let metrics = parse_exposition(&text);

    assert!(answer.is_err(), "the client saw an answer: {answer:?}");
    assert_eq!(value(&metrics, "http_requests_total"), 1.0, "{text}");
    assert_eq!(value(&metrics, "http_error_5xx_total"), 1.0, "{text}");
    assert_eq!(
        value(&metrics, "http_error_4xx_total"),
        0.0,
        "not a client that went away"
    );
    assert_eq!(
        value(
            &metrics,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/do_task\",http_response_status_code=\"503\",url_scheme=\"http\",error_type=\"shutdown\"}"
        ),
        1.0,
        "{text}"
    );
}

/// The shutdown steps that a person sees on stderr, in order.
const STEPS_ON_STDERR: [&str; 6] = [
    "received SIGINT",
    "shutting down now",
    "listener closed",
    "requests drained",
    "telemetry flushed",
    "exiting",
];

/// Whether `text` holds `steps` in this order.
fn in_order(text: &str, steps: &[&str]) -> bool {
    let mut rest = text;
    steps.iter().all(|step| match rest.find(step) {
        Some(at) => {
            rest = &rest[at..];
            true
        }
        None => false,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_skips_the_drain_delay_and_tells_each_step_on_stderr() {
    let logs = std::env::temp_dir().join(format!("pma-ctrl-c-{}", std::process::id()));
    let mut binary = spawn_binary(&[
        ("SHUTDOWN_DRAIN_DELAY", "5s"),
        ("LOG_TO_STDOUT", "false"),
        ("LOG_DIR", logs.to_str().unwrap()),
    ]);
    assert_eq!(reqwest::get(binary.url("/")).await.unwrap().status(), 200);

    let start = std::time::Instant::now();
    binary.signal(libc::SIGINT);
    let code = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(10));
        (code, binary.stderr())
    })
    .await
    .unwrap();
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&logs);

    let (code, stderr) = code;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(in_order(&stderr, &STEPS_ON_STDERR), "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("prom-metrics-app")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_without_a_terminal_keeps_the_drain_delay_and_stays_quiet_on_stderr() {
    let mut binary = spawn_binary(&[("SHUTDOWN_DRAIN_DELAY", "1s")]);

    let start = std::time::Instant::now();
    binary.signal(libc::SIGTERM);
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(10));
        (code, binary.stderr())
    })
    .await
    .unwrap();

    assert_eq!(code, Some(0));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "the drain delay was kept"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

/// Runs the binary with a terminal as its stdin, stdout and stderr (`script` from util-linux),
/// sends one request, then SIGTERM; returns everything the terminal showed.
fn on_a_terminal(envs: &[(&str, &str)]) -> String {
    let port = crate::helpers::free_port();
    let logs = std::env::temp_dir().join(format!("pma-terminal-{}-{port}", std::process::id()));
    let mut command = std::process::Command::new("script");
    command
        .args(["--quiet", "--flush", "--return", "--command"])
        .arg(format!("exec {}", env!("CARGO_BIN_EXE_prom-metrics-app")))
        .arg("/dev/null")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("OTEL_EXPORTER", "none")
        .env("LOG_DIR", &logs)
        .env("SHUTDOWN_DRAIN_DELAY", "5s")
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = command.spawn().expect("script is installed (util-linux)");
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while reqwest::blocking::get(&url).map(|r| r.status()).ok() != Some(reqwest::StatusCode::OK) {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The app is the child of `script` (its shell execs it); SIGTERM goes to the app, as a
    // supervisor would send it.
    let app = std::process::Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&app.stdout).trim().to_string();
    let start = std::time::Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&logs);
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        elapsed < Duration::from_secs(2),
        "took {elapsed:?}: {shown}"
    );
    shown
}

#[test]
fn on_a_terminal_the_access_line_is_shown_and_any_stop_is_immediate_and_told() {
    let shown = on_a_terminal(&[]);

    assert!(shown.contains("access: GET / 200"), "{shown}");
    assert!(
        in_order(
            &shown,
            &["received SIGTERM", "shutting down now", "exiting"]
        ),
        "{shown}"
    );
}
