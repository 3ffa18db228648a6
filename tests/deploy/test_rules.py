"""The Prometheus rules (deploy/prometheus/rules.yml) and their unit tests (rules.test.yml), with
Debian's promtool. A missing promtool fails these tests."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path("deploy/prometheus/rules.yml")
RULE_TESTS = Path("deploy/prometheus/rules.test.yml")
JOB = "prom-metrics-app"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (scripts/test does)"
    return path


def run_promtool(*args, cwd=None):
    return subprocess.run([promtool(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rules(repo) -> list:
    data = yaml.safe_load((repo / RULES).read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def rule_tests(repo) -> dict:
    return yaml.safe_load((repo / RULE_TESTS).read_text())


def alerts(rules):
    return [rule for rule in rules if "alert" in rule]


def recordings(rules):
    return [rule for rule in rules if "record" in rule]


def parse_series(text: str):
    """'name{a="b", c="d"}' -> (name, {a: b, c: d})."""
    match = re.fullmatch(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*", text)
    assert match, text
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', match.group(2) or ""))
    return match.group(1), labels


def test_promtool_check_rules_is_clean(repo):
    result = run_promtool("check", "rules", RULES, cwd=repo)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output, output
    assert not [line for line in output.splitlines() if "WARNING" in line.upper()], output


def test_promtool_test_rules_passes(repo):
    result = run_promtool("test", "rules", RULE_TESTS, cwd=repo)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output, output


def test_the_unit_tests_load_the_rules_file(rule_tests):
    assert rule_tests["rule_files"] == ["rules.yml"]


def test_every_alert_is_shown_firing_and_not_firing(rules, rule_tests):
    firing, quiet = set(), set()
    for case in rule_tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts(rules)}
    assert len(names) >= 4
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown not firing"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


# Recording rules over native histograms: promtool 2.42 cannot load native histogram series, so
# these are checked against a real Prometheus scraping the app (tests/api/prometheus.rs).
NATIVE_RECORDINGS = {"job:http_server_request_duration_seconds:histogram_quantile_native_rate5m"}


def test_native_recordings_read_the_native_histogram_and_are_checked_end_to_end(repo, rules):
    native = [rule for rule in recordings(rules) if rule["record"] in NATIVE_RECORDINGS]
    assert len(native) == len(NATIVE_RECORDINGS)
    end_to_end = (repo / "tests/api/prometheus.rs").read_text()
    for rule in native:
        assert "_bucket" not in rule["expr"] and " le" not in rule["expr"], rule["record"]
        assert rule["record"] in end_to_end, f"tests/api/prometheus.rs does not check {rule['record']}"


def test_every_recording_rule_is_checked_for_its_value(rules, rule_tests):
    samples = []
    for case in rule_tests["tests"]:
        for check in case.get("promql_expr_test", []):
            for sample in check.get("exp_samples", []):
                name, labels = parse_series(sample["labels"])
                samples.append((name, labels, check["expr"]))
    for rule in recordings(rules):
        if rule["record"] in NATIVE_RECORDINGS:
            continue
        wanted = rule.get("labels", {})
        hits = [
            expr for name, labels, expr in samples
            if name == rule["record"] and rule["record"] in expr
            and all(labels.get(key) == value for key, value in wanted.items())
        ]
        assert hits, f"no promql_expr_test checks {rule['record']} {wanted}"


def test_the_expected_alerts_exist(rules):
    names = {rule["alert"] for rule in alerts(rules)}
    assert {
        "PromMetricsAppHigh5xxRatio",
        "PromMetricsAppHighLatencyP99",
        "PromMetricsAppTargetDown",
        "PromMetricsAppRequestsAbsent",
    } <= names


def test_alerts_have_severity_summary_description_and_a_pending_period(rules):
    for rule in alerts(rules):
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert re.fullmatch(r"PromMetricsApp[A-Z][A-Za-z0-9]+", rule["alert"])


def test_alerts_and_recordings_are_scoped_to_the_job(rules):
    for rule in rules:
        uses_recording = re.search(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", rule["expr"])
        assert f'job="{JOB}"' in rule["expr"] or uses_recording, rule


def test_recording_rules_follow_the_naming_convention(rules):
    for rule in recordings(rules):
        level, metric, operations = rule["record"].split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level) and metric and operations, rule["record"]
        # The level names the labels kept: every one of them is in the by clause.
        grouping = re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"])
        assert grouping, rule["record"]
        kept = {label.strip() for label in grouping[0].split(",")}
        assert "job" in kept, rule["record"]
        if level.startswith("job_route"):
            assert "http_route" in kept, rule["record"]
        assert operations.endswith("5m") and "[5m]" in rule["expr"], rule["record"]


def test_uses_recording_rules_in_alerts(rules):
    records = {rule["record"] for rule in recordings(rules)}
    by_name = {rule["alert"]: rule["expr"] for rule in alerts(rules)}
    for name in ("PromMetricsAppHigh5xxRatio", "PromMetricsAppHighLatencyP99"):
        assert any(record in by_name[name] for record in records), name


def test_no_helm_template_syntax(repo):
    """The file is the Helm chart's PrometheusRule spec verbatim: every {{ }} is a Prometheus
    template over $labels or $value, never a Helm action."""
    text = (repo / RULES).read_text()
    actions = re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, re.S)
    assert actions, "the annotations use $labels"
    for action in actions:
        assert action.startswith("$"), f"not a Prometheus template: {{{{ {action} }}}}"
    assert ".Values" not in text and ".Release" not in text


# --- the unit tests bite: a broken alert makes promtool test rules fail --------------------------

@pytest.mark.parametrize("mutation", ["never", "always"])
def test_unit_tests_fail_when_an_alert_is_broken(repo, rules, tmp_path, mutation):
    """For each alert, a copy of the rules where that alert never fires (or always fires) must fail
    the unit tests: the firing and the not-firing cases are real."""
    data = yaml.safe_load((repo / RULES).read_text())
    shutil.copy(repo / RULE_TESTS, tmp_path / "rules.test.yml")
    survivors = []
    for name in [rule["alert"] for rule in alerts(rules)]:
        mutated = yaml.safe_load(yaml.safe_dump(data))
        for group in mutated["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    rule["expr"] = f'vector({0 if mutation == "never" else 1}) > 0'
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(mutated, sort_keys=False))
        result = run_promtool("test", "rules", tmp_path / "rules.test.yml")
        if result.returncode == 0:
            survivors.append(name)
    assert not survivors, f"the unit tests still pass when these alerts {mutation} fire: {survivors}"
