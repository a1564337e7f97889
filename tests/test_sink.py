"""``mvsync.sink``: a key sink run as a real process — stdin, argv, environment, failures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.model import KeySink, split_placeholders
from mvsync.sink import SinkError, SinkRunner
from sinks import recorded, recording_sink

KEY = "mv_live_SINKKEY_0123456789abcdef"


def runner(tmp_path: Path, *args: str, timeout: float = 10.0, **environ: str) -> SinkRunner:
    script = recording_sink(tmp_path / "runs")
    sink = KeySink(
        (split_placeholders(str(script)), *(split_placeholders(a) for a in args)),
        ("SINK_MODE", "GH_TOKEN", "MINIVOICE_API_KEY"),
    )
    base = {
        "PATH": os.environ["PATH"],
        "HOME": "/home/someone",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "MINIVOICE_API_KEY": TEST_API_KEY,
        "MV_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "MVSYNC_STATE_URL": "postgresql://u:pw@127.0.0.1/db",
        "MVSYNC_AGE_IDENTITY": "AGE-SECRET-KEY-1XXXX",
        "GH_TOKEN": "ghp_token",
        **environ,
    }
    return SinkRunner(
        sink,
        "prod",
        tmp_path,
        timeout=timeout,
        secrets=(TEST_API_KEY, TEST_WEBHOOK_SECRET, "postgresql://u:pw@127.0.0.1/db"),
        environ=base,
    )


def test_the_key_is_on_stdin_without_newline_and_nowhere_else(tmp_path: Path) -> None:
    done = runner(tmp_path, "MINIVOICE_KEY_{slug}", "--env", "{environment}", "{id}").deliver(
        "Night Shift / Overflow", "app_1", KEY
    )
    assert done.ok, done.problem
    run = recorded(tmp_path / "runs")["NIGHT_SHIFT_OVERFLOW"]
    assert run["stdin"] == KEY
    argv = run["argv"]
    assert isinstance(argv, list)
    assert argv[1:] == ["MINIVOICE_KEY_NIGHT_SHIFT_OVERFLOW", "--env", "prod", "app_1"]
    env = run["env"]
    assert isinstance(env, dict)
    assert KEY not in " ".join(f"{k}={v}" for k, v in env.items())


def test_the_sink_environment_is_its_own_without_any_secret_of_mvsync(tmp_path: Path) -> None:
    runner(tmp_path, "{slug}", OTHER="x").deliver("Support IVR", "app_9", KEY)
    env = recorded(tmp_path / "runs")["SUPPORT_IVR"]["env"]
    assert isinstance(env, dict)
    env.pop("PWD", None)  # the interpreter may set it
    assert env == {
        "PATH": os.environ["PATH"],
        "HOME": "/home/someone",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "GH_TOKEN": "ghp_token",
        "MVSYNC_ENVIRONMENT": "prod",
        "MVSYNC_APP_NAME": "Support IVR",
        "MVSYNC_APP_ID": "app_9",
        "MVSYNC_APP_SLUG": "SUPPORT_IVR",
    }  # MINIVOICE_API_KEY was listed, but holds the API key: left out


def test_a_failing_sink_is_reported_with_its_status_and_masked_stderr(tmp_path: Path) -> None:
    done = runner(tmp_path, "{slug}", SINK_MODE="fail").deliver("A", "app_1", KEY)
    assert done.problem is not None
    assert done.problem.startswith("exited with status 3: line one | refused key *** upper ***")
    assert_no_secrets(done.problem, extra=[KEY])
    assert "stdout holds" not in done.problem


def test_a_hanging_sink_is_killed_after_its_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    done = runner(tmp_path, "{slug}", timeout=1.0, SINK_MODE="hang").deliver("A", "app_1", KEY)
    assert time.monotonic() - started < 20
    assert done.problem == "did not finish within 1s and was killed"
    pid = int((tmp_path / "runs" / "A.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_program_not_found_is_refused_before_anything(tmp_path: Path) -> None:
    sink = KeySink((("no-such-sink-program",), ("{slug}",)))
    with pytest.raises(SinkError, match="'no-such-sink-program' is not found in PATH"):
        SinkRunner(sink, "prod", tmp_path, environ={"PATH": str(tmp_path)}).check()


def test_a_relative_program_is_found_in_the_manifest_folder(tmp_path: Path) -> None:
    script = recording_sink(tmp_path / "bin")
    sink = KeySink((("./bin/" + script.name,), split_placeholders("{slug}")))
    run = SinkRunner(sink, "prod", tmp_path, environ={"PATH": os.environ["PATH"]})
    assert run.check() == str(script)
    assert run.deliver("A b", "app_1", KEY).ok
    assert recorded(tmp_path / "bin")["A_B"]["stdin"] == KEY


def test_an_id_that_would_make_an_option_is_not_run(tmp_path: Path) -> None:
    done = runner(tmp_path, "{id}").deliver("A", "-rf", KEY)
    assert done.problem == "an argument would start with '-' (read as an option): not run"
    assert recorded(tmp_path / "runs") == {}
