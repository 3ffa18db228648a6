//! A small client of the Chrome DevTools protocol: one headless Chromium, one page, driven over
//! the browser's websocket with flattened sessions. Enough to set a viewport, load a page,
//! evaluate JavaScript, take a screenshot and collect what the page logs.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one command may take before the test gives up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// A viewport: its size in CSS pixels, and whether Chromium emulates a phone (touch, the
/// viewport meta tag honoured, the page allowed to zoom out to its content).
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub mobile: bool,
}

/// A console error, an uncaught exception, a CSP violation or a failed load, as Chromium
/// reported it.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Where it came from: `console`, `exception`, or the `Log` domain's source (`network`,
    /// `security`, `javascript`, ...).
    pub source: String,
    pub text: String,
    /// The resource it is about, when there is one.
    pub url: String,
}

/// A headless Chromium with one page open.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    problems: Vec<Problem>,
    loaded: bool,
}

impl Browser {
    /// Starts Chromium with `args` added to the usual headless ones and opens a blank page.
    pub fn start(args: &[&str]) -> Self {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("pma-cdp-{}-{run}", std::process::id()));
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium is installed by the test command (Debian package chromium)");
        let endpoint = devtools_endpoint(&mut child);
        let socket = connect(&endpoint);
        let mut browser = Self {
            child,
            profile,
            socket,
            session: String::new(),
            next_id: 0,
            problems: Vec::new(),
            loaded: false,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sets the viewport, as a phone when `viewport.mobile`.
    pub fn set_viewport(&mut self, viewport: Viewport) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": 1,
                "mobile": viewport.mobile,
            }),
        );
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": viewport.mobile}),
        );
    }

    /// Loads `url` and waits for its `load` event; what it logs from now on is collected.
    pub fn navigate(&mut self, url: &str) {
        self.problems.clear();
        self.loaded = false;
        let answer = self.call("Page.navigate", json!({"url": url}));
        assert!(answer.get("errorText").is_none(), "loading {url}: {answer}");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while !self.loaded {
            assert!(Instant::now() < deadline, "{url} did not finish loading");
            self.read_one();
        }
    }

    /// The value of the JavaScript `expression`, which must be JSON-serialisable; an exception
    /// fails the test.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            answer.get("exceptionDetails").is_none(),
            "evaluating {expression}: {answer}"
        );
        answer["result"]["value"].clone()
    }

    /// Waits up to `limit` for `expression` to be true, checking every 100 ms.
    pub fn wait_for(&mut self, expression: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.evaluate(expression) == json!(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the whole page, as wide as the viewport and as tall as the content.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let size = self.evaluate(
            "({width: document.documentElement.clientWidth, \
              height: document.documentElement.scrollHeight})",
        );
        let answer = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(answer["data"].as_str().expect("screenshot data"))
            .expect("base64 from Chromium")
    }

    /// What the page logged since it was loaded; waits a moment for late reports first.
    pub fn problems(&mut self) -> Vec<Problem> {
        self.evaluate("new Promise(resolve => setTimeout(resolve, 50))");
        self.problems.clone()
    }

    /// A command to the browser itself.
    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A command to the page.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(session))
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("sending to Chromium");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer");
            if let Some(answer) = self.read_one()
                && answer["id"] == json!(id)
            {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Reads one message: returns an answer, records an event.
    fn read_one(&mut self) -> Option<Value> {
        let message = match self.socket.read() {
            Ok(Message::Text(text)) => text,
            Ok(_) => return None,
            Err(tungstenite::Error::Io(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(err) => panic!("reading from Chromium: {err}"),
        };
        let value: Value = serde_json::from_str(&message).expect("JSON from Chromium");
        if value.get("id").is_some() {
            return Some(value);
        }
        self.record(&value);
        None
    }

    fn record(&mut self, event: &Value) {
        let params = &event["params"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match event["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => self.loaded = true,
            "Runtime.consoleAPICalled"
                if params["type"] == "error" || params["type"] == "assert" =>
            {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| {
                        arg.get("value")
                            .map(Value::to_string)
                            .unwrap_or_else(|| text(&arg["description"]))
                    })
                    .collect();
                self.problems.push(Problem {
                    source: "console".into(),
                    text: args.join(" "),
                    url: String::new(),
                });
            }
            "Runtime.exceptionThrown" => self.problems.push(Problem {
                source: "exception".into(),
                text: params["exceptionDetails"].to_string(),
                url: String::new(),
            }),
            "Log.entryAdded"
                if params["entry"]["level"] == "error" || params["entry"]["level"] == "warning" =>
            {
                let entry = &params["entry"];
                self.problems.push(Problem {
                    source: text(&entry["source"]),
                    text: text(&entry["text"]),
                    url: text(&entry["url"]),
                });
            }
            _ => {}
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Reads Chromium's stderr up to the `DevTools listening on ws://...` line, then keeps draining
/// it on a thread of its own so that Chromium never blocks on a full pipe.
fn devtools_endpoint(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(url.trim().to_string()));
                }
            } else if tx.is_some() {
                seen.push_str(&line);
                seen.push('\n');
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(seen));
        }
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(Ok(url)) => url,
        Ok(Err(log)) => panic!("chromium exited before listening: {log}"),
        Err(_) => panic!("chromium did not print its DevTools address"),
    }
}

/// Opens the websocket at `endpoint` (`ws://127.0.0.1:PORT/devtools/browser/ID`).
fn connect(endpoint: &str) -> WebSocket<TcpStream> {
    let address = endpoint
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .expect("a ws:// address");
    let stream = TcpStream::connect(address).expect("connecting to Chromium");
    // Reads wake up now and then, so that waits can give up on time.
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let (socket, _) = tungstenite::client(endpoint, stream).expect("the websocket handshake");
    socket
}
