"""The documentation against the product it describes.

- Every shell block marked `<!-- runnable -->` in the README and in docs/ runs as written, with
  bash, in a fresh copy of the repository, with the built binary on the PATH as
  `prom-metrics-app`, and leaves no process behind. `<!-- runnable with the app -->` blocks get
  the app on 127.0.0.1:5000 first, as a reader would have it running.
- docs/configuration.md lists exactly the flags and variables that `--help` lists, for the server,
  `load` and `healthcheck`, with the same defaults; the README's short table agrees with it.
- Every relative link and `#anchor` in the README, docs/ and the other READMEs resolves.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import markdown_text as markdown
from conftest import REPO, app_binary

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINKED = [*DOCS, REPO / "deploy/README.md", REPO / "helm/prom-metrics-app/README.md"]
CONFIGURATION = REPO / "docs/configuration.md"
BLOCK_TIME_LIMIT = 300  # seconds; a first run of scripts/chart may install its tools
# The port a reader's app listens on; `runnable with the app` blocks talk to it.
APP_PORT = 5000


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- Runnable blocks ----------------------------------------------------------------------------


def all_blocks():
    return [block for path in DOCS for block in markdown.runnable_blocks(path)]


def test_every_marker_sits_on_a_shell_block():
    bad = [
        f"{relative(path)}:{number}: {line!r} before {following!r}"
        for path in DOCS
        for number, line, following in markdown.markers(path)
        if not markdown.MARKER.match(line) or following not in markdown.SHELL_FENCES
    ]

    assert not bad, "markers must be `<!-- runnable -->` or `<!-- runnable with the app -->`, " \
        "alone on the line before a ```sh fence:\n" + "\n".join(bad)


def test_the_tour_the_load_the_chain_and_the_chart_are_runnable():
    texts = {relative(path): [b.text for b in markdown.runnable_blocks(path)] for path in DOCS}

    def marked(path, needle):
        return any(needle in text for text in texts[path])

    assert marked("README.md", "traceparent"), "the README's Follow one request"
    assert marked("README.md", "prom-metrics-app load"), "the README's load"
    assert marked("docs/testing-pipelines.md", "/chain"), "the three services of /chain"
    assert marked("docs/deploy.md", "scripts/chart lint"), "the chart rendered and linted"


def app_variables() -> set[str]:
    """Every variable that any command reads, so that the caller's own settings stay out."""
    names = set()
    for command in COMMANDS:
        names |= {entry["env"] for entry in help_entries(command).values() if entry["env"]}
    return names


