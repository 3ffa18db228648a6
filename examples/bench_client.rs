//! Benchmark helper: a minimal HTTP/1.1 client (standard library only) for the measurements that
//! a load generator cannot make: a fixed number of requests, the latency of each one, and the
//! time from starting a server to its first 200.
//!
//! ```text
//! bench_client requests ADDR PATH N          N sequential GETs on one connection
//! bench_client latency  ADDR PATH N [ACCEPT] the same (with that `Accept` header), then prints
//!                                            "p50_us p99_us max_us"
//! bench_client startup  ADDR PATH RUNS CMD…  starts CMD RUNS times; prints "median_ms min_ms max_ms"
//! ```
//!
//! Every request must be answered 200, or the command fails. Bodies need a `Content-Length`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};

/// How long `startup` waits for the first 200 before it gives up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench_client: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let [command, address, path, count, rest @ ..] = args else {
        bail!("usage: bench_client requests|latency|startup ADDR PATH N [ACCEPT | CMD ARGS...]");
    };
    let address: SocketAddr = address.parse().context("ADDR must be IP:PORT")?;
    let count: usize = count.parse().context("N must be a whole number")?;
    match command.as_str() {
        "requests" => {
            let mut client = Client::connect(address)?;
            for _ in 0..count {
                client.get(path, None)?;
            }
        }
        "latency" => {
            let mut client = Client::connect(address)?;
            let accept = rest.first().map(String::as_str);
            let mut micros = Vec::with_capacity(count);
            for _ in 0..count {
                let start = Instant::now();
                client.get(path, accept)?;
                micros.push(start.elapsed().as_secs_f64() * 1e6);
            }
            let (p50, p99, max) = (
                percentile(&mut micros, 0.50),
                percentile(&mut micros, 0.99),
                percentile(&mut micros, 1.0),
            );
            println!("{p50:.0} {p99:.0} {max:.0}");
        }
        "startup" => {
            ensure!(!rest.is_empty(), "startup needs a command to start");
            let mut millis = Vec::with_capacity(count);
            for _ in 0..count {
                millis.push(startup(address, path, rest)?.as_secs_f64() * 1e3);
            }
            let (median, min, max) = (
                percentile(&mut millis, 0.50),
                percentile(&mut millis, 0.0),
                percentile(&mut millis, 1.0),
            );
            println!("{median:.1} {min:.1} {max:.1}");
        }
        other => bail!("unknown command {other:?}: requests, latency or startup"),
    }
    Ok(())
}

/// Time from spawning `command` to its first 200 on `path`, polled as fast as connections are
/// refused. The server is killed afterwards, once the client has closed its end, so that the
/// port is free again for the next start.
fn startup(address: SocketAddr, path: &str, command: &[String]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", command[0]))?;
    let outcome = loop {
        if let Ok(mut client) = Client::connect(address)
            && client.get(path, None).is_ok()
        {
            break Ok(start.elapsed());
        }
        if start.elapsed() > START_TIMEOUT {
            break Err(anyhow::anyhow!("no 200 on {path} within {START_TIMEOUT:?}"));
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("{} exited early: {status}", command[0]));
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = child.kill();
    child.wait()?;
    outcome
}

/// The `q`-quantile (0 to 1) of `values`, by the nearest-rank method.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// One keep-alive connection.
struct Client {
    host: String,
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Client {
    fn connect(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        Ok(Self {
            host: address.to_string(),
            reader: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// GETs `path`, with `accept` as its `Accept` header if given, and reads the whole answer;
    /// fails unless it is a 200.
    fn get(&mut self, path: &str, accept: Option<&str>) -> anyhow::Result<()> {
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{accept}\r\n", self.host);
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.next_line()?;
        let status = self.line.split(' ').nth(1).unwrap_or("").to_string();
        let mut length = None;
        loop {
            self.next_line()?;
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let length = length.context("the answer has no Content-Length")?;
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        ensure!(status == "200", "GET {path} answered {status}");
        Ok(())
    }

    fn next_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        ensure!(
            self.reader.read_line(&mut self.line)? > 0,
            "the server closed the connection"
        );
        Ok(())
    }
}
