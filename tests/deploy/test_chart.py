"""The Helm chart in helm/prom-metrics-app: lint, render, validate and inspect what it renders.

Helm runs in-process through helm-python-sdk (Helm 4's Go library); Kubernetes schemas come from
kubernetes-validate, the rules check from promtool. A missing tool fails the tests, never skips.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python
import jsonschema
import pytest
import yaml

import markdown_text as markdown
from conftest import RunningApp

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm/prom-metrics-app"
RULES = REPO / "deploy/prometheus/rules.yml"
DASHBOARD = REPO / "deploy/grafana/prom-metrics-app.json"
ALL_ON = yaml.safe_load((Path(__file__).parent / "values-all-on.yaml").read_text())
RELEASE, NAMESPACE = "demo", "monitoring-test"
FULLNAME = f"{RELEASE}-prom-metrics-app"
DOWNSTREAM = f"{FULLNAME}-downstream"

DEFAULT_KINDS = {"ServiceAccount", "Service", "Deployment", "Pod"}
OPTIONAL_KINDS = {
    "Secret",
    "ServiceMonitor",
    "PrometheusRule",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "ConfigMap",
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Kinds that downstream.enabled adds a second object of, for the downstream.
DOWNSTREAM_KINDS = {"Deployment", "Service", "ServiceMonitor"}


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def render(chart, values=None):
    """Rendered objects (NOTES.txt left out), in template order."""
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return [
        doc
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def merged(*layers):
    """Deep merge of values dicts, later layers winning."""
    out = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def is_downstream(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "downstream"


def one(objects, kind, downstream=False):
    """The app's one object of a kind, or with downstream=True the downstream's."""
    found = [o for o in objects if o["kind"] == kind and is_downstream(o) == downstream]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container_env(objects, downstream=False):
    container = one(objects, "Deployment", downstream)["spec"]["template"]["spec"]["containers"][0]
    return container.get("env", [])


def env_values(objects, downstream=False):
    return {e["name"]: e.get("value") for e in container_env(objects, downstream)}


@pytest.fixture(scope="module", params=["default", "all-on"])
def variant(request, chart):
    return request.param, render(chart, {} if request.param == "default" else ALL_ON)


# --- Chart metadata and the files shared with deploy/ -------------------------------------------


def test_chart_metadata_fits_helm_3_and_4(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"  # v2 is the chart format both Helm 3 and Helm 4 read
    assert (meta["name"], meta["version"], meta["appVersion"]) == ("prom-metrics-app", "0.1.0", "0.1.0")
    assert meta["type"] == "application" and meta["description"]
    assert meta["kubeVersion"].startswith(">=1.25")


def test_rules_and_dashboard_are_links_to_deploy_not_copies():
    for link, target in [("files/rules.yml", RULES), ("files/prom-metrics-app.json", DASHBOARD)]:
        path = CHART / link
        assert path.is_symlink(), f"{link} must be a symlink, not a second copy"
        assert not os.path.isabs(os.readlink(path)), f"{link} must be relative to work in any checkout"
        assert path.resolve() == target.resolve()


def test_packaged_chart_carries_the_linked_files(chart, tmp_path):
    # `helm package` stores the links' contents: the published chart needs no checkout.
    archive = helm_python.package(CHART, destination=tmp_path)
    with helm_python.Chart.load(archive) as packaged:
        assert render(packaged, ALL_ON) == render(chart, ALL_ON)
    assert one(render(chart, ALL_ON), "PrometheusRule")["spec"]["groups"]


# --- Lint ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["default", "all-on"])
def test_lint_is_clean(values):
    report = helm_python.lint(CHART, values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert not report["errors"] and not problems, report


# --- Kinds ---------------------------------------------------------------------------------------


def test_rendered_kinds(variant):
    name, objects = variant
    kinds = sorted(o["kind"] for o in objects)
    print(f"\nrendered kinds ({name}): {', '.join(kinds)}")
    expected = DEFAULT_KINDS if name == "default" else DEFAULT_KINDS | OPTIONAL_KINDS
    assert set(kinds) == expected
    app_kinds = sorted(o["kind"] for o in objects if not is_downstream(o))
    assert len(app_kinds) == len(set(app_kinds)), "one object of each kind"
    downstream_kinds = sorted(o["kind"] for o in objects if is_downstream(o))
    assert downstream_kinds == ([] if name == "default" else sorted(DOWNSTREAM_KINDS))


def test_notes_tell_how_to_reach_the_app_and_its_metrics(chart):
    notes = chart.render({}, name=RELEASE, namespace=NAMESPACE)["prom-metrics-app/templates/NOTES.txt"]
    assert f"kubectl --namespace {NAMESPACE} port-forward service/{FULLNAME} 5000:5000" in notes
    assert "/metrics" in notes and "No ServiceMonitor was created" in notes
    notes = chart.render(ALL_ON, name=RELEASE, namespace=NAMESPACE)["prom-metrics-app/templates/NOTES.txt"]
    assert "A ServiceMonitor was created" in notes
    otel = chart.render({"config": {"metricsBackend": "otel"}}, name=RELEASE, namespace=NAMESPACE)
    assert "pushes its metrics with OpenTelemetry" in otel["prom-metrics-app/templates/NOTES.txt"]


# --- Kubernetes schemas --------------------------------------------------------------------------


def kubernetes_validate(version, objects, tmp_path):
    """Runs kubernetes-validate --strict from this interpreter's environment; (exit code, output)."""
    tool = Path(sys.executable).parent / "kubernetes-validate"
    assert tool.is_file(), f"{tool} is missing: pip install kubernetes-validate"
    files = []
    for i, obj in enumerate(objects):
        path = tmp_path / f"{i:02d}-{obj['kind']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        files.append(str(path))
    result = subprocess.run(
        [str(tool), "--strict", "--quiet", "-k", version, *files], capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout + result.stderr


# From the oldest release Chart.yaml admits (kubeVersion >=1.25) to the newest kubernetes-validate
# knows. The CRD kinds have no schema there: they are checked against their own below.
@pytest.mark.parametrize("version", ["1.25.0", "1.29.0", "1.31.0", "1.37.0"])
def test_manifests_pass_kubernetes_validate_strict(version, variant, tmp_path):
    _, objects = variant
    builtin = [o for o in objects if o["kind"] not in CRD_KINDS]
    code, output = kubernetes_validate(version, builtin, tmp_path)
    # --quiet prints only warnings and failures: a "no schema found" warning is a failure here.
    assert code == 0 and not output.strip(), output


def test_kubernetes_validate_rejects_an_unknown_field(chart, tmp_path):
    deployment = one(render(chart), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecondz"] = 5
    code, output = kubernetes_validate("1.29.0", [deployment], tmp_path)
    assert code != 0 and "periodSecondz" in output, output


# --- Restricted Pod Security Standard ------------------------------------------------------------

ALLOWED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def restricted_violations(pod_spec):
    """Where a pod spec breaks the "restricted" Pod Security Standard (Kubernetes docs, v1.29+)."""
    bad = []
    pod_sc = pod_spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            bad.append(field)
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            bad.append(f"volume {volume['name']}: {kinds - ALLOWED_VOLUME_TYPES}")
    containers = (pod_spec.get("initContainers") or []) + pod_spec["containers"]
    for c in containers:
        sc = c.get("securityContext") or {}
        where = f"container {c['name']}"

        def effective(field):
            return sc.get(field, pod_sc.get(field))

        if sc.get("privileged"):
            bad.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation is not false")
        if effective("runAsNonRoot") is not True:
            bad.append(f"{where}: runAsNonRoot is not true")
        if effective("runAsUser") in (0, None):
            bad.append(f"{where}: runAsUser is root or unset")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{where}: seccompProfile {seccomp}")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            bad.append(f"{where}: capabilities.drop lacks ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            bad.append(f"{where}: capabilities.add {capabilities['add']}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            bad.append(f"{where}: hostPort")
        # Not in the standard, but required by this chart: the app writes nothing.
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{where}: readOnlyRootFilesystem is not true")
    return bad


def pod_specs(objects):
    """Pod specs by kind; the downstream's Deployment, when there is one, as "downstream"."""
    specs = {o["kind"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment" and not is_downstream(o)}
    specs.update({"downstream": o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment" and is_downstream(o)})
    specs.update({o["kind"]: o["spec"] for o in objects if o["kind"] == "Pod"})
    assert {"Deployment", "Pod"} <= set(specs) <= {"Deployment", "Pod", "downstream"}
    return specs


def test_pods_meet_the_restricted_standard(variant):
    _, objects = variant
    for kind, spec in pod_specs(objects).items():
        assert restricted_violations(spec) == [], kind
        assert spec["automountServiceAccountToken"] is False, kind
        assert spec["securityContext"]["runAsUser"] == spec["securityContext"]["runAsGroup"] == 65532


def test_the_restricted_check_catches_violations(chart):
    spec = pod_specs(render(chart))["Deployment"]
    spec["hostNetwork"] = True
    spec["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    spec["containers"][0]["securityContext"].update(privileged=True, capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})
    assert restricted_violations(spec) == [
        "hostNetwork",
        "volume root: {'hostPath'}",
        "container prom-metrics-app: privileged",
        "container prom-metrics-app: capabilities.add ['SYS_ADMIN']",
    ]


def test_writable_log_folder_is_an_empty_dir_when_not_logging_to_stdout(chart):
    objects = render(chart, {"config": {"logToStdout": False, "logDir": "/data/logs"}})
    spec = pod_specs(objects)["Deployment"]
    assert restricted_violations(spec) == []
    assert spec["volumes"] == [{"name": "logs", "emptyDir": {"sizeLimit": "128Mi"}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "logs", "mountPath": "/data/logs"}]
    env = env_values(objects)
    assert env["LOG_TO_STDOUT"] == "false" and env["LOG_DIR"] == "/data/logs"


# --- Deployment, Service, labels ----------------------------------------------------------------


def test_container_port_probes_and_resources(chart):
    objects = render(chart)
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "prom-metrics-app:0.1.0"
    assert container["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Sized from the measured ~12 MiB resident; no CPU limit on purpose.
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
    assert one(objects, "Service")["spec"]["ports"] == [
        {"name": "http", "port": 5000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_labels_and_selectors(variant):
    _, objects = variant
    selector = {"app.kubernetes.io/name": "prom-metrics-app", "app.kubernetes.io/instance": RELEASE}
    expected = selector | {
        "app.kubernetes.io/version": "0.1.0",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "prom-metrics-app",
        "app.kubernetes.io/managed-by": "Helm",
    }
    for obj in objects:
        labels = obj["metadata"]["labels"]
        if obj["kind"] == "Pod":  # the test hook: see test_hook_pod_is_not_behind_the_service
            continue
        if is_downstream(obj):  # see test_downstream_pods_are_apart_from_the_app
            continue
        assert labels["helm.sh/chart"] == "prom-metrics-app-0.1.0", obj["kind"]
        assert expected.items() <= labels.items(), obj["kind"]
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert expected.items() <= pod_labels.items() and "helm.sh/chart" not in pod_labels
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert one(objects, "Service")["spec"]["selector"] == selector


def test_autoscaling_takes_over_replicas(chart):
    assert one(render(chart), "Deployment")["spec"]["replicas"] == 1
    objects = render(chart, ALL_ON)
    assert "replicas" not in one(objects, "Deployment")["spec"]
    hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}


def test_disruption_budget_and_ingress(chart):
    objects = render(chart, ALL_ON)
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert pdb == {"minAvailable": 1, "selector": one(objects, "Deployment")["spec"]["selector"]}
    pdb = one(render(chart, merged(ALL_ON, {"podDisruptionBudget": {"maxUnavailable": "25%"}})), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "25%" and "minAvailable" not in pdb["spec"]
    ingress = one(objects, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": FULLNAME, "port": {"name": "http"}}}


# --- Downstream ----------------------------------------------------------------------------------


def test_downstream_is_a_second_deployment_and_service_like_the_app(chart):
    objects = render(chart, {"downstream": {"enabled": True}})
    deployment, service = one(objects, "Deployment", downstream=True), one(objects, "Service", downstream=True)

    assert deployment["metadata"]["name"] == service["metadata"]["name"] == DOWNSTREAM
    assert deployment["spec"]["replicas"] == 1
    app_spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    spec = deployment["spec"]["template"]["spec"]
    for field in ("serviceAccountName", "automountServiceAccountToken", "enableServiceLinks",
                  "securityContext", "terminationGracePeriodSeconds"):
        assert spec[field] == app_spec[field], field
    app_container, container = app_spec["containers"][0], spec["containers"][0]
    for field in ("image", "imagePullPolicy", "securityContext", "ports", "livenessProbe", "readinessProbe", "resources"):
        assert container[field] == app_container[field], field
    assert restricted_violations(spec) == []
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == one(objects, "Service")["spec"]["ports"]


def test_app_calls_the_downstream_unless_downstream_url_is_set(chart):
    objects = render(chart, {"downstream": {"enabled": True}, "service": {"port": 8080}})
    assert env_values(objects)["DOWNSTREAM_URL"] == f"http://{DOWNSTREAM}:8080"
    # The downstream is the last hop: it must not call itself.
    assert "DOWNSTREAM_URL" not in env_values(objects, downstream=True)

    # An explicit list wins (values-all-on.yaml sets one).
    assert env_values(render(chart, ALL_ON))["DOWNSTREAM_URL"] == ALL_ON["config"]["downstreamUrl"]
    url = env_values(render(chart, merged(ALL_ON, {"config": {"downstreamUrl": ""}})))["DOWNSTREAM_URL"]
    assert url == f"http://{DOWNSTREAM}:5000"


def test_downstream_pods_are_apart_from_the_app(variant):
    name, objects = variant
    if name == "default":
        assert not [o for o in objects if is_downstream(o)]
        return
    app, downstream = one(objects, "Deployment"), one(objects, "Deployment", downstream=True)
    app_pods = app["spec"]["template"]["metadata"]["labels"]
    downstream_pods = downstream["spec"]["template"]["metadata"]["labels"]
    hook_pod = one(objects, "Pod")["metadata"]["labels"]

    selector = {"app.kubernetes.io/name": "prom-metrics-app-downstream", "app.kubernetes.io/instance": RELEASE}
    assert downstream["spec"]["selector"] == {"matchLabels": selector}
    assert one(objects, "Service", downstream=True)["spec"]["selector"] == selector
    assert downstream_pods["app.kubernetes.io/component"] == "downstream"
    assert downstream_pods["app.kubernetes.io/part-of"] == "prom-metrics-app"
    for obj in objects:
        if is_downstream(obj):
            assert selector.items() <= obj["metadata"]["labels"].items(), obj["kind"]
    # Each Service (and the PodDisruptionBudget) selects its own pods only, never the hook pod.
    app_selector = one(objects, "Service")["spec"]["selector"]
    assert app_selector.items() <= app_pods.items() and not app_selector.items() <= downstream_pods.items()
    assert selector.items() <= downstream_pods.items() and not selector.items() <= app_pods.items()
    assert not selector.items() <= hook_pod.items()
    pdb_selector = one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert not pdb_selector.items() <= downstream_pods.items()


def test_downstream_inherits_config_but_not_faults_or_downstreams(chart):
    own = ALL_ON["downstream"]["config"]["chaos"]
    otel = ALL_ON["config"]["otel"]

    env = env_values(render(chart, ALL_ON), downstream=True)

    assert env == {
        "LISTEN_ADDR": "0.0.0.0:5000",
        "SHUTDOWN_DRAIN_DELAY": "3s",
        "SHUTDOWN_GRACE_PERIOD": "45s",
        "TRACES_EXCLUDED_PATHS": "/healthz,/readyz,/static/*",
        "MAX_HEADER_BYTES": "32768",
        "MAX_BODY_BYTES": "131072",
        "HEADER_READ_TIMEOUT": "5s",
        "MAX_CONNECTIONS": "2048",
        "RESERVED_CONNECTIONS": "256",
        "DOWNSTREAM_TIMEOUT": "1500ms",  # empty in downstream.config: inherited
        "CHAOS_ERROR_RATE": own["errorRate"],
        "CHAOS_ERROR_STATUS": own["errorStatus"],
        "CHAOS_LATENCY": "1.5",
        "CHAOS_JITTER": "500ms",
        "CHAOS_LATENCY_RATE": "1",
        "CHAOS_SEED": own["seed"],
        "METRICS_BACKEND": "prometheus",
        "NATIVE_HISTOGRAM_BUCKET_FACTOR": "1.05",
        "LOG_TO_STDOUT": "true",
        "RUST_LOG": "debug",  # its own
        "OTEL_EXPORTER": "otlp",
        "CONSOLE_FORMAT": "otlp-json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otel["exporterOtlpEndpoint"],
        "OTEL_EXPORTER_OTLP_INSECURE": "false",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500000",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_SDK_DISABLED": "false",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo.monitoring:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://prometheus.monitoring:9090/api/v1/otlp/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://loki.monitoring:3100/otlp/v1/logs",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram",
        "EXPONENTIAL_HISTOGRAM_MAX_SIZE": "80",
        "EXPONENTIAL_HISTOGRAM_MAX_SCALE": "10",
        "OTEL_METRIC_EXPORT_TIMEOUT": "5000",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "OTEL_BSP_EXPORT_TIMEOUT": "5000",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256",
        "OTEL_BLRP_SCHEDULE_DELAY": "2000",
        "OTEL_BLRP_EXPORT_TIMEOUT": "6000",
        "OTEL_BLRP_MAX_QUEUE_SIZE": "8192",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "128",
        "OTEL_ATTRIBUTE_COUNT_LIMIT": "64",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1",  # its own
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "2048",
        "OTEL_PROPAGATORS": "tracecontext,baggage,b3",
        "OTEL_SERVICE_NAME": "demo-app-downstream",  # the app's, plus -downstream
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=obs",
        "OTEL_EXPORTER_OTLP_HEADERS": None,  # from the app's Secret
        "SSL_CERT_FILE": "/etc/ssl/custom/ca.crt",
    }


def test_downstream_takes_no_faults_from_the_app(chart):
    values = {"config": {"chaos": {"errorRate": 0.5, "latency": "1s"}}, "downstream": {"enabled": True}}
    objects = render(chart, values)
    assert chaos_env(env_values(objects)) == {"CHAOS_ERROR_RATE": "0.5", "CHAOS_LATENCY": "1s"}
    assert chaos_env(env_values(objects, downstream=True)) == {}


def test_downstream_false_and_explicit_values_win_over_the_app(chart):
    values = {
        "downstream": {"enabled": True, "replicaCount": 3, "config": {
            "logToStdout": False, "logDir": "/data/logs", "otel": {"serviceName": "payments", "exporterOtlpInsecure": False}
        }},
        "config": {"otel": {"exporterOtlpInsecure": True}},
    }
    objects = render(chart, values)
    deployment = one(objects, "Deployment", downstream=True)
    env = env_values(objects, downstream=True)

    assert deployment["spec"]["replicas"] == 3
    assert env["LOG_TO_STDOUT"] == "false" and env["LOG_DIR"] == "/data/logs"
    assert env["OTEL_SERVICE_NAME"] == "payments"
    assert env["OTEL_EXPORTER_OTLP_INSECURE"] == "false"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "logs", "emptyDir": {"sizeLimit": "128Mi"}}]
    assert restricted_violations(spec) == []
    # The app itself still logs to stdout, with no volume.
    assert env_values(objects)["LOG_TO_STDOUT"] == "true"
    assert "volumes" not in one(objects, "Deployment")["spec"]["template"]["spec"]


def test_notes_tell_how_to_reach_the_downstream(chart):
    def notes(values):
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)["prom-metrics-app/templates/NOTES.txt"]

    assert "Downstream" not in notes({})
    text = notes({"downstream": {"enabled": True}})
    assert f"DOWNSTREAM_URL=http://{DOWNSTREAM}:5000" in text
    assert f"port-forward service/{DOWNSTREAM} 5001:5000" in text
    text = notes(ALL_ON)
    assert "calls config.downstreamUrl" in text and f"http://{DOWNSTREAM}:5000" in text
    assert 'as job "prom-metrics-app-downstream"' in text
    assert "config.chaos sets allowPanic, cpuStress, errorRate, errorStatus, healthy, jitter, latency, latencyRate, memoryStress, ready, seed" in text


# --- ServiceMonitor and PrometheusRule -----------------------------------------------------------

# The parts of the prometheus-operator CRDs (monitoring.coreos.com/v1, v0.7x-0.8x) this chart
# uses, transcribed from their openAPIV3Schema; additionalProperties false as the API server
# prunes and kubectl rejects unknown fields.
DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string"},
        "modulus": {"type": "integer"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "separator": {"type": "string"},
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "targetLabel": {"type": "string"},
    },
}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["selector", "endpoints"],
    "properties": {
        "jobLabel": {"type": "string"},
        # Native histograms: spec-level fields of the CRD (NativeHistogramConfig is inlined in
        # the spec), not endpoint fields.
        "scrapeProtocols": {
            "type": "array",
            "items": {
                "enum": [
                    "PrometheusProto",
                    "OpenMetricsText0.0.1",
                    "OpenMetricsText1.0.0",
                    "PrometheusText0.0.4",
                    "PrometheusText1.0.0",
                ]
            },
        },
        "scrapeClassicHistograms": {"type": "boolean"},
        "scrapeNativeHistograms": {"type": "boolean"},
        "namespaceSelector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
        },
        "selector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"matchLabels": LABELS, "matchExpressions": {"type": "array"}},
        },
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "port": {"type": "string"},
                    "path": {"type": "string"},
                    "scheme": {"type": "string", "enum": ["http", "https"]},
                    "interval": DURATION,
                    "scrapeTimeout": DURATION,
                    "honorLabels": {"type": "boolean"},
                    "relabelings": {"type": "array", "items": RELABEL},
                    "metricRelabelings": {"type": "array", "items": RELABEL},
                    # SafeAuthorization: the credentials come from a Secret key, never inline.
                    "authorization": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["credentials"],
                        "properties": {
                            "type": {"type": "string"},
                            "credentials": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["key"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "key": {"type": "string"},
                                    "optional": {"type": "boolean"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_RULE_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groups"],
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "rules"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": DURATION,
                    "limit": {"type": "integer"},
                    "query_offset": DURATION,
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["expr"],
                            # A rule is an alert or a recording rule, not both.
                            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            "properties": {
                                "alert": {"type": "string"},
                                "record": {"type": "string"},
                                "expr": {"type": ["string", "integer"]},
                                "for": DURATION,
                                "keep_firing_for": DURATION,
                                "labels": LABELS,
                                "annotations": LABELS,
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_service_monitor_scrapes_the_service(chart):
    objects = render(chart, ALL_ON)
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    jsonschema.validate(monitor["spec"], SERVICE_MONITOR_SPEC)
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"] == service["spec"]["selector"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    port_names = {p["name"] for p in service["spec"]["ports"]}
    endpoint = spec["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["port"] in port_names
    assert (endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == ("/metrics", "15s", "10s")
    assert endpoint["relabelings"] == ALL_ON["serviceMonitor"]["relabelings"]
    assert endpoint["metricRelabelings"] == ALL_ON["serviceMonitor"]["metricRelabelings"]
    # The rules select job="prom-metrics-app": the job label is this Service label's value.
    assert service["metadata"]["labels"][spec["jobLabel"]] == "prom-metrics-app"
    assert 'job="prom-metrics-app"' in RULES.read_text()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_service_monitor_asks_for_protobuf_first_and_keeps_the_classic_buckets(chart):
    default = one(render(chart, {"serviceMonitor": {"enabled": True}}), "ServiceMonitor")["spec"]
    all_on = one(render(chart, ALL_ON), "ServiceMonitor")["spec"]
    plain = one(
        render(
            chart,
            {
                "serviceMonitor": {
                    "enabled": True,
                    "scrapeProtocols": [],
                    "scrapeClassicHistograms": None,
                }
            },
        ),
        "ServiceMonitor",
    )["spec"]

    jsonschema.validate(default, SERVICE_MONITOR_SPEC)
    assert default["scrapeProtocols"][0] == "PrometheusProto"
    assert default["scrapeProtocols"][1:] == ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4"]
    assert default["scrapeClassicHistograms"] is True
    assert "scrapeNativeHistograms" not in default
    assert all_on["scrapeNativeHistograms"] is True
    assert not {"scrapeProtocols", "scrapeClassicHistograms", "scrapeNativeHistograms"} & set(plain)
    assert not any("scrape" in key and "Timeout" not in key for key in default["endpoints"][0])


def test_downstream_has_a_service_monitor_of_its_own(chart):
    objects = render(chart, ALL_ON)
    monitor, service = one(objects, "ServiceMonitor", downstream=True), one(objects, "Service", downstream=True)
    app_monitor = one(objects, "ServiceMonitor")

    jsonschema.validate(monitor["spec"], SERVICE_MONITOR_SPEC)
    spec = monitor["spec"]
    assert monitor["metadata"]["name"] == DOWNSTREAM
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert spec["selector"]["matchLabels"] == service["spec"]["selector"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert not app_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["endpoints"] == app_monitor["spec"]["endpoints"]
    # Its own job: the rules select job="prom-metrics-app", so faults injected there raise no alert.
    assert service["metadata"]["labels"][spec["jobLabel"]] == "prom-metrics-app-downstream"


def test_service_monitor_is_refused_with_the_otel_backend(chart):
    # With METRICS_BACKEND=otel, /metrics answers 404: a ServiceMonitor would only raise alerts.
    with pytest.raises(helm_python.HelmError, match="otel backend serves no /metrics"):
        render(chart, merged(ALL_ON, {"config": {"metricsBackend": "otel"}}))
    with pytest.raises(helm_python.HelmError, match="needs downstream.config.metricsBackend prometheus"):
        render(chart, merged(ALL_ON, {"downstream": {"config": {"metricsBackend": "otel"}}}))


def test_prometheus_rule_is_deploy_rules_verbatim(chart, tmp_path):
    rule = one(render(chart, ALL_ON), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    jsonschema.validate(rule["spec"], PROMETHEUS_RULE_SPEC)
    # Equal to the file Prometheus loads outside Kubernetes: one source, no drift.
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH: apt-get install prometheus"
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([promtool, "check", "rules", str(extracted)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana dashboard ---------------------------------------------------------------------------


def test_dashboard_config_map_holds_deploy_dashboard(chart):
    config_map = one(render(chart, ALL_ON), "ConfigMap")
    metadata = config_map["metadata"]
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert metadata["annotations"] == {"grafana_folder": "Demo"}
    assert metadata["namespace"] == "monitoring"
    assert list(config_map["data"]) == ["prom-metrics-app.json"]
    assert json.loads(config_map["data"]["prom-metrics-app.json"]) == json.loads(DASHBOARD.read_text())
    custom = merged(ALL_ON, {"grafanaDashboard": {"label": "dashboards", "labelValue": "prom", "namespace": ""}})
    metadata = one(render(chart, custom), "ConfigMap")["metadata"]
    assert metadata["labels"]["dashboards"] == "prom" and "grafana_dashboard" not in metadata["labels"]
    assert "namespace" not in metadata  # the release's namespace


# --- Environment ---------------------------------------------------------------------------------


def documented_variables():
    """Variables of the server's settings table in docs/configuration.md."""
    text = markdown.section((REPO / "docs/configuration.md").read_text(), "Settings of the server")
    return {markdown.unquote(row[0]) for row in markdown.table(text)}


def test_every_setting_renders_to_its_variable(chart):
    env = env_values(render(chart, ALL_ON))
    otel = ALL_ON["config"]["otel"]
    assert env == {
        "LISTEN_ADDR": "0.0.0.0:5000",
        "SHUTDOWN_DRAIN_DELAY": "3s",
        "SHUTDOWN_GRACE_PERIOD": "45s",
        "TRACES_EXCLUDED_PATHS": "/healthz,/readyz,/static/*",
        "DOWNSTREAM_URL": "http://b.demo:5000,http://c.demo:5000",
        "DOWNSTREAM_TIMEOUT": "1500ms",
        "MAX_HEADER_BYTES": "32768",
        "MAX_BODY_BYTES": "131072",
        "HEADER_READ_TIMEOUT": "5s",
        "MAX_CONNECTIONS": "2048",
        "RESERVED_CONNECTIONS": "256",
        "CHAOS_ERROR_RATE": "0.01",
        "CHAOS_ERROR_STATUS": "503",
        "CHAOS_LATENCY": "200ms",
        "CHAOS_JITTER": "50ms",
        "CHAOS_READY": "true",
        "CHAOS_HEALTHY": "yes",
        "CHAOS_ALLOW_PANIC": "true",
        "CHAOS_CPU_STRESS": "0.01",
        "CHAOS_MEMORY_STRESS": "1Mi",
        "CHAOS_LATENCY_RATE": "0.5",
        "CHAOS_SEED": "42",
        "SYNTHETIC_METRICS": "100",
        "SYNTHETIC_SERIES": "1000",
        "SYNTHETIC_LABELS": "3",
        "SYNTHETIC_TYPE": "histogram",
        "SYNTHETIC_VALUE_INTERVAL": "30s",
        "SYNTHETIC_CHURN": "10m",
        "SYNTHETIC_CHURN_RATIO": "0.25",
        "METRICS_BACKEND": "prometheus",
        "NATIVE_HISTOGRAM_BUCKET_FACTOR": "1.05",
        "LOG_TO_STDOUT": "true",
        "RUST_LOG": "info,access=off",
        "OTEL_EXPORTER": "otlp",
        "CONSOLE_FORMAT": "otlp-json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otel["exporterOtlpEndpoint"],
        "OTEL_EXPORTER_OTLP_INSECURE": "false",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500000",  # an integer, not Go's float form 2.5e+06
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_SDK_DISABLED": "false",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo.monitoring:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://prometheus.monitoring:9090/api/v1/otlp/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://loki.monitoring:3100/otlp/v1/logs",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram",
        "EXPONENTIAL_HISTOGRAM_MAX_SIZE": "80",
        "EXPONENTIAL_HISTOGRAM_MAX_SCALE": "10",
        "OTEL_METRIC_EXPORT_TIMEOUT": "5000",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "OTEL_BSP_EXPORT_TIMEOUT": "5000",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256",
        "OTEL_BLRP_SCHEDULE_DELAY": "2000",
        "OTEL_BLRP_EXPORT_TIMEOUT": "6000",
        "OTEL_BLRP_MAX_QUEUE_SIZE": "8192",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "128",
        "OTEL_ATTRIBUTE_COUNT_LIMIT": "64",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "2048",
        "OTEL_PROPAGATORS": "tracecontext,baggage,b3",
        "OTEL_SERVICE_NAME": "demo-app",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=obs",
        "OTEL_EXPORTER_OTLP_HEADERS": None,  # from the Secret, see below
        "SSL_CERT_FILE": "/etc/ssl/custom/ca.crt",
    }
    # Every variable of docs/configuration.md's table is covered (LOG_DIR only without stdout
    # logging, see test_writable_log_folder_is_an_empty_dir_when_not_logging_to_stdout). The
    # /metrics credentials come from a Secret as a file (metricsAuth, tested on its own), never as
    # a value in the pod spec; basic authentication is left to extraEnv.
    otlp = "OTEL_EXPORTER_OTLP_"
    # Certificates and keys are files: mount their Secret with extraVolumes and extraVolumeMounts,
    # and name the files with extraEnv.
    files = {f"{otlp}{signal}{name}" for signal in ("", "TRACES_", "METRICS_", "LOGS_")
             for name in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE")}
    # Per-signal headers may hold credentials, as the general ones (from the otlpHeaders Secret);
    # a per-signal timeout, compression or TLS switch is rarely wanted: extraEnv sets them.
    per_signal = {f"{otlp}{signal}{name}" for signal in ("TRACES_", "METRICS_")
                  for name in ("HEADERS", "TIMEOUT", "COMPRESSION", "INSECURE")}
    # The same of log records: endpoint and protocol have values, the rest extraEnv.
    logs = {f"{otlp}LOGS_{name}" for name in ("HEADERS", "TIMEOUT", "COMPRESSION", "INSECURE")}
    assert documented_variables() - set(env) == {
        "LOG_DIR",
        "METRICS_AUTH_TOKEN",
        "METRICS_AUTH_TOKEN_FILE",
        "METRICS_AUTH_SCOPE",
        "METRICS_AUTH_USERNAME",
        "METRICS_AUTH_PASSWORD",
        "METRICS_AUTH_PASSWORD_FILE",
    } | files | per_signal | logs


def test_empty_values_leave_variables_unset(chart):
    objects = render(chart)
    assert env_values(objects) == {
        "LISTEN_ADDR": "0.0.0.0:5000",
        "SHUTDOWN_DRAIN_DELAY": "5s",
        "SHUTDOWN_GRACE_PERIOD": "30s",
        "LOG_TO_STDOUT": "true",
    }


# /api/chaos with no CHAOS_* variable set.
CHAOS_DEFAULTS = {
    "error_rate": 0.0, "error_status": 500, "latency_seconds": 0.0, "jitter_seconds": 0.0, "latency_rate": 1.0,
    "ready": True, "healthy": True, "cpu_stress_cores": 0.0, "memory_stress_bytes": 0, "panic_allowed": False,
}


def chaos_env(env):
    return {name: value for name, value in env.items() if name.startswith("CHAOS_")}


@pytest.mark.parametrize(
    "chaos, expected",
    [
        (
            {"errorRate": 0.25, "errorStatus": 503, "latency": "200ms", "jitter": "50ms", "latencyRate": 0.5, "seed": 42},
            {"CHAOS_ERROR_RATE": "0.25", "CHAOS_ERROR_STATUS": "503", "CHAOS_LATENCY": "200ms",
             "CHAOS_JITTER": "50ms", "CHAOS_LATENCY_RATE": "0.5", "CHAOS_SEED": "42"},
        ),
        (
            # Strings stay as written; plain numbers of seconds are durations too.
            {"errorRate": "1", "errorStatus": "429", "latency": 2, "jitter": 0.5, "seed": "18446744073709551615"},
            {"CHAOS_ERROR_RATE": "1", "CHAOS_ERROR_STATUS": "429", "CHAOS_LATENCY": "2",
             "CHAOS_JITTER": "0.5", "CHAOS_SEED": "18446744073709551615"},
        ),
        # Zero is a value, not an empty one.
        ({"errorRate": 0, "latencyRate": 0, "seed": 0}, {"CHAOS_ERROR_RATE": "0", "CHAOS_LATENCY_RATE": "0", "CHAOS_SEED": "0"}),
        ({"errorRate": "", "latency": ""}, {}),
        (
            {"ready": False, "healthy": "no", "allowPanic": True, "cpuStress": 0.5, "memoryStress": "64Mi"},
            {"CHAOS_READY": "false", "CHAOS_HEALTHY": "no", "CHAOS_ALLOW_PANIC": "true",
             "CHAOS_CPU_STRESS": "0.5", "CHAOS_MEMORY_STRESS": "64Mi"},
        ),
        # CHAOS_ALLOW_PANIC only when asked for.
        ({"allowPanic": False, "ready": True}, {"CHAOS_READY": "true"}),
    ],
    ids=["numbers", "strings", "zeros", "empty", "faults", "panic-not-asked"],
)
def test_chaos_settings_render_to_their_variables(chart, chaos, expected):
    assert chaos_env(env_values(render(chart, {"config": {"chaos": chaos}}))) == expected


@pytest.mark.parametrize(
    "chaos, settings",
    [
        (
            {"errorRate": 0.01, "errorStatus": 503, "latency": "200ms", "jitter": "50ms", "latencyRate": "0.5", "seed": 42},
            {"error_rate": 0.01, "error_status": 503, "latency_seconds": 0.2, "jitter_seconds": 0.05, "latency_rate": 0.5},
        ),
        (
            # The largest values the schema accepts: 60 s in all, the largest seed.
            {"errorRate": "1", "errorStatus": "599", "latency": 1.5, "jitter": "58.5s", "latencyRate": 0,
             "seed": "18446744073709551615"},
            {"error_rate": 1.0, "error_status": 599, "latency_seconds": 1.5, "jitter_seconds": 58.5, "latency_rate": 0.0},
        ),
        (
            {"errorRate": ".5", "errorStatus": 400, "latency": "1m", "latencyRate": "0.", "seed": 0},
            {"error_rate": 0.5, "error_status": 400, "latency_seconds": 60.0, "jitter_seconds": 0.0, "latency_rate": 0.0},
        ),
        (
            {"ready": False, "healthy": "off", "allowPanic": True, "cpuStress": "0.01", "memoryStress": "1Mi"},
            {"ready": False, "healthy": False, "panic_allowed": True, "cpu_stress_cores": 0.01,
             "memory_stress_bytes": 1048576},
        ),
    ],
    ids=["typical", "largest", "other-spellings", "faults"],
)
def test_the_app_starts_with_the_rendered_chaos_variables(chart, chaos, settings):
    # The real binary reads what the chart renders: a wrong name would leave a default in
    # /api/chaos, a value the schema lets through but the app refuses would stop it with code 2.
    env = chaos_env(env_values(render(chart, {"config": {"chaos": chaos}})))
    app = RunningApp(env)
    try:
        status, body = app.get("/api/chaos")
    finally:
        app.stop()

    assert status == 200, body
    assert json.loads(body) == {**CHAOS_DEFAULTS, **settings}


def test_the_app_starts_with_the_rendered_synthetic_variables(chart):
    # As with chaos: the real binary reads what the chart renders, and the downstream gets none.
    synthetic = {"metrics": 3, "series": "50", "labels": 2, "type": "counter", "valueInterval": 5,
                 "churn": "1m", "churnRatio": "0.5"}
    objects = render(chart, {"config": {"synthetic": synthetic}, "downstream": {"enabled": True}})
    env = {name: value for name, value in env_values(objects).items() if name.startswith("SYNTHETIC_")}
    assert not [name for name in env_values(objects, downstream=True) if name.startswith("SYNTHETIC_")]
    app = RunningApp(env)
    try:
        status, body = app.get("/api/synthetic")
    finally:
        app.stop()

    assert status == 200, body
    document = json.loads(body)
    del document["truth"]
    assert document == {"metrics": 3, "series_per_metric": 50, "labels": 2, "type": "counter",
                        "value_interval": "5s", "churn": "1m", "churn_ratio": 0.5}


@pytest.mark.parametrize(
    "where, chaos, message",
    [
        ("config", {"latency": "50s", "jitter": "20s"}, "config.chaos: latency (50s) plus jitter (20s) must be at most 60s"),
        ("config", {"latency": "61"}, "must be at most 60s"),
        ("config", {"latency": "1m", "jitter": "1ms"}, "must be at most 60s"),
        ("downstream", {"latency": 59, "jitter": "1001ms"}, "downstream.config.chaos: latency"),
        ("config", {"seed": "18446744073709551616"}, "config.chaos: seed 18446744073709551616 is above"),
    ],
)
def test_chaos_values_the_app_would_refuse_fail_the_render(chart, where, chaos, message):
    # The schema cannot add two durations or compare a seed with 2^64-1; the chart does.
    values = {"config": {"chaos": chaos}}
    if where == "downstream":
        values = {"downstream": {"enabled": True, "config": {"chaos": chaos}}}
    with pytest.raises(helm_python.HelmError, match=re.escape(message)):
        render(chart, values)


def test_extra_env_comes_last(chart):
    extra = [{"name": "FIRST", "value": "1"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    env = container_env(render(chart, {"extraEnv": extra}))
    assert env[-2:] == extra


def test_otlp_headers_from_a_created_secret(chart):
    objects = render(chart, ALL_ON)
    secret = one(objects, "Secret")
    header_env = next(e for e in container_env(objects) if e["name"] == "OTEL_EXPORTER_OTLP_HEADERS")
    ref = header_env["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "OTEL_EXPORTER_OTLP_HEADERS"}
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == ALL_ON["otlpHeaders"]["value"]
    # The value must not leak into the Deployment itself.
    assert ALL_ON["otlpHeaders"]["value"] not in yaml.safe_dump(one(objects, "Deployment"))


def test_otlp_headers_from_an_existing_secret(chart):
    values = merged(ALL_ON, {"otlpHeaders": {"existingSecret": "otlp-auth", "key": "headers", "value": ""}})
    objects = render(chart, values)
    assert "Secret" not in {o["kind"] for o in objects}
    header_env = next(e for e in container_env(objects) if e["name"] == "OTEL_EXPORTER_OTLP_HEADERS")
    assert header_env == {
        "name": "OTEL_EXPORTER_OTLP_HEADERS",
        "valueFrom": {"secretKeyRef": {"name": "otlp-auth", "key": "headers"}},
    }
    with pytest.raises(helm_python.HelmError, match="not both"):
        render(chart, merged(values, {"otlpHeaders": {"value": "a=b"}}))


def test_metrics_token_from_a_secret_reaches_the_app_and_the_service_monitor(chart):
    values = merged(ALL_ON, {"metricsAuth": {"existingSecret": "metrics-token", "key": "bearer", "scope": "all"}})
    objects = render(chart, values)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_values(objects)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "metrics-auth")
    volume = next(v for v in pod["volumes"] if v["name"] == "metrics-auth")
    endpoint = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]

    assert env["METRICS_AUTH_TOKEN_FILE"] == f"{mount['mountPath']}/bearer"
    assert env["METRICS_AUTH_SCOPE"] == "all"
    assert mount["readOnly"] is True
    assert volume["secret"] == {"secretName": "metrics-token", "items": [{"key": "bearer", "path": "bearer"}]}
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "metrics-token", "key": "bearer"}}
    jsonschema.validate(one(objects, "ServiceMonitor")["spec"], SERVICE_MONITOR_SPEC)


def test_metrics_stay_open_without_a_token_secret(chart):
    objects = render(chart, ALL_ON)

    assert "METRICS_AUTH_TOKEN_FILE" not in env_values(objects)
    assert "authorization" not in one(objects, "ServiceMonitor")["spec"]["endpoints"][0]
    with pytest.raises(helm_python.HelmError):
        render(chart, merged(ALL_ON, {"metricsAuth": {"scope": "pages"}}))


@pytest.mark.parametrize("drain,grace", [(0, 0), (5, 30), (3, 45), (10, 600)])
def test_termination_grace_outlasts_the_drain_and_the_shutdown_grace(chart, drain, grace):
    objects = render(chart, {"shutdownDrainDelaySeconds": drain, "shutdownGracePeriodSeconds": grace})
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert env_values(objects)["SHUTDOWN_DRAIN_DELAY"] == f"{drain}s"
    assert env_values(objects)["SHUTDOWN_GRACE_PERIOD"] == f"{grace}s"
    # After the drain and the grace period the app flushes spans and metrics within 5 s.
    assert spec["terminationGracePeriodSeconds"] == drain + grace + 10


# --- Values schema -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "two"},
        {"serviceMonitor": {"enabled": "yes"}},
        {"config": {"metricsBackend": "statsd"}},
        {"config": {"logToStdout": "sometimes"}},
        {"config": {"otel": {"exporterOtlpTimeout": "10s"}}},
        {"config": {"otel": {"tracesSamplerArg": 2}}},
        {"config": {"otel": {"propagators": "jaeger"}}},
        {"config": {"otel": {"consoleFormat": "yaml"}}},
        {"config": {"otel": {"tracesExporter": "zipkin"}}},
        {"config": {"otel": {"exporterOtlpCompression": "zstd"}}},
        {"config": {"otel": {"metricsTemporalityPreference": "sometimes"}}},
        {"config": {"otel": {"metricsDefaultHistogramAggregation": "summary"}}},
        {"config": {"otel": {"exponentialHistogramMaxScale": 21}}},
        {"config": {"otel": {"bspMaxQueueSize": 0}}},
        {"config": {"metricBackend": "otel"}},  # a misspelt key
        {"shutdownGracePeriodSeconds": "30s"},
        {"shutdownDrainDelaySeconds": -1},
        {"config": {"nativeHistogramBucketFactor": "fine"}},
        {"config": {"nativeHistogramBucketFactor": 1}},
        {"serviceMonitor": {"scrapeProtocols": ["Protobuf"]}},
        {"serviceMonitor": {"scrapeClassicHistograms": "yes"}},
        {"config": {"tracesExcludedPaths": "healthz"}},
        {"config": {"downstreamUrl": "b.demo:5000"}},
        {"config": {"downstreamTimeout": "soon"}},
        {"config": {"chaos": {"errorRate": 2}}},
        {"config": {"chaos": {"errorRate": "1.5"}}},
        {"config": {"chaos": {"errorStatus": 200}}},
        {"config": {"chaos": {"errorStatus": "600"}}},
        {"config": {"chaos": {"latency": "soon"}}},
        {"config": {"chaos": {"latency": 61}}},
        {"config": {"chaos": {"jitter": "-1s"}}},
        {"config": {"chaos": {"latencyRate": -0.1}}},
        {"config": {"chaos": {"seed": -1}}},
        {"config": {"chaos": {"seed": 1.5}}},
        {"config": {"chaos": {"seed": "0x2a"}}},
        {"config": {"chaos": {"errorRatio": 0.1}}},  # a misspelt key
        {"config": {"chaos": {"ready": "maybe"}}},
        {"config": {"chaos": {"allowPanic": "yes"}}},  # a boolean only
        {"config": {"chaos": {"cpuStress": 65}}},
        {"config": {"chaos": {"cpuStress": "64.5"}}},
        {"config": {"chaos": {"memoryStress": "lots"}}},
        {"config": {"chaos": {"memoryStress": -1}}},
        {"downstream": {"enabled": "yes"}},
        {"downstream": {"replicas": 2}},
        {"downstream": {"config": {"chaos": {"errorStatus": 200}}}},
        {"downstream": {"config": {"metricBackend": "otel"}}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"unknownTopLevel": 1},
    ],
    ids=lambda v: json.dumps(v, separators=(",", ":")),
)
def test_schema_refuses_wrong_values(chart, values):
    with pytest.raises(helm_python.HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    report = helm_python.lint(CHART, values)
    assert report["errors"], report


def test_schema_accepts_global_values(chart):
    # Set by a parent chart when this one is a dependency.
    assert render(chart, {"global": {"imageRegistry": "registry.example"}})


# --- Chart README --------------------------------------------------------------------------------


def flatten(values, prefix=""):
    """Dotted keys of the leaves: scalars, lists and empty maps."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_readme_values_table_matches_values_yaml():
    rows = re.findall(r"^\| `([^`]+)` \| `(.*)` \| (.*) \|$", (CHART / "README.md").read_text(), re.MULTILINE)
    table = {key: (default, description) for key, default, description in rows}
    assert len(table) == len(rows), "a key appears twice in the table"
    leaves = dict(flatten(yaml.safe_load((CHART / "values.yaml").read_text())))
    assert list(table) == list(leaves), "keys (or their order) differ between README.md and values.yaml"
    for key, value in leaves.items():
        default, description = table[key]
        assert json.loads(default) == value, f"{key}: README says {default}, values.yaml {value!r}"
        assert description.strip(), f"{key} has no description"


# --- Helm test hook ------------------------------------------------------------------------------


def test_hook_pod_runs_healthcheck_against_the_service(variant):
    _, objects = variant
    pod, service = one(objects, "Pod"), one(objects, "Service")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/healthz"
    assert container["command"] == ["/prom-metrics-app", "healthcheck", "--url", url]
    app = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == app["image"]
    assert pod["spec"]["restartPolicy"] == "Never"


def test_hook_pod_is_not_behind_the_service(chart):
    # A test pod matching the selector would become an endpoint, and could probe itself.
    objects = render(chart)
    selector = one(objects, "Service")["spec"]["selector"]
    assert not selector.items() <= one(objects, "Pod")["metadata"]["labels"].items()


def test_hook_command_works_against_the_real_app(running_app):
    # The same command the hook pod runs, with the real binary: 0 on 200, 1 otherwise.
    def healthcheck(path):
        command = [running_app.process.args[0], "healthcheck", "--url", running_app.base_url + path]
        return subprocess.run(command, capture_output=True, text=True, timeout=30).returncode

    assert healthcheck("/healthz") == 0
    assert healthcheck("/no-such-page") == 1
