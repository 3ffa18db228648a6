#!/usr/bin/env bash
# Measures the release build against two baselines, on loopback, and prints a markdown report:
# throughput, latency, server CPU and memory under wrk for each configuration, each one's ratio to
# the baselines measured in the same round; start-up time; /metrics render times; binary size.
#
# Usage: bench/run.sh [--seconds N] [--rounds N] [--micro] [--load | --load-only] [--cold-build]
#                     [--test-build] [--no-scrape] > report.md
#   --seconds N    length of each wrk run, and of each load generator's run (default 5)
#   --rounds N     alternating rounds over all configurations (default 3); medians are reported
#   --micro        also run the criterion micro-benchmarks (benches/hot_path.rs), report medians
#   --load         also measure the load generator's own CPU per request at 1,000/s and 10,000/s,
#                  side by side with hey (Debian: apt-get install hey), and the rate each achieved
#   --load-only    only that comparison (builds the binary only)
#   --cold-build   also time a clean `cargo build --release` in a fresh target folder (slow)
#   --test-build   also time a clean `cargo test --no-run` and report its disk use (slow)
#   --no-scrape    leave out the scrape benchmark of 10k, 100k and 1M synthetic series
#                  (bench/scrape_synthetic.sh, which also runs alone)
#
# Needs wrk (Debian: apt-get install wrk) and curl, and hey for --load. Every server listens on
# 127.0.0.1 only (ports 5199 and 5198, or BENCH_PORT and BENCH_SINK_PORT) and every load run is
# bounded in time. Progress goes to stderr, the report to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

seconds=5
rounds=3
micro=0
load=0
cold_build=0
test_build=0
scrape=1
while (($#)); do
  case "$1" in
    --seconds) seconds=$2 && shift 2 ;;
    --rounds) rounds=$2 && shift 2 ;;
    --micro) micro=1 && shift ;;
    --load) load=1 && shift ;;
    --load-only) load=2 && shift ;;
    --cold-build) cold_build=1 && shift ;;
    --test-build) test_build=1 && shift ;;
    --no-scrape) scrape=0 && shift ;;
    -h | --help)
      sed -n '2,21p' "$0"
      exit 0
      ;;
    *)
      sed -n '2,21p' "$0" >&2
      exit 2
      ;;
  esac
done
if ((load)); then prepare wrk curl cargo hey; else prepare wrk curl cargo; fi

log() { echo "$*" >&2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# User plus system CPU time of a process, in clock ticks (the fields after the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
ticks_per_second=$(getconf CLK_TCK)

# The median of the numbers on stdin.
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
maximum() { sort -g | tail -n 1; }

# Starts configuration $1 in the background and sets `pid` (and `sink` for otlp).
start_config() {
  local cmd
  sink=
  if [[ $1 == otlp* ]]; then
    env -i "PATH=$PATH" "LISTEN_ADDR=127.0.0.1:$sink_port" "$examples/otlp_sink" \
      >/dev/null 2>>"$work/sink.log" &
    sink=$!
    pids+=("$sink")
    wait_port "$sink_port"
  fi
  command_of "$1"
  rm -rf "$work/logs"
  # The console exporter writes every span to stdout: a file, as a service manager would keep it.
  "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" &
  pid=$!
  pids+=("$pid")
  wait_ready "$(ready_path "$1")"
}

stop_config() {
  stop_pid "$pid"
  if [[ -n $sink ]]; then stop_pid "$sink"; fi
  rm -f "$work/stdout"
}

# One wrk run of configuration $1 in round $2; appends a line to $work/results:
# config round requests/s p50_us p99_us rss_idle_kib rss_load_kib cpu_us_per_request
# spans_dropped requests
measure() {
  local config=$1 round=$2 idle peak=0 rss before after wrk_pid dropped
  start_config "$config"
  sleep 0.2
  idle=$(rss_kib "$pid")
  before=$(cpu_ticks "$pid")
  wrk -t2 -c32 -d"${seconds}s" --latency "http://$addr/" >"$work/wrk.out" &
  wrk_pid=$!
  while kill -0 "$wrk_pid" 2>/dev/null; do
    rss=$(rss_kib "$pid")
    ((rss > peak)) && peak=$rss
    sleep 0.1
  done
  wait "$wrk_pid"
  after=$(cpu_ticks "$pid")
  # Spans the export queue dropped: only the Prometheus backend serves the counter.
  dropped=-
  case "$config" in prometheus | classic | otlp | otlp-logs | console)
    dropped=$(curl -fs "http://$addr/metrics" | awk '/^prom_metrics_app_telemetry_dropped_spans_total / {print $2}')
    ;;
  esac
  stop_config
  if grep -q 'Non-2xx' "$work/wrk.out"; then
    log "$config answered errors under load:" && cat "$work/wrk.out" >&2 && exit 1
  fi
  if grep -q 'Socket errors' "$work/wrk.out"; then
    log "  warning: $config: $(grep 'Socket errors' "$work/wrk.out")"
  fi
  awk -v config="$config" -v round="$round" -v idle="$idle" -v peak="$peak" -v dropped="$dropped" \
    -v ticks=$((after - before)) -v hz="$ticks_per_second" '
    function micros(v) {
      if (v ~ /us$/) return v + 0
      if (v ~ /ms$/) return v * 1000
      if (v ~ /s$/) return v * 1000000
      return v
    }
    / requests in / {requests = $1}
    /Requests\/sec/ {rps = $2}
    /^ +50%/ {p50 = micros($2)}
    /^ +99%/ {p99 = micros($2)}
    END {
      printf "%s %d %.0f %.0f %.0f %d %d %.1f %s %d\n", config, round, rps, p50, p99, idle, peak,
        ticks / hz * 1000000 / requests, dropped, requests
    }' "$work/wrk.out" >>"$work/results"
  log "  $(tail -n 1 "$work/results")"
}

