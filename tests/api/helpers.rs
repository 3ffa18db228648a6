//! Shared helpers: an in-process app on a free port, the real binary as a child process, and
//! readers of the exposition format.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use prom_metrics_app::{
    config::Config,
    http::{self, AppState, Route},
    metrics::{MetricsBackend, RefusedRequests, prometheus::PrometheusBackend},
    server::Server,
};

/// An app served in-process on `127.0.0.1:0` with a fresh Prometheus backend.
pub struct TestApp {
    pub address: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    /// Starts the shutdown when used or dropped.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<prom_metrics_app::server::Stop>>>,
}

/// Starts the standard app.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(http::counted_routes()).await
}

/// Starts the app with `routes` as its counted routes.
pub async fn spawn_app_with(routes: Vec<Route>) -> TestApp {
    spawn_app_configured(Config::defaults(), routes).await
}

/// Starts the app with `config` and `routes` as its counted routes; `/metrics` also shows the
/// requests refused at the connection limit.
pub async fn spawn_app_configured(config: Config, routes: Vec<Route>) -> TestApp {
    let refused = Arc::new(RefusedRequests::default());
    let backend = Arc::new(PrometheusBackend::new().with_refused(refused.clone()));
    serve(backend, refused, config, routes).await
}

/// Starts the app recording into `backend`, with `config` and `routes` as its counted routes.
pub async fn spawn_app_recording_into(
    backend: Arc<dyn MetricsBackend>,
    config: Config,
    routes: Vec<Route>,
) -> TestApp {
    serve(backend, Arc::default(), config, routes).await
}

/// Serves the app on a free loopback port, counting refusals at the connection limit in `refused`.
async fn serve(
    backend: Arc<dyn MetricsBackend>,
    refused: Arc<RefusedRequests>,
    config: Config,
    routes: Vec<Route>,
) -> TestApp {
    let state = AppState::new(backend, &config);
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        state.clone(),
        &config,
        refused,
    )
    .await
    .expect("binding port 0 on loopback");
    let address = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.run_with(routes, async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        state,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Starts the shutdown, as SIGTERM does, and waits until the server has returned: drained, or
    /// cut its requests at the end of the grace period.
    pub async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// The 0.0.4 text exposition of `/metrics`, parsed into series -> value.
    pub async fn metrics(&self) -> HashMap<String, f64> {
        parse_exposition(&self.get("/metrics").await.text().await.unwrap())
    }
}

/// Series (name with labels, as written) to value, from a text exposition.
pub fn parse_exposition(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let sample = l.split(" # ").next()?;
            let (series, value) = sample.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series`; a series that is missing fails the test, rather than reading as 0.
#[track_caller]
pub fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    match metrics.get(series) {
        Some(value) => *value,
        None => {
            let mut known: Vec<&String> = metrics.keys().collect();
            known.sort();
            panic!("no series {series} in the exposition; it has: {known:#?}")
        }
    }
}

/// The real binary, as a child process.
pub struct Binary {
    pub child: Child,
    pub address: SocketAddr,
    pub stdout: Arc<std::sync::Mutex<String>>,
    pub stderr: Arc<std::sync::Mutex<String>>,
    /// The threads that read stdout and stderr: joined once the process has ended, so that what
    /// it wrote last is in `stdout` and `stderr`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The command for the binary, with a clean environment apart from `PATH`.
pub fn binary_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prom-metrics-app"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// Starts the binary on a free loopback port with `envs`, logging to stdout, and waits until it
/// listens.
pub fn spawn_binary(envs: &[(&str, &str)]) -> Binary {
    spawn_binary_with_args(envs, &[])
}

/// Like [`spawn_binary`], with command-line `args`.
pub fn spawn_binary_with_args(envs: &[(&str, &str)], args: &[&str]) -> Binary {
    let mut command = binary_command();
    command.args(args);
    command
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_TO_STDOUT", "true")
        .env("OTEL_EXPORTER", "none")
        // Tests that stop the binary do not wait for load balancers; the drain has tests of its own.
        .env("SHUTDOWN_DRAIN_DELAY", "0")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let captured = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = captured.clone();
    let stdout_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the binary prints its address")
            .expect("stderr is text");
        if let Some(address) = line.split("listening on ").nth(1) {
            break address.trim().parse().expect("a socket address");
        }
    };
    let errors = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = errors.clone();
    let stderr_reader = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    Binary {
        child,
        address,
        stdout: captured,
        stderr: errors,
        readers: vec![stdout_reader, stderr_reader],
    }
}

impl Binary {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child.
        let result = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "kill failed");
    }

    /// Waits for the exit code, at most `limit`; then for the last of its output.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The pipes close with the process: the readers end once they have read it all.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// What the process wrote to stderr so far, after its `listening on` line.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(value) = check().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// A handler that always panics, to test the 500 path.
pub async fn panicking_handler() -> &'static str {
    panic!("deliberate failure")
}

/// Runs `program` with `args`, writes `input` to its stdin, and returns its output.
pub fn run_with_stdin(program: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed by the test command: {e}"));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The body of `GET url`, or `None` on any failure.
pub async fn get_text(client: &reqwest::Client, url: &str) -> Option<String> {
    client.get(url).send().await.ok()?.text().await.ok()
}
