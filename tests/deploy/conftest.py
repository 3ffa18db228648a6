"""Shared fixtures for the deployment checks: paths, and the real binary serving on loopback.

The binary is PROM_METRICS_APP_BIN when set (scripts/test sets it to the static musl build), else the
first build found under target/. A missing binary fails the tests: nothing here is ever skipped.
"""

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def app_binary() -> Path:
    candidates = [
        os.environ.get("PROM_METRICS_APP_BIN"),
        REPO / "target/x86_64-unknown-linux-musl/release/prom-metrics-app",
        REPO / "target/release/prom-metrics-app",
        REPO / "target/debug/prom-metrics-app",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise AssertionError("no prom-metrics-app binary: run cargo build first (scripts/test does)")


class RunningApp:
    """The binary listening on a free loopback port, logging to stdout."""

    def __init__(self, extra_env=None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LISTEN_ADDR": "127.0.0.1:0",
            "OTEL_EXPORTER": "none",
            "LOG_TO_STDOUT": "true",
        }
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [str(app_binary())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stderr.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"the app did not start: {line!r}")
        self.base_url = f"http://{match.group(1)}"

    def get(self, path, headers=None):
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def downstreams():
    """Two instances for the app's /chain to call: a healthy one, and one that answers every
    counted request with an injected 503 (CHAOS_ERROR_RATE=1)."""
    quick_stop = {"SHUTDOWN_DRAIN_DELAY": "0"}  # no load balancer to drain from
    healthy = RunningApp(quick_stop)
    failing = RunningApp(quick_stop | {"CHAOS_ERROR_RATE": "1", "CHAOS_ERROR_STATUS": "503"})
    yield healthy, failing
    healthy.stop()
    failing.stop()


@pytest.fixture(scope="session")
def running_app(downstreams):
    app = RunningApp({"DOWNSTREAM_URL": ",".join(d.base_url for d in downstreams)})
    yield app
    app.stop()


@pytest.fixture(scope="session")
def metrics_text(running_app) -> str:
    """The app's real /metrics after a few requests of every outcome (2xx, 4xx, a slow one), and a
    /chain whose calls succeed and fail: the client histogram's series, with a status and an
    error_type, exist only after such calls."""
    for path in ["/", "/index", "/do_task?seconds=0.01", "/no-such-page", "/do_task?seconds=abc"]:
        running_app.get(path)
    status, body = running_app.get("/chain", headers={"Accept": "application/json"})
    assert status == 502 and "answered 503" in body, body  # the failing downstream's answer
    time.sleep(0.1)
    status, body = running_app.get("/metrics")
    assert status == 200, body
    return body
