"""``mvsync apply`` with a ``key_sink``, as real processes against the emulator on loopback.

The sink is a real executable (``tests/sinks.py``) that records its stdin, argv and
environment. Each new key reaches it on stdin with no newline; its environment holds
none of mvsync's secrets; a sink that fails, hangs past ``MVSYNC_SINK_TIMEOUT``, echoes
the key, or is running when the apply is killed with SIGKILL loses no key, and the key
is handed on later (delivery is at least once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.store.keys import read_secrets
from sinks import (
    IDENTITY_CANARY,
    STATE_URL_CANARY,
    recorded,
    recording_sink,
    sink_manifest,
)
from test_cli_apply import cli_env, secrets_path, stored


def mvsync_env(**variables: str) -> dict[str, str]:
    """mvsync's environment: the API key, the webhook secret, and (unused here, but
    present) a state URL and an age identity; a token the sink may see."""
    return {
        **cli_env(),
        "MVSYNC_STATE_URL": STATE_URL_CANARY,
        "MVSYNC_AGE_IDENTITY": IDENTITY_CANARY,
        "GH_TOKEN": "ghp_sink_may_see_this",
        **variables,
    }


def mvsync(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml"), *args],
        capture_output=True,
        text=True,
        env=mvsync_env(**variables),
        stdin=subprocess.DEVNULL,
        timeout=90,
    )


def apply(folder: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return mvsync(folder, "apply", "--env", "dev", "--yes", **variables)


def listed(folder: Path) -> dict[str, dict[str, object]]:
    done = mvsync(folder, "keys", "list", "--env", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    return {str(k["name"]): k for k in json.loads(done.stdout)["keys"]}


def wait_for_file(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {path.name}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_new_key_reaches_the_sink_on_stdin_with_its_argv_and_no_secret_of_mvsync(
    emulator: Emulator, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sink_manifest(tmp_path, emulator.url, recording_sink(runs), count=2)
    done = apply(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    issued = emulator.issued_keys(TEST_API_KEY)
    ids = {name: app_id for name, (app_id, _key) in stored(tmp_path).items()}
    seen = recorded(runs)
    assert set(seen) == {"APP_0", "APP_1"}
    for n in range(2):
        run = seen[f"APP_{n}"]
        app_id = ids[f"App {n}"]
        assert run["stdin"] == issued[app_id]  # exactly the key: no newline
        assert run["argv"] == [
            str(runs / "record-sink"),
            f"MINIVOICE_KEY_APP_{n}",
            "--env",
            "dev",
            app_id,
        ]
        env = run["env"]
        assert isinstance(env, dict)
        assert env["MVSYNC_APP_NAME"] == f"App {n}" and env["MVSYNC_APP_ID"] == app_id
        assert env["MVSYNC_ENVIRONMENT"] == "dev" and env["MVSYNC_APP_SLUG"] == f"APP_{n}"
        assert env["GH_TOKEN"] == "ghp_sink_may_see_this"  # listed in key_sink_env
        everything = json.dumps(env) + json.dumps(run["argv"])
        assert_no_secrets(everything)
        for canary in (STATE_URL_CANARY, "pw_STATE_CANARY", IDENTITY_CANARY):
            assert canary not in everything
        assert issued[app_id] not in everything  # the key: stdin only
        assert not {"MV_TEST_KEY", "MV_WEBHOOK_SECRET", "MVSYNC_STATE_URL"} & set(env)
        assert "MVSYNC_AGE_IDENTITY" not in env
    assert "Key sink: 2 keys delivered" in done.stdout
    assert all(entry["delivered"] for entry in listed(tmp_path).values())
    assert_no_secrets(done.stdout + done.stderr, extra=issued.values())


def test_a_failing_sink_leaves_each_key_stored_and_keys_deliver_hands_it_on(
    emulator: Emulator, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sink_manifest(tmp_path, emulator.url, recording_sink(runs), count=2)
    failed = apply(tmp_path, SINK_MODE="fail")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    held = stored(tmp_path)
    issued = emulator.issued_keys(TEST_API_KEY)
    assert {key for _id, key in held.values()} == set(issued.values())  # nothing lost
    for name, (app_id, _key) in held.items():
        assert (
            f'x "{name}" ({app_id}): stored, not delivered to the key sink; '
            "mvsync keys deliver --env dev hands it on"
        ) in failed.stdout
    assert "exited with status 3" in failed.stdout + failed.stderr
    entries = listed(tmp_path)
    assert {(e["delivered"], e["delivered_at"]) for e in entries.values()} == {(False, None)}

    fixed = mvsync(tmp_path, "keys", "deliver", "--env", "dev", SINK_MODE="ok")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    for name, (app_id, key) in held.items():
        assert f'+ delivered "{name}" ({app_id})' in fixed.stdout
        assert recorded(runs)[name.upper().replace(" ", "_")]["stdin"] == key
    entries = listed(tmp_path)
    assert all(e["delivered"] is True and e["delivered_at"] for e in entries.values())
    again = mvsync(tmp_path, "keys", "deliver", "--env", "dev", SINK_MODE="ok")
    assert again.returncode == 0 and "nothing to deliver" in again.stdout
    # The next apply folds the deliveries into the secrets file: none is handed on again
    # (the sink would refuse it now).
    folded = apply(tmp_path, SINK_MODE="fail")
    assert folded.returncode == 0, folded.stdout + folded.stderr
    ledger = read_secrets(secrets_path(tmp_path))
    assert ledger is not None
    assert all(entry.delivered_at for entry in ledger.applications.values())
    for done in (failed, fixed, again, folded):
        assert_no_secrets(done.stdout + done.stderr, extra=issued.values())


def test_a_sink_that_echoes_the_key_never_gets_it_into_mvsyncs_output(
    emulator: Emulator, tmp_path: Path
) -> None:
    sink_manifest(tmp_path, emulator.url, recording_sink(tmp_path / "runs"), count=2)
    done = apply(tmp_path, SINK_MODE="fail")  # it writes the key (and upper-cased) out
    assert done.returncode == 1
    later = mvsync(tmp_path, "keys", "deliver", "--env", "dev", SINK_MODE="fail")
    assert later.returncode == 1
    issued = emulator.issued_keys(TEST_API_KEY).values()
    for run in (done, later):
        text = run.stdout + run.stderr
        assert "refused key *** upper ***" in text  # its stderr's end, masked
        assert "stdout holds" not in text  # its stdout is never shown
        assert_no_secrets(text, extra=issued)


def test_a_sink_that_hangs_past_its_timeout_is_killed_and_no_key_is_lost(
    emulator: Emulator, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sink_manifest(tmp_path, emulator.url, recording_sink(runs), count=1)
    done = apply(tmp_path, SINK_MODE="hang", MVSYNC_SINK_TIMEOUT="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "did not finish within 1s and was killed" in done.stdout + done.stderr
    pid = int((runs / "APP_0.pid").read_text())
    assert not alive(pid)  # killed with its process group, not left behind
    ((app_id, key),) = stored(tmp_path).values()
    assert key == emulator.issued_keys(TEST_API_KEY)[app_id]
    assert listed(tmp_path)["App 0"]["delivered"] is False
    assert_no_secrets(done.stdout + done.stderr, extra=[key])


@pytest.mark.parametrize("then", ["apply", "keys deliver"])
def test_an_apply_killed_while_its_sink_runs_is_delivered_by_the_next_run(
    emulator: Emulator, tmp_path: Path, then: str
) -> None:
    runs = tmp_path / "runs"
    sink_manifest(tmp_path, emulator.url, recording_sink(runs), count=1)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mvsync", "-f", str(tmp_path / "mvsync.yaml")),
            *("apply", "--env", "dev", "--yes"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mvsync_env(SINK_MODE="hang"),
        stdin=subprocess.DEVNULL,
    )
    sink_pid = 0
    try:
        wait_for_file(runs / "APP_0.pid")  # the key is stored: the sink runs
        sink_pid = int((runs / "APP_0.pid").read_text())
        process.kill()  # SIGKILL, between store and delivery
        process.communicate(timeout=30)
    finally:
        if sink_pid and alive(sink_pid):
            os.kill(sink_pid, signal.SIGKILL)  # the sink has its own session: it outlives mvsync
    issued = emulator.issued_keys(TEST_API_KEY)
    assert len(issued) == 1
    (key,) = issued.values()
    assert recorded(runs)["APP_0"]["stdin"] == key  # the store took it once already
    (runs / "APP_0.json").unlink()

    if then == "apply":
        done = apply(tmp_path, SINK_MODE="ok")
        assert "Key sink: 1 key delivered" in done.stdout
    else:
        done = mvsync(tmp_path, "keys", "deliver", "--env", "dev", SINK_MODE="ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert recorded(runs)["APP_0"]["stdin"] == key  # handed on again: at least once
    assert len(emulator.issued_keys(TEST_API_KEY)) == 1  # and not created again
    entry = listed(tmp_path)["App 0"]
    assert entry["delivered"] is True and entry["state"] == "plain"  # still held
    assert_no_secrets(done.stdout + done.stderr, extra=[key])
