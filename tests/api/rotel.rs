//! A collector written elsewhere (rotel, from PyPI) accepts the app's OTLP over gRPC and HTTP.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::helpers::{eventually, free_port, spawn_binary};

struct Rotel {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rotel_agent() -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "rotel is installed by the test command (pip install rotel)"
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn start_rotel(grpc_port: u16, http_port: u16) -> Rotel {
    let log = std::env::temp_dir().join(format!("pma-rotel-{grpc_port}.log"));
    let mut child = Command::new(rotel_agent())
        .args([
            "start",
            "--exporter",
            "blackhole",
            "--debug-log",
            "traces",
            "--debug-log",
            "metrics",
        ])
        .args(["--debug-log-verbosity", "detailed"])
        .arg(format!("--otlp-grpc-endpoint=127.0.0.1:{grpc_port}"))
        .arg(format!("--otlp-http-endpoint=127.0.0.1:{http_port}"))
        .arg(format!("--log-file={}", log.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rotel-agent starts");
    let output = Arc::new(Mutex::new(String::new()));
    let sink = output.clone();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    Rotel { child, output }
}

async fn send_through(protocol: &str, port: u16, service: &str) {
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut binary = spawn_binary(&[
        ("OTEL_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("METRICS_BACKEND", "otel"),
        ("OTEL_SERVICE_NAME", service),
    ]);
    reqwest::get(binary.url("/do_task?seconds=0"))
        .await
        .unwrap();
    binary.signal(libc::SIGTERM);
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotel_accepts_spans_and_metrics_over_grpc_and_http() {
    let (grpc_port, http_port) = (free_port(), free_port());
    let rotel = start_rotel(grpc_port, http_port);
    let listening = eventually(Duration::from_secs(15), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", http_port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(listening.is_some(), "rotel did not listen");

    send_through("grpc", grpc_port, "via-grpc").await;
    send_through("http/protobuf", http_port, "via-http").await;
    let seen = eventually(Duration::from_secs(15), || async {
        let out = rotel.output.lock().unwrap().clone();
        (out.contains("Str(via-grpc)")
            && out.contains("Str(via-http)")
            && out.matches("Name: http_requests").count() >= 2)
            .then_some(out)
    })
    .await;

    let out = seen.unwrap_or_else(|| rotel.output.lock().unwrap().clone());
    assert!(out.contains("service.name: Str(via-grpc)"), "{out}");
    assert!(out.contains("service.name: Str(via-http)"), "{out}");
    assert!(
        out.matches("GET /do_task").count() >= 2,
        "a server span per protocol: {out}"
    );
    assert!(out.matches("do_task work").count() >= 2, "{out}");
    assert!(
        out.matches("Name: http_requests").count() >= 2,
        "metrics per protocol: {out}"
    );
    assert!(out.contains("Name: http.server.request.duration"), "{out}");
}