# The load generators side by side: `prom-metrics-app load` and hey, each sending GET / to the app
# (`OTEL_EXPORTER=none`) at a fixed rate for $seconds, alternating in each round. Measured: the
# generator's own user + system time (bash's `time` of its process) over the requests it
# completed, and the rate it achieved. hey keeps a rate per worker (-q), so it gets workers of
# rate/workers each: 10 of 100/s, or 50 of 200/s. Appends to $work/load:
# tool rate round achieved completed cpu_us_per_request
load_run() {
  local tool=$1 rate=$2 round=$3 workers TIMEFORMAT='%3U %3S'
  case "$tool" in
    load)
      { time "$bin" load --target "http://$addr" --rate "$rate" --duration "${seconds}s" --json \
        >"$work/load.out" 2>"$work/load.err"; } 2>"$work/time.out"
      ;;
    hey)
      workers=$((rate >= 10000 ? 50 : 10))
      { time hey -z "${seconds}s" -c "$workers" -q $((rate / workers)) "http://$addr/" \
        >"$work/load.out" 2>"$work/load.err"; } 2>"$work/time.out"
      ;;
  esac
  # load prints one JSON line; hey a summary with `Requests/sec:` and `[200] N responses`.
  awk -v tool="$tool" -v rate="$rate" -v round="$round" -v cpu="$(cat "$work/time.out")" '
    /^\{/ {
      match($0, /"achieved":[0-9.]+/); achieved = substr($0, RSTART + 11, RLENGTH - 11)
      match($0, /"completed":[0-9]+/); completed = substr($0, RSTART + 12, RLENGTH - 12)
    }
    /Requests\/sec:/ {achieved = $2}
    /\[[0-9]+\][[:space:]]+[0-9]+ responses/ {completed += $2}
    END {
      split(cpu, t, " ")
      printf "%s %d %d %.1f %d %.1f\n", tool, rate, round, achieved, completed,
        (t[1] + t[2]) * 1000000 / completed
    }' "$work/load.out" >>"$work/load"
  log "  $(tail -n 1 "$work/load")"
}

compare_load() {
  local round rate tool order
  log "load generators, ${seconds} s per run..."
  start_config prometheus
  for ((round = 1; round <= rounds; round++)); do
    order=(load hey)
    if ((round % 2 == 0)); then order=(hey load); fi
    for rate in 1000 10000; do
      for tool in "${order[@]}"; do load_run "$tool" "$rate" "$round"; done
    done
  done
  stop_config
}

# column $1 of the runs of generator $2 at rate $3, one per line
load_column() { awk -v c="$1" -v t="$2" -v r="$3" '$1 == t && $2 == r {print $c}' "$work/load"; }

