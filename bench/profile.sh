#!/usr/bin/env bash
# Counts the instructions the server executes per request, with valgrind's callgrind: stable where
# timings are not (a shared, noisy machine). For each configuration of bench/run.sh, the server runs
# under callgrind twice, once serving N sequential GET / and once serving none for as long, each
# from start to exit; the difference of the two totals, divided by N, is the cost of one request.
#
# Usage: bench/profile.sh [N] [CONFIGURATION...] > report.md
#   N defaults to 2000; configurations default to all (bare uninstrumented prometheus otel otlp
#   otlp-logs console). Needs valgrind (Debian: apt-get install valgrind).
#
# Requests come from a small sequential client (examples/bench_client.rs) on one keep-alive
# connection, so the count does not depend on time. Loopback only (ports 5199 and 5198, or
# BENCH_PORT and BENCH_SINK_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

requests=${1:-2000}
if (($#)); then shift; fi
if (($#)); then selected=("$@"); else selected=("${configs[@]}"); fi
prepare valgrind curl cargo

# Runs configuration $1 under callgrind, sends $2 requests (or, with 0, waits $3 seconds), stops
# it, and prints the total instruction count (Ir) and the seconds the requests took.
count() {
  local config=$1 n=$2 idle=${3:-0} cmd pid sink='' start elapsed out="$work/callgrind.out"
  if [[ $config == otlp* ]]; then
    env -i "PATH=$PATH" "LISTEN_ADDR=127.0.0.1:$sink_port" "$examples/otlp_sink" >/dev/null 2>&1 &
    sink=$!
    pids+=("$sink")
    wait_port "$sink_port"
  fi
  command_of "$config"
  rm -rf "$work/logs" "$out"
  # valgrind goes after `env -i ... VAR=value`, right before the program.
  local program=${cmd[-1]}
  unset 'cmd[-1]'
  "${cmd[@]}" valgrind --quiet --tool=callgrind --callgrind-out-file="$out" "$program" \
    >"$work/stdout" 2>"$work/stderr" &
  pid=$!
  pids+=("$pid")
  wait_ready "$(ready_path "$config")" 120
  start=$EPOCHREALTIME
  if ((n > 0)); then
    "$examples/bench_client" requests "$addr" / "$n"
  else
    sleep "$idle"
  fi
  elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')
  stop_pid "$pid" 120
  if [[ -n $sink ]]; then stop_pid "$sink"; fi
  if [[ ! -s $out ]]; then
    echo "callgrind wrote no profile for $config; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
  echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$out") $elapsed"
}

build_release
if [[ " ${selected[*]} " == *" bare "* ]]; then capture_home; fi

cat <<EOF
callgrind, ${requests} sequential GET / on one connection; $(valgrind --version), $(rustc --version).

| configuration | instructions per request | Ir with ${requests} requests | Ir with none |
|---|---|---|---|
EOF
for config in "${selected[@]}"; do
  echo "$config: $requests requests under callgrind..." >&2
  read -r busy seconds <<<"$(count "$config" "$requests")"
  echo "$config: none, waiting ${seconds} s..." >&2
  read -r quiet _ <<<"$(count "$config" 0 "$seconds")"
  printf '| %s | %d | %d | %d |\n' "$(describe "$config")" $(((busy - quiet) / requests)) \
    "$busy" "$quiet"
done
