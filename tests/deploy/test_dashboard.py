"""The Grafana dashboard (deploy/grafana/prom-metrics-app.json), and the key check of the deploy
files: every metric that the dashboard's and the rules' queries read is one the app really serves.

Metric names are pulled out of PromQL by a small tokenizer: strings, label matchers, ranges and
grouping clauses are removed, then every identifier that is not a function call, an aggregation
or a keyword is a metric selector. Recording-rule names (level:metric:operations) are resolved to
the metrics their expressions read, recursively.
"""

import json
import re
from pathlib import Path

import urllib.request

import pytest
import yaml

DASHBOARD = Path("deploy/grafana/prom-metrics-app.json")
RULES = Path("deploy/prometheus/rules.yml")

# Series that Prometheus makes itself for each scrape, not the app.
SYNTHETIC = {"up", "scrape_samples_scraped", "scrape_series_added"}

# The gauges of the chaos settings in force.
CHAOS_GAUGES = [
    "prom_metrics_app_chaos_error_ratio",
    "prom_metrics_app_chaos_error_status_code",
    "prom_metrics_app_chaos_latency_seconds",
    "prom_metrics_app_chaos_jitter_seconds",
    "prom_metrics_app_chaos_latency_ratio",
]

KEYWORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "inf", "nan", "start", "end", "atan2",
}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
RANGE = re.compile(r"\[[^\[\]]*\]")
OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z]+|@\s*[^\s()]+(?:\(\))?")
GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
IDENTIFIER = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")
NAME_MATCHER = re.compile(r'__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
LABEL_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def grafana_to_promql(query: str) -> str:
    """A Grafana variable query (label_values(...), query_result(...)) as the PromQL it runs."""
    query = query.strip()
    match = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", query, re.S)
    if match:
        return match.group(1)
    if re.fullmatch(r"label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", query):
        return ""
    match = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    if match:
        return match.group(1)
    return query


def metric_names(expr: str) -> set:
    """Metric names (and recording-rule names) that a PromQL expression selects."""
    expr = GRAFANA_VARIABLE.sub("0", expr)
    names = set(NAME_MATCHER.findall(expr))
    expr = STRING.sub('""', expr)
    expr = MATCHERS.sub("{}", expr)
    expr = RANGE.sub("[]", expr)
    expr = OFFSET.sub(" ", expr)
    while True:
        stripped = GROUPING.sub(" ", expr)
        if stripped == expr:
            break
        expr = stripped
    for match in IDENTIFIER.finditer(expr):
        name = match.group(0)
        rest = expr[match.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def label_names(expr: str) -> set:
    """Label names used in matchers and grouping clauses."""
    expr = GRAFANA_VARIABLE.sub("0", expr)
    expr = STRING.sub('""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^{}]*)\}", expr):
        labels |= set(LABEL_MATCHER.findall(matchers))
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    labels.discard("__name__")
    return labels


def load_rules(repo: Path) -> list:
    data = yaml.safe_load((repo / RULES).read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def recorded(rules: list) -> dict:
    """Recording-rule name -> the expressions that produce it."""
    table = {}
    for rule in rules:
        if "record" in rule:
            table.setdefault(rule["record"], []).append(rule["expr"])
    return table


def resolve(names: set, records: dict, seen=frozenset()) -> set:
    """Replaces recording-rule names by the metrics their expressions read."""
    out = set()
    for name in names:
        if name in records:
            assert name not in seen, f"recording rule {name} depends on itself"
            for expr in records[name]:
                out |= resolve(metric_names(expr), records, seen | {name})
        else:
            assert ":" not in name, f"{name} looks like a recording rule but no rule records it"
            out.add(name)
    return out


def dashboard_panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def prometheus_queries(dashboard: dict) -> list:
    """Every PromQL query of the dashboard: panel targets and query variables."""
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            if source.get("type") == "prometheus" and target.get("expr"):
                queries.append(target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query" and variable["datasource"]["type"] == "prometheus":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            queries.append(grafana_to_promql(query))
    return queries


def exported(metrics_text: str):
    """Metric names and label names in a /metrics answer (text format 0.0.4 or OpenMetrics)."""
    names, labels = set(), set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            elif kind == "summary":
                names |= {f"{name}_count", f"{name}_sum"}
            elif kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", line)
            names.add(match.group(1))
            if match.group(2):
                labels |= set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', match.group(2)))
    return names, labels


@pytest.fixture(scope="module")
def dashboard(repo) -> dict:
    return json.loads((repo / DASHBOARD).read_text())


# --- the tokenizer --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "expr, expected",
    [
        ('sum by (job, http_route) (rate(http_server_request_duration_seconds_count{job="x", '
         'http_response_status_code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))',
         {"http_server_request_duration_seconds_count", "http_requests_total"}),
        ("up == 0", {"up"}),
        ('absent(http_requests_total{job="prom-metrics-app"})', {"http_requests_total"}),
        ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))', {"x_bucket"}),
        ("time() - process_start_time_seconds", {"process_start_time_seconds"}),
        ("a and on(instance) b offset 5m unless ignoring (job) c @ end()", {"a", "b", "c"}),
        ('{__name__="foo_total", job="x"}', {"foo_total"}),
        ("rate(x[5m:1m])", {"x"}),
        ('count_values("version", build_info) by (version)', {"build_info"}),
        ("5e-2 * foo + 1.5 > bool Inf", {"foo"}),
        ("sum without (instance) (foo) * on (job) group_left (version) bar", {"foo", "bar"}),
        ('job:x:rate5m{quantile="0.99"} > 1', {"job:x:rate5m"}),
        ('sum(rate(a{l="by (x) or y"}[${__range}]))', {"a"}),
        (grafana_to_promql('label_values(http_requests_total{job=~"$job"}, instance)'), {"http_requests_total"}),
        (grafana_to_promql("label_values(job)"), set()),
    ],
)
def test_metric_names_are_extracted_from_promql(expr, expected):
    assert metric_names(expr) == expected


def test_label_names_are_extracted_from_promql():
    expr = ('sum by (job, http_route) (rate(m{job=~"$job", http_response_status_code!="200"}[5m])) '
            '* on (instance) group_left (version) b{l="a=b"}')
    assert label_names(expr) == {"job", "http_route", "http_response_status_code", "instance", "version", "l"}


def test_recording_rules_resolve_to_the_metrics_they_read(repo):
    rules = load_rules(repo)
    used = set()
    for rule in rules:
        used |= resolve(metric_names(rule["expr"]), recorded(rules))
    assert used == {
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds",  # the native histogram
        "http_requests_total",
        "http_error_5xx_total",
        "up",
        "scrape_samples_scraped",  # the head-series growth alert
        "scrape_series_added",
        "prom_metrics_app_telemetry_dropped_spans_total",
        "prom_metrics_app_telemetry_failed_spans_total",
        "prom_metrics_app_telemetry_failed_metric_exports_total",
        "prom_metrics_app_telemetry_dropped_log_records_total",
        "prom_metrics_app_telemetry_failed_log_records_total",
        "prom_metrics_app_chaos_ready",  # the faults of a pod
        "process_start_time_seconds",
    }


def test_the_dashboard_queries_the_expected_metrics(dashboard):
    used = set()
    for query in prometheus_queries(dashboard):
        used |= metric_names(query)
    expected = {
        "http_requests_total", "http_successful_request_total", "http_error_4xx_total", "http_error_5xx_total",
        "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds",  # the native histogram, by its bare name
        "request_processing_seconds_bucket", "request_processing_seconds_sum", "request_processing_seconds_count",
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
        "process_open_fds", "process_max_fds", "process_start_time_seconds",
        "prom_metrics_app_telemetry_dropped_spans_total", "prom_metrics_app_telemetry_failed_spans_total",
        "prom_metrics_app_telemetry_failed_metric_exports_total",
        "prom_metrics_app_telemetry_dropped_log_records_total",
        "prom_metrics_app_telemetry_failed_log_records_total",
        "prom_metrics_app_build_info", "up",
        *CHAOS_GAUGES,
        "http_client_request_duration_seconds_bucket", "http_client_request_duration_seconds_count",
    }
    assert used == expected


# --- the key check: the app serves what the queries read -----------------------------------------

def test_every_metric_the_dashboard_and_rules_read_is_served_by_the_app(repo, dashboard, metrics_text):
    served, _ = exported(metrics_text)
    assert "http_server_request_duration_seconds_bucket" in served, metrics_text[:2000]
    rules = load_rules(repo)
    records = recorded(rules)
    used = {}
    for query in prometheus_queries(dashboard):
        for name in resolve(metric_names(query), records):
            used.setdefault(name, []).append(f"dashboard: {query}")
    for rule in rules:
        for name in resolve(metric_names(rule["expr"]), records):
            used.setdefault(name, []).append(f"rule {rule.get('record') or rule.get('alert')}")
    missing = {name: where for name, where in used.items() if name not in served and name not in SYNTHETIC}
    assert not missing, f"not on the app's /metrics: {json.dumps(missing, indent=2)}"


def test_every_label_the_dashboard_and_rules_use_is_served_by_the_app(repo, dashboard, metrics_text):
    _, served = exported(metrics_text)
    rules = load_rules(repo)
    # job and instance come from the scrape; the quantile label from the recording rules.
    allowed = served | {"job", "instance"}
    for rule in rules:
        allowed |= set(rule.get("labels", {})) if "record" in rule else set()
    used = {}
    for query in prometheus_queries(dashboard) + [rule["expr"] for rule in rules]:
        for label in label_names(query):
            used.setdefault(label, []).append(query)
    assert {"http_route", "http_response_status_code", "le", "job", "instance"} <= set(used)
    unknown = {label: where for label, where in used.items() if label not in allowed}
    assert not unknown, f"labels the app does not serve: {json.dumps(unknown, indent=2)}"


PROTOBUF = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"


def protobuf_fields(data: bytes):
    """The fields of one protobuf message as (number, wire type, value): varints as ints, 64-bit
    values as 8 bytes, length-delimited values as bytes. Just what reading MetricFamily needs."""

    def varint(at):
        value = shift = 0
        while True:
            byte = data[at]
            value |= (byte & 0x7F) << shift
            at += 1
            if byte < 0x80:
                return value, at
            shift += 7

    at = 0
    while at < len(data):
        key, at = varint(at)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, at = varint(at)
        elif kind == 1:
            value, at = data[at:at + 8], at + 8
        elif kind == 2:
            length, at = varint(at)
            value, at = data[at:at + length], at + length
        elif kind == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError(f"wire type {kind}")
        yield number, kind, value


def native_histograms(body: bytes) -> set:
    """Names of the families of a length-delimited protobuf exposition that carry native buckets:
    a histogram (MetricFamily field 4, Metric field 7) with a zero threshold (field 6) or positive
    spans (field 12)."""
    names, at = set(), 0
    while at < len(body):
        length = shift = 0
        while True:
            byte = body[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        family, at = body[at:at + length], at + length
        fields = list(protobuf_fields(family))
        name = next(v.decode() for n, _, v in fields if n == 1)
        for number, _, metric in fields:
            if number != 4:
                continue
            for m_number, _, histogram in protobuf_fields(metric):
                if m_number == 7 and any(h in (6, 12) for h, _, _ in protobuf_fields(histogram)):
                    names.add(name)
    return names


def native_reads(queries) -> set:
    """Histograms read by their bare name inside rate() or increase(): as native histograms."""
    return {
        name
        for query in queries
        for name in re.findall(r"\b(?:rate|increase)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", query)
        if not name.endswith(("_bucket", "_count", "_sum", "_total"))
    }


def test_every_native_histogram_the_dashboard_and_rules_read_is_served_as_one(repo, dashboard, running_app, metrics_text):
    queries = prometheus_queries(dashboard) + [rule["expr"] for rule in load_rules(repo)]
    request = urllib.request.Request(running_app.base_url + "/metrics", headers={"Accept": PROTOBUF})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/vnd.google.protobuf")
        served = native_histograms(response.read())

    read = native_reads(queries)
    assert read == {"http_server_request_duration_seconds"}
    assert read <= served, f"served as native histograms: {served}"
    assert served == {"request_processing_seconds", "http_server_request_duration_seconds"}


def test_the_native_panel_sits_beside_a_classic_one(dashboard):
    native = [
        panel for panel in dashboard_panels(dashboard)
        if any(native_reads([target.get("expr", "")]) for target in panel.get("targets", []))
    ]
    assert len(native) == 2, [panel["title"] for panel in native]
    both = [
        panel for panel in native
        if any("_bucket" in target["expr"] for target in panel["targets"])
    ]
    assert len(both) == 1, "one panel sets the classic p99 beside the native one"
    assert all("native" in panel["description"] for panel in native)


# --- the dashboard's shape -----------------------------------------------------------------------

def test_dashboard_is_importable(dashboard):
    assert dashboard["uid"] == "prom-metrics-app"
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None, "an exported id would clash on import"
    ids = [panel["id"] for panel in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_panels_fit_the_grid_without_overlapping(dashboard):
    cells = {}
    for panel in dashboard_panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_template_variables(dashboard):
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["tracing"]["type"] == "datasource"
    assert variables["tracing"]["query"] == "tempo"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert variables["instance"]["includeAll"] and variables["instance"]["allValue"] == ".*"


def test_no_hard_coded_data_source(dashboard):
    """Every data source reference goes through a variable (the built-in annotation excepted)."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                uid = node["datasource"].get("uid")
                found.append((path, uid))
                assert uid in ("${datasource}", "${tracing}", "-- Grafana --"), f"{path}: uid {uid!r}"
            elif isinstance(node.get("datasource"), str):
                pytest.fail(f"{path}: data source given by name {node['datasource']!r}")
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")

    walk(dashboard, "$")
    assert sum(1 for _, uid in found if uid == "${datasource}") >= 20
    assert "__inputs" not in dashboard or all(i.get("type") == "datasource" for i in dashboard["__inputs"])


def test_every_prometheus_target_queries_the_datasource_variable(dashboard):
    for panel in dashboard_panels(dashboard):
        if panel["type"] == "row":
            continue
        for target in panel.get("targets", []):
            if "expr" in target:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
                assert "$job" in target["expr"] or "${job}" in target["expr"], (panel["title"], target["expr"])


def panels_querying(dashboard, needle):
    return [
        (panel, target)
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if needle in target.get("expr", "")
    ]


def test_heatmap_of_the_duration_histogram_with_exemplars(dashboard):
    heatmaps = [
        (panel, target) for panel, target in panels_querying(dashboard, "http_server_request_duration_seconds_bucket")
        if panel["type"] == "heatmap"
    ]
    assert heatmaps, "no heatmap of http_server_request_duration_seconds_bucket"
    for panel, target in heatmaps:
        assert target.get("exemplar") is True
        assert target["format"] == "heatmap"
        assert re.search(r"sum by \(le\)", target["expr"])
        assert panel["options"]["calculate"] is False, "the buckets are already a histogram"
        assert "exemplars" in panel["options"]


def test_latency_quantiles_with_exemplars(dashboard):
    quantiles = {}
    for panel, target in panels_querying(dashboard, "http_server_request_duration_seconds_bucket"):
        match = re.match(r"histogram_quantile\((0\.\d+),", target["expr"])
        if match and "http_route" in target["expr"]:
            quantiles[match.group(1)] = target
            assert target.get("exemplar") is True, target["expr"]
    assert set(quantiles) == {"0.5", "0.9", "0.99"}


def test_required_panels(dashboard):
    def exprs_of(panel):
        return " ".join(target.get("expr", "") for target in panel.get("targets", []))

    panels = [panel for panel in dashboard_panels(dashboard) if panel["type"] != "row"]

    def one(predicate, what):
        assert any(predicate(panel) for panel in panels), what

    one(lambda p: "http_server_request_duration_seconds_count" in exprs_of(p)
        and "by (http_route, http_response_status_code)" in exprs_of(p), "request rate by route and status")
    one(lambda p: '=~"5.."' in exprs_of(p) and p["fieldConfig"]["defaults"].get("unit") == "percentunit", "error ratio")
    one(lambda p: all(m in exprs_of(p) for m in ("http_requests_total", "http_successful_request_total",
                                                  "http_error_4xx_total", "http_error_5xx_total")),
        "the original's counters")
    one(lambda p: "rate(process_cpu_seconds_total" in exprs_of(p), "process CPU")
    one(lambda p: "process_resident_memory_bytes" in exprs_of(p), "resident memory")
    one(lambda p: "process_open_fds" in exprs_of(p) and "process_max_fds" in exprs_of(p), "open vs max fds")
    one(lambda p: all(m in exprs_of(p) for m in ("prom_metrics_app_telemetry_dropped_spans_total",
                                                  "prom_metrics_app_telemetry_failed_spans_total",
                                                  "prom_metrics_app_telemetry_failed_metric_exports_total")),
        "telemetry loss")
    one(lambda p: "prom_metrics_app_build_info" in exprs_of(p), "build info")
    for gauge in CHAOS_GAUGES:
        one(lambda p: p["type"] == "stat" and gauge in exprs_of(p), f"the current {gauge}")
    varying = [g for g in CHAOS_GAUGES if g != "prom_metrics_app_chaos_error_status_code"]
    one(lambda p: p["type"] == "timeseries" and all(g in exprs_of(p) for g in varying), "chaos settings over time")
    one(lambda p: "http_client_request_duration_seconds_count" in exprs_of(p)
        and "by (server_address, server_port, http_response_status_code, error_type)" in exprs_of(p),
        "/chain call rate by server and status")
    one(lambda p: "http_client_request_duration_seconds_count" in exprs_of(p) and 'error_type!=""' in exprs_of(p)
        and p["fieldConfig"]["defaults"].get("unit") == "percentunit", "/chain failed call ratio by server")
    one(lambda p: p.get("datasource", {}).get("uid") == "${tracing}", "traces from the tracing data source")


def test_client_latency_by_server_with_exemplars(dashboard):
    quantiles = [
        target for _, target in panels_querying(dashboard, "http_client_request_duration_seconds_bucket")
        if target["expr"].startswith("histogram_quantile(0.99, sum by (server_address, server_port, le) (rate(")
    ]
    assert quantiles, "no p99 of http_client_request_duration_seconds by server"
    assert all(target.get("exemplar") is True for target in quantiles)


def test_description_explains_the_exemplar_link(dashboard):
    assert "exemplarTraceIdDestinations" in dashboard["description"]
    assert "exemplar-storage" in dashboard["description"]
