"""The JSON form of /view_metrics, from the real binary with each backend, against its published
JSON Schema (docs/view_metrics.schema.json, draft 2020-12)."""

import json
import time

import jsonschema
import pytest

from conftest import RunningApp


@pytest.fixture(scope="module")
def schema(repo):
    schema = json.loads((repo / "docs/view_metrics.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.mark.parametrize("backend", ["prometheus", "otel"])
def test_view_metrics_json_matches_its_schema_with_each_backend(schema, backend):
    # The otel backend shows the SDK's last collection: a short interval brings it soon.
    app = RunningApp({"METRICS_BACKEND": backend, "OTEL_METRIC_EXPORT_INTERVAL": "100"})
    try:
        for path in ["/", "/do_task?seconds=0.01", "/no-such-page", "/status/503"]:
            app.get(path)

        deadline = time.monotonic() + 10
        while True:
            status, body = app.get("/view_metrics", {"Accept": "application/json"})
            collected = status == 200 and json.loads(body)["counters"]["http_requests_total"] == 4
            if collected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        app.stop()

    assert status == 200, body
    snapshot = json.loads(body)
    jsonschema.Draft202012Validator(schema).validate(snapshot)
    assert snapshot["schema_version"] == 1
    assert snapshot["counters"]["http_requests_total"] == 4
    assert snapshot["request_processing_seconds"]["buckets"][-1] == {"le": "+Inf", "count": 4}
    routes = {(s["http_route"], s["http_response_status_code"]) for s in snapshot["http_server_request_duration_seconds"]}
    assert routes == {("/", 200), ("/do_task", 200), ("unmatched", 404), ("/status/{code}", 503)}
    assert (snapshot["process"] is None) == (backend == "otel")
    native = snapshot["request_processing_seconds"]["native"]
    if backend == "otel":
        assert native is None
    else:
        assert native["count"] == 4 and native["schema"] == 3
        assert sum(b["count"] for b in native["buckets"]) + native["zero_count"] == 4
        assert all(s["native"]["count"] == s["count"] for s in snapshot["http_server_request_duration_seconds"])
    assert snapshot["collected_at"] is not None


def test_the_schema_rejects_a_snapshot_without_its_version(schema):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"timestamp": "x"})
