#!/usr/bin/env bash
# Soak: serves the app and puts it under mixed load for a while, sampling its resident memory,
# open file descriptors, threads and the load generator's error count every 10 s into a report.
# Not part of ./scripts/test (it runs for minutes). See docs/reliability.md.
#
#   scripts/soak.sh [MINUTES] [RATE]          # defaults: 10 minutes, 500 requests/s
#   SOAK_ENV='OTEL_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9' scripts/soak.sh 2
#
# Environment: SOAK_BIN (the binary; default: a release build), SOAK_ENV (extra settings of the
# app, as NAME=VALUE words), SOAK_REPORT (default target/soak/report-<time>.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
rate=${2:-500}
bin=${SOAK_BIN:-target/release/prom-metrics-app}
[ -x "$bin" ] || cargo build --release --locked
mkdir -p target/soak
report=${SOAK_REPORT:-target/soak/report-$(date +%Y%m%d-%H%M%S).tsv}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# shellcheck disable=SC2086 # SOAK_ENV is a list of NAME=VALUE words on purpose.
env LISTEN_ADDR=127.0.0.1:$port LOG_TO_STDOUT=true RUST_LOG=warn OTEL_EXPORTER=none \
  SHUTDOWN_DRAIN_DELAY=0 ${SOAK_ENV:-} "$bin" >target/soak/app.log 2>&1 &
app=$!
trap 'kill "$app" 2>/dev/null || true; kill "$load" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

# Successes, 404s on random paths (distinct each time: no new series), 400s, 500s, and a short task.
mix='/=50,/do_task?seconds=0.01=15,/random=15,/do_task?seconds=zz=5,/status/500=5,/status/503=5,/chain=5'
"$bin" load --target "http://127.0.0.1:$port" --rate "$rate" --duration "${minutes}m" \
  --mix "$mix" --json >target/soak/load.json 2>target/soak/load.err &
load=$!

printf 'seconds\trss_kib\tfds\tthreads\tseries\terrors_5xx\n' | tee "$report"
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
  sleep 10
  kill -0 "$app" 2>/dev/null || { echo "the app died" >&2; exit 1; }
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$app/status")
  threads=$(awk '/^Threads/ {print $2}' "/proc/$app/status")
  fds=$(find "/proc/$app/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" || true)
  series=$(grep -vc '^#' <<<"$metrics" || true)
  errors=$(awk '$1 == "http_error_5xx_total" {print $2}' <<<"$metrics")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" "$rss" "$fds" "$threads" \
    "$series" "${errors:-n/a}" | tee -a "$report"
done
wait "$load" || true
echo "load summary: $(cat target/soak/load.json)" | tee -a "$report"
echo "report: $report"
