# shellcheck shell=bash
# Shared by bench/run.sh and bench/profile.sh: the configurations under test, and how to start,
# wait for and stop a server. Sourced, not run. Everything listens on 127.0.0.1 only.

bin=target/release/prom-metrics-app
examples=target/release/examples
port=${BENCH_PORT:-5199}           # the server under test
sink_port=${BENCH_SINK_PORT:-5198} # the OTLP receiver of the `otlp` configuration
addr="127.0.0.1:$port"

# The configurations, in the order of the tables. The first two are baselines. `otlp` exports
# spans alone, as before log records existed; `otlp-logs` adds a log record per request.
# shellcheck disable=SC2034 # used by the scripts that source this file
configs=(bare uninstrumented prometheus classic otel otlp otlp-logs console)

# One line describing a configuration, for the tables.
describe() {
  case "$1" in
    bare) echo "bare axum, same \`/\` bytes" ;;
    uninstrumented) echo "app routes, instrumentation off" ;;
    prometheus) echo "app, \`OTEL_EXPORTER=none\` (classic and native histograms)" ;;
    classic) echo "app, \`OTEL_EXPORTER=none NATIVE_HISTOGRAM_BUCKET_FACTOR=off\` (classic only)" ;;
    otel) echo "app, \`METRICS_BACKEND=otel OTEL_EXPORTER=none\`" ;;
    otlp) echo "app, \`OTEL_EXPORTER=otlp OTEL_LOGS_EXPORTER=none\` (spans) into an accept-all receiver" ;;
    otlp-logs) echo "app, \`OTEL_EXPORTER=otlp\` (spans and log records) into an accept-all receiver" ;;
    console) echo "app, defaults (console spans and log records on stdout, log lines to a file)" ;;
  esac
}

# The path that answers 200 once a configuration is ready.
ready_path() {
  if [[ $1 == bare ]]; then echo /; else echo /healthz; fi
}

# The command line of a configuration, as words, in the array `cmd`, run with a clean
# environment: only what is set here reaches the server (the app reads OTEL_* variables).
# Needs $work (scratch folder) and, for `bare`, $work/home.html.
command_of() {
  local common=(env -i "PATH=$PATH" "LISTEN_ADDR=$addr")
  local app=("${common[@]}" "LOG_DIR=${work:?}/logs" SHUTDOWN_DRAIN_DELAY=0)
  case "$1" in
    bare) cmd=("${common[@]}" "BODY_FILE=${work:?}/home.html" "$examples/bare_axum") ;;
    uninstrumented) cmd=("${common[@]}" "$examples/uninstrumented") ;;
    prometheus) cmd=("${app[@]}" OTEL_EXPORTER=none "$bin") ;;
    classic) cmd=("${app[@]}" OTEL_EXPORTER=none NATIVE_HISTOGRAM_BUCKET_FACTOR=off "$bin") ;;
    otel) cmd=("${app[@]}" OTEL_EXPORTER=none METRICS_BACKEND=otel "$bin") ;;
    otlp) cmd=("${app[@]}" OTEL_EXPORTER=otlp OTEL_LOGS_EXPORTER=none "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port" "$bin") ;;
    otlp-logs) cmd=("${app[@]}" OTEL_EXPORTER=otlp "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port" "$bin") ;;
    console) cmd=("${app[@]}" "$bin") ;;
    *)
      echo "unknown configuration $1" >&2
      return 1
      ;;
  esac
}

# Fails when something already answers on a port we are about to use.
check_free() {
  local p
  for p in "$port" "$sink_port"; do
    if (: </dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
      echo "port $p on 127.0.0.1 is in use: stop what listens there, or choose other ports" \
        "with BENCH_PORT and BENCH_SINK_PORT" >&2
      exit 1
    fi
  done
}

# Waits up to $2 seconds (default 10) for a 200 on $1.
wait_ready() {
  local url="http://$addr$1" deadline=$((SECONDS + ${2:-10}))
  until curl -fs -o /dev/null "$url"; do
    if ((SECONDS > deadline)); then
      echo "no 200 on $url within ${2:-10} s" >&2
      return 1
    fi
    sleep 0.02
  done
}

# Waits up to 10 s for a port to accept connections.
wait_port() {
  local deadline=$((SECONDS + 10))
  until (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; do
    if ((SECONDS > deadline)); then
      echo "nothing listens on port $1 after 10 s" >&2
      return 1
    fi
    sleep 0.02
  done
}

# Sends SIGTERM to $1 and waits up to $2 seconds (default 20) for it to exit, then SIGKILL.
stop_pid() {
  local pid=$1 deadline=$((SECONDS + ${2:-20}))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      echo "process $pid ignored SIGTERM for ${2:-20} s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
}

# Builds the release binary and the benchmark examples, in two steps: examples bring in the
# dev-dependencies, whose features would otherwise be unified into the binary under test.
build_release() {
  echo "building the release binary and examples..." >&2
  cargo build --release --locked --quiet --bins
  cargo build --release --locked --quiet --examples
}

# Saves the app's own `/` body, for the bare baseline to serve the same bytes.
capture_home() {
  local cmd pid
  command_of prometheus
  "${cmd[@]}" >/dev/null 2>&1 &
  pid=$!
  wait_ready /healthz
  curl -fs -o "${work:?}/home.html" "http://$addr/"
  stop_pid "$pid"
}

# Checks that each tool given is installed and the ports are free, makes the scratch folder
# $work, and arranges for the servers in $pids to be killed and $work removed on exit.
prepare() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "$tool is missing (Debian: apt-get install $tool)" >&2
      exit 1
    }
  done
  check_free
  work=$(mktemp -d)
  pids=()
  trap cleanup EXIT
}

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