def block_environment(bindir: Path) -> dict[str, str]:
    unwanted = app_variables() | {"PROM_METRICS_APP_BIN"}
    env = {k: v for k, v in os.environ.items() if k not in unwanted and not k.startswith("OTEL_")}
    env["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    return env


def scratch_repository(tmp_path: Path) -> Path:
    """A copy of the checkout as a reader has it after the quick start: the sources, and the
    build's target/ (shared, for the tools that scripts/test installed there)."""
    work = tmp_path / "repo"
    shutil.copytree(REPO, work, symlinks=True, ignore=shutil.ignore_patterns(".git", "target", "logs"))
    if (REPO / "target").is_dir():
        (work / "target").symlink_to(REPO / "target")
    return work


def ports_in(text: str) -> set[int]:
    return {int(port) for port in re.findall(r"(?:localhost|127\.0\.0\.1):(\d{2,5})\b", text)}


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the app binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_free_ports(ports, limit=30.0):
    deadline = time.monotonic() + limit
    while busy := sorted(p for p in ports if not port_is_free(p)):
        if time.monotonic() > deadline:
            raise AssertionError(f"ports {busy} are in use by another process; the block needs them")
        time.sleep(0.5)


def session_members(session: int):
    """(pid, name) of the live processes of a session, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split(" (", 1)[1].rsplit(") ", 1)
        fields = rest.split()
        if int(fields[3]) == session and fields[0] != "Z":
            members.append((int(stat.parent.name), name))
    return members


def start_app(work: Path, env: dict[str, str]) -> subprocess.Popen:
    """The app as the quick start leaves it running, on loopback. No drain: nothing routes to it."""
    app = subprocess.Popen(
        ["prom-metrics-app", "--listen", f"127.0.0.1:{APP_PORT}"],
        cwd=work, env=env | {"SHUTDOWN_DRAIN_DELAY": "0"},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    line = app.stderr.readline()
    if "listening on" not in line:
        app.kill()
        raise AssertionError(f"the app did not start: {line!r}")
    return app


@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: f"{relative(b.path)}:{b.line}")
def test_the_block_runs_as_written(block, tmp_path):
    work = scratch_repository(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "prom-metrics-app").symlink_to(app_binary())
    env = block_environment(bindir)
    wait_for_free_ports(ports_in(block.text) | ({APP_PORT} if block.with_app else set()))
    app = start_app(work, env) if block.with_app else None
    output = tmp_path / "output.txt"

    with output.open("w") as out:
        shell = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + block.text],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = shell.wait(timeout=BLOCK_TIME_LIMIT)
        except subprocess.TimeoutExpired:
            status = None
    # Whatever the block started and did not stop is still in its session.
    left = [member for member in session_members(shell.pid) if member[0] != shell.pid]
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    if status is None:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    if app:
        app.send_signal(signal.SIGINT)
        app.wait(timeout=30)

    where = f"{relative(block.path)}:{block.line}"
    log = output.read_text()[-4000:]
    assert status is not None, f"{where} ran over {BLOCK_TIME_LIMIT} s:\n{log}"
    assert status == 0, f"{where} exited with {status}:\n{log}"
    assert not left, f"{where} left processes running: {left}\n{log}"


# --- docs/configuration.md against --help -------------------------------------------------------

COMMANDS = [(), ("load",), ("healthcheck",)]
# clap starts an option at column 2 (`-h, --help`) or 6 (`--listen`); wrapped text sits deeper.
ENTRY = re.compile(r"^  (?:-\w, |    )(--[a-z][a-z0-9-]*)")


def bracketed(text: str, key: str):
    """The content of `[key: ...]` in clap's help, brackets inside it included."""
    start = text.find(f"[{key}: ")
    if start < 0:
        return None
    depth, i = 0, start
    while i < len(text):
        depth += {"[": 1, "]": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + len(key) + 3 : i]
        i += 1
    raise AssertionError(f"unbalanced [{key}: in {text!r}")


_help_cache: dict[tuple, dict] = {}


def help_entries(command: tuple) -> dict[str, dict]:
    """flag -> {"env", "default"} for every option that `--help` of a command lists."""
    if command in _help_cache:
        return _help_cache[command]
    result = subprocess.run(
        [str(app_binary()), *command, "--help"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},  # no value shown in [env: X=...]
        capture_output=True, text=True, check=True,
    )
    entries, flag, text = {}, None, []

    def close():
        if flag and flag not in ("--help", "--version"):
            joined = " ".join(" ".join(text).split())
            env = re.search(r"\[env: ([A-Z0-9_]+)", joined)
            default = bracketed(joined, "default")
            entries[flag] = {"env": env and env.group(1), "default": default}

    for line in result.stdout.split("\n"):
        match = ENTRY.match(line)
        if match:
            close()
            flag, text = match.group(1), [line[match.end() :]]
        elif line and not line[0].isspace():
            close()
            flag, text = None, []
        elif flag:
            text.append(line)
    close()
    assert entries, result.stdout
    _help_cache[command] = entries
    return entries


def documented(title: str) -> list[list[str]]:
    return markdown.table(markdown.section(CONFIGURATION.read_text(), title))


def flag_of(cell: str) -> str:
    match = re.search(r"--[a-z][a-z0-9-]*", cell)
    assert match, f"no flag in {cell!r}"
    return match.group(0)


def server_settings() -> dict[str, tuple[str, str]]:
    """variable -> (flag, default) from the table of the server's settings."""
    rows = documented("Settings of the server")
    assert all(len(row) == 4 for row in rows), [row[0] for row in rows if len(row) != 4]
    return {markdown.unquote(row[0]): (markdown.unquote(row[1]), markdown.unquote(row[2])) for row in rows}


def test_the_server_settings_are_those_of_help():
    shown = help_entries(())
    documented_settings = server_settings()

    in_help = {entry["env"]: flag for flag, entry in shown.items()}
    assert None not in in_help, "a server flag without a variable: give the table a row for it"
    assert set(documented_settings) == set(in_help), (
        f"only in --help: {sorted(set(in_help) - set(documented_settings))}; "
        f"only in docs/configuration.md: {sorted(set(documented_settings) - set(in_help))}"
    )
    for variable, (flag, _) in documented_settings.items():
        assert flag == in_help[variable], f"{variable}: the document says {flag}, --help {in_help[variable]}"


def test_the_server_defaults_are_those_of_help():
    shown = help_entries(())

    wrong = [
        f"{variable}: the document says {default!r}, --help {shown[flag]['default']!r}"
        for variable, (flag, default) in server_settings().items()
        if shown[flag]["default"] is not None and markdown.unquote(shown[flag]["default"]) != default
    ]

    assert not wrong, "\n".join(wrong)


def test_serve_has_the_flags_of_the_binary_itself():
    assert help_entries(("serve",)) == help_entries(())


def test_the_load_flags_are_those_of_help():
    shown = help_entries(("load",))
    rows = {flag_of(row[0]): markdown.unquote(row[1]) for row in documented("load")}

    assert set(rows) == set(shown), f"--help: {sorted(shown)}, document: {sorted(rows)}"
    assert not any(entry["env"] for entry in shown.values()), "load reads a variable: document it"
    wrong = [
        f"{flag}: the document says {rows[flag]!r}, --help {entry['default']!r}"
        for flag, entry in shown.items()
        if entry["default"] is not None and markdown.unquote(entry["default"]) != rows[flag]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_healthcheck_flags_are_those_of_help():
    shown = help_entries(("healthcheck",))
    rows = {flag_of(row[0]): row for row in documented("healthcheck")}

    assert set(rows) == set(shown), f"--help: {sorted(shown)}, document: {sorted(rows)}"
    for flag, entry in shown.items():
        variable, default = markdown.unquote(rows[flag][1]), markdown.unquote(rows[flag][2])
        assert variable == (entry["env"] or "none"), f"{flag}: variable {variable}, --help {entry['env']}"
        if entry["default"] is not None:
            assert default == markdown.unquote(entry["default"]), f"{flag}: {default!r}, --help {entry['default']!r}"


def test_the_readme_settings_agree_with_the_full_table():
    readme = (REPO / "README.md").read_text()
    rows = markdown.table(markdown.section(readme, "The settings people change most"))
    full = server_settings()

    assert len(rows) == 10
    for row in rows:
        variable, flag, default = (markdown.unquote(cell) for cell in row[:3])
        assert variable in full, f"{variable} is not in docs/configuration.md"
        assert (flag, default) == full[variable], f"{variable}: README {(flag, default)}, full table {full[variable]}"


# --- Links ---------------------------------------------------------------------------------------


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for path in LINKED:
        for number, target in markdown.links(path.read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            destination = (path.parent / file_part).resolve() if file_part else path
            where = f"{relative(path)}:{number}: {target}"
            if not destination.exists():
                broken.append(f"{where}: no such file")
            elif anchor and destination.suffix == ".md" and anchor not in markdown.anchors(destination.read_text()):
                broken.append(f"{where}: no heading makes #{anchor}")

    assert not broken, "\n".join(broken)
