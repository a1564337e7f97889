"""``mvsync emulator`` as a real process: serves, stops cleanly, survives kill -9 with --state."""

from __future__ import annotations

import ast
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from helpers import REPO_ROOT, TEST_API_KEY, assert_no_secrets
from mvsync.emulator.state import Store

APPS = "/v1/applications"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
BODY = {"name": "Support IVR", "answer_url": "https://example.com/minivoice/answer"}
READY_PREFIX = "mvsync emulator: serving the MiniVoice API on "

StartCli = Callable[..., tuple[subprocess.Popen[str], str]]


def mvsync(*args: str) -> list[str]:
    return [sys.executable, "-m", "mvsync", *args]


def wait_ready(process: subprocess.Popen[str], deadline: float = 20.0) -> str:
    """The URL the emulator prints once listening (fails the test if it never does)."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(deadline):
            process.kill()
            pytest.fail("the emulator printed nothing")
    line = process.stdout.readline()
    if not line.startswith(READY_PREFIX):
        process.kill()
        pytest.fail(f"unexpected first line {line!r}; stderr: {process.communicate()[1]!r}")
    return line.removeprefix(READY_PREFIX).split(" ", 1)[0]


@pytest.fixture
def start_cli() -> Iterator[StartCli]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            mvsync("emulator", "--port", "0", "--api-key", TEST_API_KEY, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process, wait_ready(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_the_cli_serves_the_api(start_cli: StartCli) -> None:
    _process, url = start_cli()
    assert httpx.post(url + APPS, json=BODY, headers=AUTH).status_code == 201


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_cli_exits_0_when_interrupted(start_cli: StartCli, signum: int) -> None:
    process, url = start_cli()
    httpx.get(url + APPS, headers=AUTH)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Traceback" not in err


def test_the_cli_exits_0_with_an_idle_keep_alive_connection_open(start_cli: StartCli) -> None:
    process, url = start_cli()
    with httpx.Client(headers=AUTH) as client:
        client.get(url + APPS)  # the connection stays open in the pool
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_the_cli_output_shows_no_key(start_cli: StartCli) -> None:
    process, url = start_cli()
    issued_key = httpx.post(url + APPS, json=BODY, headers=AUTH).json()["api_key"]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert_no_secrets(out + err, extra=[issued_key])


def test_the_cli_fault_flag_injects_a_fault_at_start(start_cli: StartCli) -> None:
    _process, url = start_cli("--fault", "429:GET:1:7")
    response = httpx.get(url + APPS, headers=AUTH)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_the_cli_latency_flag_sets_the_latency(start_cli: StartCli) -> None:
    _process, url = start_cli("--latency-ms", "5")
    assert httpx.get(url + "/_emulator/latency").json() == {"seconds": 0.005}


def test_a_bad_fault_flag_exits_1_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        mvsync("emulator", "--port", "0", "--fault", "teapot"), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("mvsync: error: --fault teapot: unknown fault kind")
    assert "Traceback" not in result.stderr


def test_a_port_in_use_exits_1_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            mvsync("emulator", "--port", port), capture_output=True, text=True, timeout=20
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_state_survives_a_cli_restart(start_cli: StartCli, tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    process, url = start_cli("--state", str(state))
    created = httpx.post(url + APPS, json=BODY, headers=AUTH).json()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    _again, url = start_cli("--state", str(state))
    assert httpx.get(url + APPS, headers=AUTH).json()["data"][0]["id"] == created["id"]


def test_kill_9_during_creates_leaves_every_answered_create_in_the_state_file(
    start_cli: StartCli, tmp_path: Path
) -> None:
    state = tmp_path / "state.jsonl"
    process, url = start_cli("--state", str(state))
    answered: list[str] = []
    many_done = threading.Event()

    def create_until_killed() -> None:
        with httpx.Client(headers=AUTH, timeout=5.0) as client:
            try:
                while True:
                    answered.append(client.post(url + APPS, json=BODY).json()["id"])
                    if len(answered) >= 200:
                        many_done.set()
            except httpx.HTTPError:
                many_done.set()

    workers = [threading.Thread(target=create_until_killed) for _ in range(3)]
    for worker in workers:
        worker.start()
    many_done.wait(20)
    os.kill(process.pid, signal.SIGKILL)
    for worker in workers:
        worker.join(20)
    stored = Store((TEST_API_KEY,), state)
    customer_id = stored.customer_of(TEST_API_KEY)
    assert customer_id is not None
    stored_ids = {app.id for app in stored.apps_of(customer_id)}
    assert len(answered) >= 200
    assert set(answered) <= stored_ids


def test_emulator_help_does_not_import_the_emulator_or_httpx() -> None:
    code = (
        "import sys\n"
        "from mvsync.cli import cli\n"
        "try:\n"
        "    cli.main(['emulator', '--help'], standalone_mode=False)\n"
        "finally:\n"
        "    print(sorted(m for m in ('mvsync.emulator', 'httpx') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "/_emulator/faults" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_module_but_the_emulator_cli_imports_the_emulator() -> None:
    package = REPO_ROOT / "src" / "mvsync"
    importers = set()
    for path in package.rglob("*.py"):
        if (package / "emulator") in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(
                name == "mvsync.emulator" or name.startswith("mvsync.emulator.") for name in names
            ):
                importers.add(path.relative_to(package).as_posix())
    assert importers <= {"cli/emulator.py"}


def test_the_emulator_cli_imports_the_emulator_only_inside_the_command() -> None:
    tree = ast.parse((REPO_ROOT / "src" / "mvsync" / "cli" / "emulator.py").read_text())
    top_level = [
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ]
    assert not [module for module in top_level if module.startswith("mvsync.emulator")]
