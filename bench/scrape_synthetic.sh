#!/usr/bin/env bash
# The scrape benchmark of the synthetic series: /metrics with 10k, 100k and 1M gauge series
# (SYNTHETIC_METRICS=100 families), uncompressed and gzip-compressed, against the same series held
# in a prometheus-client registry and encoded by its text encoder (examples/registry_scrape.rs).
# Prints a markdown table: scrape time (curl's time_total, loopback transfer included), bytes,
# server CPU per series line, RSS idle and at its peak. bench/run.sh runs it too.
#
# Usage: bench/scrape_synthetic.sh [--no-build] [--series "10000 100000 1000000"] > report.md
#   --no-build   use the release binary and examples already built
#   --series     the sizes to measure, multiples of 100
#
# Needs curl. Listens on 127.0.0.1 only (BENCH_PORT, default 5199); every scrape is bounded by a
# timeout. Progress goes to stderr, the report to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

build=1
sizes="10000 100000 1000000"
while (($#)); do
  case "$1" in
    --no-build) build=0 && shift ;;
    --series) sizes=$2 && shift 2 ;;
    *)
      sed -n '2,13p' "$0" >&2
      exit 2
      ;;
  esac
done
prepare curl cargo

families=100
log() { echo "$*" >&2; }
status_kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
ticks_per_second=$(getconf CLK_TCK)
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# `count` scrapes of /metrics with the extra curl arguments given; prints the median time in ms
# and the server's CPU ticks over them.
scrapes() {
  local count=$1 before i time
  shift
  before=$(cpu_ticks "$pid")
  time=$(for ((i = 0; i < count; i++)); do
    curl -fs --max-time 60 -o /dev/null -w '%{time_total}\n' "$@" "http://$addr/metrics"
  done | awk '{print $1 * 1000}' | median)
  echo "$time $(($(cpu_ticks "$pid") - before))"
}

# Measures encoder $1 (app or registry) at $2 series; appends a line to $work/scrapes.
measure_scrape() {
  local kind=$1 series=$2 per=$(($2 / families)) count idle lines bytes gzip_bytes plain gzip
  local plain_ticks gzip_ticks peak
  case $series in
    10000) count=200 ;;
    100000) count=30 ;;
    *) count=6 ;;
  esac
  local settings=("SYNTHETIC_METRICS=$families" "SYNTHETIC_SERIES=$per")
  case $kind in
    app) cmd=(env -i "PATH=$PATH" "LISTEN_ADDR=$addr" "LOG_DIR=$work/logs" SHUTDOWN_DRAIN_DELAY=0
      OTEL_EXPORTER=none "${settings[@]}" "$bin") ;;
    registry) cmd=(env -i "PATH=$PATH" "LISTEN_ADDR=$addr" "${settings[@]}" "$examples/registry_scrape") ;;
  esac
  "${cmd[@]}" >/dev/null 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_ready /healthz 120
  idle=$(status_kib "$pid" VmRSS)
  lines=$(curl -fs --max-time 60 "http://$addr/metrics" | grep -c '^synthetic_')
  bytes=$(curl -fs --max-time 60 "http://$addr/metrics" | wc -c)
  gzip_bytes=$(curl -fs --max-time 60 -H 'Accept-Encoding: gzip' "http://$addr/metrics" | wc -c)
  read -r plain plain_ticks <<<"$(scrapes "$count")"
  read -r gzip gzip_ticks <<<"$(scrapes "$count" -H 'Accept-Encoding: gzip')"
  peak=$(status_kib "$pid" VmHWM)
  stop_pid "$pid"
  awk -v kind="$kind" -v series="$series" -v lines="$lines" -v bytes="$bytes" -v gz="$gzip_bytes" \
    -v plain="$plain" -v gzip="$gzip" -v pt="$plain_ticks" -v gt="$gzip_ticks" -v hz="$ticks_per_second" \
    -v count="$count" -v idle="$idle" -v peak="$peak" 'BEGIN {
      printf "%s %d %d %d %d %.1f %.1f %.0f %.0f %d %d %d\n", kind, series, lines, bytes, gz, plain, gzip,
        pt / hz * 1e9 / (count * lines), gt / hz * 1e9 / (count * lines), idle, peak, count
    }' >>"$work/scrapes"
  log "  $(tail -n 1 "$work/scrapes")"
}

if ((build)); then build_release; fi
log "synthetic scrapes at $sizes series..."
for series in $sizes; do
  for kind in app registry; do measure_scrape "$kind" "$series"; done
done

describe_kind() {
  case "$1" in
    app) echo "app (\`SYNTHETIC_METRICS=$families\`)" ;;
    registry) echo "prometheus-client registry, text encoder" ;;
  esac
}
cat <<EOF
Synthetic gauge series on \`/metrics\` (0.0.4 text), ${families} families; $(nproc) cores, shared.

| encoder | series | sample lines | bytes | gzip bytes | scrape, median | gzip scrape, median | server CPU per line | with gzip | RSS idle | RSS peak | scrapes |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
while read -r kind series lines bytes gz plain gzip pt gt idle peak count; do
  printf '| %s | %s | %s | %s | %s | %s ms | %s ms | %s ns | %s ns | %s KiB | %s KiB | %s |\n' \
    "$(describe_kind "$kind")" "$series" "$lines" "$bytes" "$gz" "$plain" "$gzip" "$pt" "$gt" "$idle" "$peak" "$count"
done <"$work/scrapes"
# Memory per series: the slope of the peak RSS between the two largest sizes, which leaves out
# what the process holds whatever the series.
read -r small large <<<"$(echo "$sizes" | tr ' ' '\n' | sort -g | tail -n 2 | tr '\n' ' ')"
cat <<EOF

Peak RSS per series, between ${small} and ${large} series (the slope, leaving out what the process
holds anyway):

| encoder | bytes per series |
|---|---|
EOF
for kind in app registry; do
  awk -v kind="$kind" -v small="$small" -v large="$large" -v name="$(describe_kind "$kind")" '
    $1 == kind && $2 == small {a = $11} $1 == kind && $2 == large {b = $11}
    END {printf "| %s | %.0f |\n", name, (b - a) * 1024 / (large - small)}' "$work/scrapes"
done
cat <<EOF

Bytes and lines are the app's whole body (its own series too, a few kB); sample lines count only
\`synthetic_*\`. Server CPU per line is the server's user + system time over the scrapes divided by
the synthetic lines sent (clock ticks of 10 ms: coarse at 10k series). Scrape times include the
loopback transfer and curl's reading, on 2 shared cores: compare within a run.
EOF
