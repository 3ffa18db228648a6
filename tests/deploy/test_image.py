"""The container image: the Dockerfile linted by hadolint, the `prebuilt` stage built with buildah
(no daemon, no base image to pull), then run: reachable over loopback, healthy by its own
`healthcheck`, non-root, holding one static binary and writing nothing.

The default final stage compiles from source in a `rust` build image, which cannot be pulled
here; `prebuilt` is the same `runtime` stage plus a binary built by scripts/test with the same
cargo command.
"""

import json
import os
import re
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, app_binary

STORAGE = ["--storage-driver", "vfs"]
IMAGE = "localhost/prom-metrics-app:test"
USER = "65532:65532"


def buildah(*args, check=True, **kwargs):
    result = subprocess.run(["buildah", *STORAGE, *args], capture_output=True, text=True, **kwargs)
    if check:
        assert result.returncode == 0, f"buildah {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def static_musl_binary() -> Path:
    binary = app_binary()
    assert "x86_64-unknown-linux-musl" in str(binary), f"{binary} is not the static musl build"
    return binary


def program_header_types(path: Path):
    """The p_type of every ELF program header (64-bit little-endian only, as built here)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "a 64-bit little-endian ELF"
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_the_dockerfile_has_no_hadolint_findings(repo):
    result = subprocess.run(["hadolint", str(repo / "Dockerfile")], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_the_release_binary_is_static():
    types = program_header_types(static_musl_binary())

    # A static-pie binary keeps a PT_DYNAMIC segment to relocate itself, but asks for no loader.
    PT_INTERP = 3
    assert PT_INTERP not in types, "a dynamic loader is requested"


@pytest.fixture(scope="module")
def image():
    binary = static_musl_binary().relative_to(REPO)
    buildah(
        "bud", "--isolation", "chroot", "--format", "docker", "--layers=false",
        "--target", "prebuilt", "--build-arg", f"BINARY={binary}",
        "--build-arg", "REVISION=test", "-t", IMAGE, str(REPO),
        cwd=REPO, timeout=600,
    )
    yield IMAGE
    buildah("rmi", "-f", IMAGE, check=False)


@pytest.fixture()
def container(image):
    name = buildah("from", "-q", image).stdout.strip()
    yield name
    buildah("rm", name, check=False)


def files_in(container):
    """Every regular file and folder of the container's root filesystem, relative to it."""
    root = Path(buildah("mount", container).stdout.strip())
    try:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    finally:
        buildah("umount", container, check=False)


def test_the_image_runs_as_a_numeric_non_root_user(image):
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["Docker"]["config"]

    assert config["User"] == USER
    assert not config["User"].startswith("0"), "root"


def test_the_image_config_logs_to_stdout_exposes_5000_and_has_labels_and_a_healthcheck(image):
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["Docker"]["config"]

    assert "LOG_TO_STDOUT=true" in config["Env"]
    assert "5000/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["/prom-metrics-app"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/prom-metrics-app", "healthcheck"]
    labels = config["Labels"]
    for key in ["title", "description", "version", "revision", "licenses"]:
        assert labels.get(f"org.opencontainers.image.{key}"), f"label {key} missing: {labels}"
    assert labels["org.opencontainers.image.revision"] == "test"


def test_the_image_holds_the_one_binary_and_reports_its_size(image, container):
    files = files_in(container)
    size = buildah("images", "--format", "{{.Size}}", image).stdout.strip()
    print(f"\nimage {image}: {size}")

    assert files == ["prom-metrics-app"], files


def test_the_container_serves_on_loopback_passes_its_healthcheck_and_writes_nothing(container):
    port = free_port()
    listen = f"127.0.0.1:{port}"
    # A first run lets buildah create its mount points (/dev, /proc, /etc/hosts ...); any file
    # that appears after that was written by the app.
    version = buildah("run", "--isolation", "chroot", "--user", USER, container, "--",
                      "/prom-metrics-app", "--version")
    before = files_in(container)
    server = subprocess.Popen(
        ["buildah", *STORAGE, "run", "--isolation", "chroot", "--user", USER,
         "--env", f"LISTEN_ADDR={listen}", "--env", "OTEL_EXPORTER=none", container,
         "--", "/prom-metrics-app"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        health = wait_for(f"http://{listen}/healthz")
        home = wait_for(f"http://{listen}/")
        metrics = wait_for(f"http://{listen}/metrics")
        check = buildah(
            "run", "--isolation", "chroot", "--user", USER, "--env", f"LISTEN_ADDR=0.0.0.0:{port}",
            container, "--", "/prom-metrics-app", "healthcheck", check=False,
        )
        unhealthy = buildah(
            "run", "--isolation", "chroot", "--user", USER, "--env", f"LISTEN_ADDR=127.0.0.1:{free_port()}",
            container, "--", "/prom-metrics-app", "healthcheck", check=False,
        )
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    assert version.stdout.startswith("prom-metrics-app ")
    assert health[0] == 200 and health[1].strip() == "ok"
    assert home[0] == 200
    assert re.search(r"^http_requests_total 1$", metrics[1], re.M), metrics[1]
    assert check.returncode == 0, check.stdout + check.stderr
    assert unhealthy.returncode == 1, unhealthy.stdout + unhealthy.stderr
    # Logs went to stdout, as the image's LOG_TO_STDOUT says, and no file appeared in the image.
    assert "access" in output and "GET / 200" in output, output
    assert files_in(container) == before


def descendants(pid):
    """Every process below `pid`, children first."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = []
    for child in children:
        found.append(int(child))
        found.extend(descendants(child))
    return found


def test_sigterm_to_the_app_in_a_buildah_container_stops_it_gracefully(container):
    # buildah's chroot runtime forwards no signal: on SIGTERM or SIGINT of its own it kills the
    # container's process outright. The graceful stop is a SIGTERM to the app itself, as the
    # deployment guide says (`pkill -TERM -f '^/prom-metrics-app$'`).
    listen = f"127.0.0.1:{free_port()}"
    runner = subprocess.Popen(
        ["buildah", *STORAGE, "run", "--isolation", "chroot", "--user", USER,
         "--env", f"LISTEN_ADDR={listen}", "--env", "OTEL_EXPORTER=none",
         "--env", "SHUTDOWN_DRAIN_DELAY=0", container, "--", "/prom-metrics-app"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(f"http://{listen}/healthz")
        apps = [
            pid for pid in descendants(runner.pid)
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"/prom-metrics-app"
        ]
        assert len(apps) == 1, apps
        os.kill(apps[0], 15)
        output, _ = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()

    assert runner.returncode == 0, output
    steps = ["received SIGTERM", "listener closed", "requests drained", "telemetry flushed", "exiting"]
    positions = [output.find(step) for step in steps]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), output