# The comparison's report: medians of the rounds, and the median of the per-round ratios.
report_load() {
  local rate
  cat <<EOF

Load generators: GET / of the app (\`OTEL_EXPORTER=none\`) at a fixed rate for ${seconds} s,
${rounds} alternating rounds. CPU per request is the generator's own user + system time over the
requests it completed; medians of the rounds.

| rate asked | \`load\` achieved | \`load\` CPU per request | hey achieved | hey CPU per request | load / hey |
|---|---|---|---|---|---|
EOF
  for rate in 1000 10000; do
    printf '| %s/s | %.1f/s | %.1f µs | %.1f/s | %.1f µs | %.2fx |\n' "$rate" \
      "$(load_column 4 load "$rate" | median)" "$(load_column 6 load "$rate" | median)" \
      "$(load_column 4 hey "$rate" | median)" "$(load_column 6 hey "$rate" | median)" \
      "$(awk -v r="$rate" '
          $1 == "load" && $2 == r {x[$3] = $6} $1 == "hey" && $2 == r {y[$3] = $6}
          END {for (k in x) if (y[k] > 0) printf "%.3f\n", x[k] / y[k]}' "$work/load" | median)"
  done
  cat <<EOF

Each run:

| generator | rate asked | round | achieved | completed | CPU µs/request |
|---|---|---|---|---|---|
EOF
  awk '{printf "| %s | %s/s | %s | %s/s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$work/load"
}

if ((load == 2)); then
  log "building the release binary..."
  cargo build --release --locked --quiet --bins
  compare_load
  echo "$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(rustc --version)."
  report_load
  exit 0
fi

build_release
capture_home
log "the app's / body: $(stat -c %s "$work/home.html") bytes"

# Rounds alternate the order (forwards, then backwards), so that a slow drift of the machine's
# load does not favour the configurations that run first.
for ((round = 1; round <= rounds; round++)); do
  log "round $round of $rounds (${seconds} s per configuration)"
  order=("${configs[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
  fi
  for config in "${order[@]}"; do measure "$config" "$round"; done
done

# column ($1) of configuration $2 in every round, one per line
column_of() { awk -v c="$2" -v col="$1" '$1 == c {print $col}' "$work/results"; }
# the ratio of configuration $1's requests/s to $2's, in each round, one per line
ratios() {
  awk -v a="$1" -v b="$2" '
    $1 == a {x[$2] = $3} $1 == b {y[$2] = $3}
    END {for (r in x) if (y[r] > 0) printf "%.3f\n", x[r] / y[r]}' "$work/results"
}

# Start-up: exec to the first 200, ten starts each, timed by a client that polls every 0.2 ms.
log "start-up times..."
startup() {
  local cmd
  command_of "$1"
  "$examples/bench_client" startup "$addr" "$(ready_path "$1")" 10 "${cmd[@]}"
}
startup_console=$(startup console)
startup_prometheus=$(startup prometheus)
startup_bare=$(startup bare)

# /metrics: sequential scrapes on one connection, timed by the client (loopback round trip
# included). The app first serves some requests so that the labelled histogram has its series.
log "/metrics render times..."
start_config prometheus
"$examples/bench_client" requests "$addr" / 100
scrape_default=$("$examples/bench_client" latency "$addr" /metrics 1000)
size_default=$(curl -fs "http://$addr/metrics" | wc -c)
series_default=$(curl -fs "http://$addr/metrics" | grep -c '^[a-z]' || true)
# The same series in the protobuf format, classic and native buckets, as Prometheus asks for it
# with native histograms on.
protobuf='application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'
scrape_protobuf=$("$examples/bench_client" latency "$addr" /metrics 1000 "$protobuf")
size_protobuf=$(curl -fs -H "Accept: $protobuf" "http://$addr/metrics" | wc -c)
stop_config
# 10,000 series of the labelled histogram: the app's bounded labels cannot reach that many through
# HTTP, so the uninstrumented baseline fills its backend with synthetic routes at start.
cmd=(env -i "PATH=$PATH" "LISTEN_ADDR=$addr" SYNTHETIC_SERIES=10000 "$examples/uninstrumented")
"${cmd[@]}" >/dev/null 2>&1 &
pid=$!
pids+=("$pid")
sink=
wait_ready /healthz
scrape_large=$("$examples/bench_client" latency "$addr" /metrics 200)
size_large=$(curl -fs "http://$addr/metrics" | wc -c)
series_large=$(curl -fs "http://$addr/metrics" | grep -c '^http_server_request_duration_seconds_count' || true)
stop_config

# What recording native histograms beside the classic buckets costs: the ratio of server CPU per
# request of `prometheus` (classic and native) to `classic` (NATIVE_HISTOGRAM_BUCKET_FACTOR=off),
# in each round, then their median.
native_cost=$(awk '
  $1 == "prometheus" {x[$2] = $8} $1 == "classic" {y[$2] = $8}
  END {for (r in x) if (y[r] > 0) printf "%.3f\n", x[r] / y[r]}' "$work/results" | median)

if ((load)); then compare_load; fi

binary_bytes=$(stat -c %s "$bin")
binary_kind=$(file -b "$bin" 2>/dev/null | grep -o 'not stripped\|stripped' || echo "unknown")

if ((micro)); then
  log "criterion micro-benchmarks..."
  rm -rf target/criterion
  cargo bench --locked --quiet --bench hot_path >&2
fi

cold=
if ((cold_build)); then
  log "cold release build in a fresh target folder (crates already downloaded)..."
  start=$SECONDS
  CARGO_TARGET_DIR="$work/cold" cargo build --release --locked --quiet
  cold="$((SECONDS - start)) s"
  rm -rf "$work/cold"
fi
test_disk=
if ((test_build)); then
  log "clean test build in a fresh target folder..."
  start=$SECONDS
  CARGO_TARGET_DIR="$work/test" cargo test --locked --quiet --no-run 2>/dev/null
  test_disk="$(du -sh "$work/test" | cut -f1) in $((SECONDS - start)) s"
  rm -rf "$work/test"
fi

# The report.
cat <<EOF
$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(rustc --version);
wrk 2 threads, 32 connections, ${seconds} s per run, GET /, ${rounds} alternating rounds.

| configuration | requests/s | p50 | p99 | server CPU per request | RSS idle | RSS under load | vs bare axum | vs uninstrumented |
|---|---|---|---|---|---|---|---|---|
EOF
for config in "${configs[@]}"; do
  printf '| %s | %.0f | %.0f µs | %.0f µs | %.1f µs | %s KiB | %s KiB | %.2fx | %.2fx |\n' \
    "$(describe "$config")" \
    "$(column_of 3 "$config" | median)" \
    "$(column_of 4 "$config" | median)" \
    "$(column_of 5 "$config" | median)" \
    "$(column_of 8 "$config" | median)" \
    "$(column_of 6 "$config" | maximum)" \
    "$(column_of 7 "$config" | maximum)" \
    "$(ratios "$config" bare | median)" \
    "$(ratios "$config" uninstrumented | median)"
done
cat <<EOF

Medians of the rounds; RSS is the largest of the rounds (under load: the peak of samples every
0.1 s). A ratio is the median of the per-round ratios of requests/s. Server CPU per request is
the server's user + system time over the run divided by the requests wrk completed. Spans
dropped: \`prom_metrics_app_telemetry_dropped_spans_total\` after the run (export queue full);
a dropped span costs less than an exported one, so a configuration that drops looks faster.

Each round:

| configuration | round | requests/s | p50 µs | p99 µs | RSS idle KiB | RSS under load KiB | CPU µs/request | requests | spans dropped |
|---|---|---|---|---|---|---|---|---|---|
EOF
awk '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $10, $9}' \
  "$work/results"
read -r console_median console_min console_max <<<"$startup_console"
read -r prometheus_median prometheus_min prometheus_max <<<"$startup_prometheus"
read -r bare_median bare_min bare_max <<<"$startup_bare"
read -r default_p50 default_p99 default_max <<<"$scrape_default"
read -r large_p50 large_p99 large_max <<<"$scrape_large"
read -r protobuf_p50 protobuf_p99 protobuf_max <<<"$scrape_protobuf"
cat <<EOF

| other measurement | value |
|---|---|
| start-up to first 200, defaults (median of 10; min, max) | ${console_median} ms (${console_min}, ${console_max}) |
| start-up to first 200, \`OTEL_EXPORTER=none\` | ${prometheus_median} ms (${prometheus_min}, ${prometheus_max}) |
| start-up to first 200, bare axum | ${bare_median} ms (${bare_min}, ${bare_max}) |
| \`/metrics\`, default series (${series_default} samples, ${size_default} bytes), 1000 scrapes | p50 ${default_p50} µs, p99 ${default_p99} µs, max ${default_max} µs |
| \`/metrics\` in protobuf, classic and native buckets, the same series (${size_protobuf} bytes), 1000 scrapes | p50 ${protobuf_p50} µs, p99 ${protobuf_p99} µs, max ${protobuf_max} µs |
| server CPU per request, classic and native histograms over classic only (median of the per-round ratios) | ${native_cost}x |
| \`/metrics\`, ${series_large} labelled series (${size_large} bytes), 200 scrapes | p50 ${large_p50} µs, p99 ${large_p99} µs, max ${large_max} µs |
| release binary (${binary_kind}) | ${binary_bytes} bytes |
EOF
if [[ -n $cold ]]; then echo "| clean \`cargo build --release\` | $cold |"; fi
if [[ -n $test_disk ]]; then echo "| clean \`cargo test --no-run\`: target folder | $test_disk |"; fi
if ((micro)); then
  cat <<EOF

Micro-benchmarks (\`cargo bench --bench hot_path\`, criterion; medians):

| benchmark | median |
|---|---|
EOF
  for estimates in target/criterion/*/*/new/estimates.json; do
    name=${estimates#target/criterion/}
    name=${name%/new/estimates.json}
    # The median's point estimate: the first one after "median" in criterion's one-line JSON.
    ns=$(sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$estimates")
    awk -v name="$name" -v ns="$ns" 'BEGIN {
      if (ns >= 1e6) printf "| %s | %.2f ms |\n", name, ns / 1e6
      else if (ns >= 1e3) printf "| %s | %.2f µs |\n", name, ns / 1e3
      else printf "| %s | %.1f ns |\n", name, ns
    }'
  done
fi
if ((scrape)); then
  echo
  bench/scrape_synthetic.sh --no-build
fi
if ((load)); then report_load; fi
