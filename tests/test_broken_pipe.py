"""Issue 9, item 11: a reader that closes standard output early (``mvsync plan | head -1``).

A real subprocess writes to a real pipe whose read end the test closes after one line;
the output is larger than a pipe's buffer, so the writer meets EPIPE for sure. Each run
is bounded by a timeout so that a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator
from mvsync.store.keys import read_secrets

TIMEOUT = 120
COUNT = 300  # ~300 bytes of plan per application: several pipe buffers (64 KiB)


def write_manifest(tmp_path: Path, url: str) -> None:
    apps = "".join(
        f"  - name: 'App {n:04d} {'x' * 200}'\n    answer_url: https://example.com/{n}\n"
        for n in range(COUNT)
    )
    (tmp_path / "mvsync.yaml").write_text(
        f"version: 1\nenvironments:\n  dev: {{api_url: '{url}'}}\napplications:\n{apps}"
    )


def run_into_head(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run mvsync with stdout into a pipe closed after its first line."""
    environ = {**os.environ, "MINIVOICE_API_KEY": TEST_API_KEY}
    environ.pop("GITHUB_ACTIONS", None)
    with subprocess.Popen(
        [sys.executable, "-m", "mvsync", *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # what `head -1` does once it has its line
        try:
            err = process.stderr.read()
            status = process.wait(timeout=TIMEOUT)
        finally:
            process.kill()
    return status, first, err


def test_plan_into_a_closed_pipe_keeps_status_2_and_says_nothing(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url)
    status, first, err = run_into_head(tmp_path, "plan", "--detailed-exitcode", "-o", "p.json")
    assert first.strip()
    assert (status, err) == (2, "")
    assert (tmp_path / "p.json").stat().st_size > 0  # the plan file was still written


def test_plan_into_a_closed_pipe_without_changes_exits_0(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url)
    status, _first, err = run_into_head(tmp_path, "plan")
    assert (status, err) == (0, "")


def test_apply_into_a_closed_pipe_stores_every_key_and_exits_0(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url)
    status, _first, err = run_into_head(tmp_path, "apply", "--env", "dev", "--yes")
    assert "standard output was closed before all of it was written" in err
    assert status == 0, err
    stored = read_secrets(tmp_path / ".mvsync" / "dev.secrets.yaml")
    assert stored is not None
    assert len(stored.applications) == COUNT
    assert len(emulator.applications(TEST_API_KEY)) == COUNT
