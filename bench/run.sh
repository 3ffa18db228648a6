#!/usr/bin/env bash
# Measures the release binary: size, idle RSS, throughput and latency under wrk, RSS under load.
# Usage: bench/run.sh [seconds per run] > docs/benchmarks.md fragment on stdout.
# Loopback only; every load run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/prom-metrics-app
port=5099
logs=$(mktemp -d)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

start() {
  env LISTEN_ADDR="127.0.0.1:$port" LOG_DIR="$logs" "$@" "$bin" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "the app did not start" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

# wrk: 2 threads, 32 connections; prints requests/s and the 50th and 99th latency percentiles.
load() {
  wrk -t2 -c32 -d"${duration}s" --latency "http://127.0.0.1:$port$1" |
    awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s | %s | %s", rps, p50, p99}'
}

echo "Binary: $(stat -c %s "$bin") bytes ($(du -h "$bin" | cut -f1)), $(rustc --version)"
echo
echo "| configuration | path | requests/s | p50 | p99 | RSS idle KiB | RSS after load KiB |"
echo "|---|---|---|---|---|---|---|"
for config in "OTEL_EXPORTER=none" "OTEL_EXPORTER=none METRICS_BACKEND=otel" "OTEL_EXPORTER=none RUST_LOG=warn"; do
  for path in / /healthz; do
    # shellcheck disable=SC2086
    start $config
    idle=$(rss_kib "$pid")
    result=$(load "$path")
    echo "| \`$config\` | \`$path\` | $result | $idle | $(rss_kib "$pid") |"
    stop
  done
done
rm -rf "$logs"
