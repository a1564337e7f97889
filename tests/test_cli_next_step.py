"""CLI output a CI log can be read by, as real processes: retries told on stderr while they
happen, and every error saying the next step (no manifest here, a missing ``--env``, an
environment with nothing under it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mvsync.emulator import Emulator, Fault
from test_cli_apply import cli_env, command, write_manifest


def mvsync(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


# --- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("apply", "--yes"), ("plan",)], ids=["apply", "plan"])
def test_a_retry_is_told_on_stderr_while_it_waits(
    emulator: Emulator, tmp_path: Path, args: tuple[str, ...]
) -> None:
    write_manifest(tmp_path, emulator.url)
    emulator.add_fault(Fault("429", method="GET", retry_after="2"))
    emulator.add_fault(Fault("500", method="GET"))
    process = subprocess.Popen(
        command(tmp_path, args[0], "--env", "dev", *args[1:]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    still_waiting = process.poll() is None
    second = process.stderr.readline()
    out, rest = process.communicate(timeout=60)
    url = f"{emulator.url}/v1/applications"
    assert first == f"mvsync: GET {url} answered 429; retrying in 2 s (2 of 8)\n", first + rest
    assert still_waiting, "the retry was told only after the wait"
    assert second.startswith(f"mvsync: GET {url} answered 500; retrying in "), second + rest
    assert second.endswith(" s (3 of 8)\n")
    assert process.returncode == 0, rest
    assert "retrying" not in out  # stdout stays the result


def test_a_refused_connection_is_told_with_its_own_attempt_count(tmp_path: Path) -> None:
    import socket

    with socket.socket() as reserved:  # a loopback port nothing listens on
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        write_manifest(tmp_path, f"http://127.0.0.1:{port}")
        done = mvsync(tmp_path, "plan")
    assert done.returncode == 1
    assert f"mvsync: GET http://127.0.0.1:{port}/v1/applications: could not connect" in done.stderr
    assert "(2 of 2)" in done.stderr


# --- errors that say the next step ------------------------------------------------------


@pytest.mark.parametrize("args", [("validate",), ("plan",), ("apply", "--env", "prod")])
def test_no_manifest_here_says_to_use_f_or_mvsync_file(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = mvsync(tmp_path, *args)
    assert done.returncode == 1
    assert done.stderr == (
        "mvsync.yaml: cannot read the manifest: No such file or directory; run mvsync in the "
        "manifest's folder, or name it with -f PATH or MVSYNC_FILE=PATH\n"
    )


MANIFEST = """\
version: 1
environments:
  staging: {}
  prod: {}
applications: []
"""


@pytest.mark.parametrize(
    "args",
    [
        ("apply",),
        ("import",),
        ("keys", "list"),
        ("keys", "show", "Support IVR"),
        ("state", "push"),
    ],
    ids=["apply", "import", "keys-list", "keys-show", "state-push"],
)
def test_a_missing_env_lists_the_environments(tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "mvsync.yaml").write_text(MANIFEST)
    done = mvsync(tmp_path, *args)
    assert done.returncode == 1
    assert (
        "Error: Missing option '--env'. mvsync.yaml has: staging, prod (e.g. --env staging)"
        in done.stderr
    )


def test_a_missing_env_after_f_lists_that_manifests_environments(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(MANIFEST.replace("prod", "live"))
    done = mvsync(tmp_path, "apply", "-f", str(other))
    assert done.returncode == 1
    assert f"{other} has: staging, live (e.g. --env staging)" in done.stderr


def test_a_missing_env_without_a_readable_manifest_points_at_envs(tmp_path: Path) -> None:
    done = mvsync(tmp_path, "apply")
    assert done.returncode == 1
    assert "Missing option '--env'. mvsync envs lists the manifest's environments" in done.stderr


def test_an_environment_with_nothing_under_it_suggests_braces(tmp_path: Path) -> None:
    (tmp_path / "mvsync.yaml").write_text(
        "version: 1\nenvironments:\n  staging:\n  prod: {}\napplications: []\n"
    )
    done = mvsync(tmp_path, "validate")
    assert done.returncode == 1
    assert done.stderr == (
        "mvsync.yaml:3:11: environment 'staging': has nothing under it: write `staging: {}` "
        "to take every default\n"
    )


def test_retry_notices_hold_no_secret(emulator: Emulator, tmp_path: Path) -> None:
    from helpers import assert_no_secrets

    write_manifest(tmp_path, emulator.url)
    emulator.add_fault(Fault("429", method="POST", retry_after="0"))  # known not processed
    done = subprocess.run(
        command(tmp_path, "apply", "--env", "dev", "--yes", "--concurrency", "1"),
        capture_output=True,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "POST" in done.stderr and "answered 429; retrying in 0 s (2 of 8)" in done.stderr
    assert_no_secrets(done.stdout + done.stderr)
