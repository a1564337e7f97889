"""Issue 9, item 9: a FIFO, /dev/zero or a device where mvsync reads or writes a file.

Each file mvsync reads is read through ``mvsync.files.read_bounded`` (regular files only,
opened with O_NONBLOCK, capped while read); each test runs the real CLI in a subprocess
bounded by a timeout, so that a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator
from mvsync.files import UnreadableFileError, read_bounded

TIMEOUT = 20  # seconds; the commands answer in well under one


def mvsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "MINIVOICE_API_KEY": TEST_API_KEY, **(env or {})}
    environ.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def manifest(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "mvsync.yaml"
    path.write_text(
        "version: 1\n"
        f"environments:\n  dev: {{api_url: '{url}'}}\n"
        "applications:\n  - {name: A, answer_url: 'https://example.com/a'}\n"
    )
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["validate", "plan", "envs"])
def test_a_fifo_as_the_manifest_is_refused_at_once(
    tmp_path: Path, fifo: Path, command: str
) -> None:
    done = mvsync("-f", str(fifo), command, cwd=tmp_path)
    assert done.returncode == 1
    assert f"{fifo}: cannot read the manifest: not a regular file (a FIFO)" in done.stderr


def test_dev_zero_as_the_manifest_is_refused_at_once(tmp_path: Path) -> None:
    done = mvsync("-f", "/dev/zero", "validate", cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot read the manifest: not a regular file (a character device)" in done.stderr


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_fifo_or_a_device_as_the_saved_plan_is_refused(
    tmp_path: Path, fifo: Path, emulator: Emulator, kind: str
) -> None:
    manifest(tmp_path, emulator.url)
    plan = str(fifo) if kind == "fifo" else kind
    done = mvsync("apply", "--env", "dev", "--yes", "--plan", plan, cwd=tmp_path)
    assert done.returncode == 1
    assert f"{plan}: cannot read the saved plan: not a regular file" in done.stderr
    assert emulator.applications(TEST_API_KEY) == []


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/null"])
def test_plan_minus_o_never_reads_nor_replaces_a_fifo_or_a_device(
    tmp_path: Path, fifo: Path, emulator: Emulator, target: str
) -> None:
    manifest(tmp_path, emulator.url)
    out = str(fifo) if target == "fifo" else target
    done = mvsync("plan", "-o", out, cwd=tmp_path)
    assert done.returncode == 1
    assert f"refusing to overwrite {out}: it is not a regular file" in done.stderr
    assert fifo.is_fifo()


def test_plan_minus_o_reads_only_the_first_bytes_of_an_existing_file(
    tmp_path: Path, emulator: Emulator
) -> None:
    manifest(tmp_path, emulator.url)
    out = tmp_path / "plan.json"
    assert mvsync("plan", "-o", str(out), cwd=tmp_path).returncode == 0
    # A plan followed by a gigabyte of garbage is still recognised from its head (and a
    # sparse file costs no disk): the old check parsed the whole file.
    with out.open("r+b") as handle:
        handle.truncate(2**30)
    assert mvsync("plan", "-o", str(out), cwd=tmp_path).returncode == 0
    assert out.stat().st_size < 2**20
    (tmp_path / "notes.txt").write_text("my notes\n")
    done = mvsync("plan", "-o", "notes.txt", cwd=tmp_path)
    assert done.returncode == 1
    assert "refusing to overwrite notes.txt: it is not an mvsync plan file" in done.stderr


def test_import_minus_o_refuses_a_fifo(tmp_path: Path, fifo: Path, emulator: Emulator) -> None:
    manifest(tmp_path, emulator.url)
    done = mvsync("import", "--env", "dev", "-o", str(fifo), cwd=tmp_path)
    assert done.returncode == 1
    assert f"refusing to overwrite {fifo}: it is not a regular file" in done.stderr
    assert fifo.is_fifo()


def test_a_fifo_as_github_step_summary_is_refused(
    tmp_path: Path, fifo: Path, emulator: Emulator
) -> None:
    manifest(tmp_path, emulator.url)
    done = mvsync("plan", cwd=tmp_path, env={"GITHUB_STEP_SUMMARY": str(fifo)})
    assert done.returncode == 1
    assert "GITHUB_STEP_SUMMARY" in done.stderr
    assert "not a regular file (a FIFO)" in done.stderr


@pytest.mark.parametrize("which", ["secrets", "journal"])
def test_a_fifo_as_the_secrets_file_or_its_journal_is_refused(
    tmp_path: Path, emulator: Emulator, which: str
) -> None:
    manifest(tmp_path, emulator.url)
    folder = tmp_path / ".mvsync"
    folder.mkdir(mode=0o700)
    name = "dev.secrets.yaml" + (".journal" if which == "journal" else "")
    os.mkfifo(folder / name, 0o600)
    done = mvsync("apply", "--env", "dev", "--yes", cwd=tmp_path)
    assert done.returncode == 1
    assert "not a regular file" in done.stderr
    assert emulator.applications(TEST_API_KEY) == []


def test_a_fifo_as_the_emulator_state_file_is_refused(tmp_path: Path, fifo: Path) -> None:
    done = mvsync("emulator", "--port", "0", "--state", str(fifo), cwd=tmp_path)
    assert done.returncode == 1
    assert "not a regular file (a FIFO)" in done.stderr


def test_the_size_cap_applies_while_reading(tmp_path: Path) -> None:
    # /proc files report a size of 0: only a cap applied while reading stops them.
    path = tmp_path / "big"
    path.write_bytes(b"x" * 5000)
    assert read_bounded(path, 5000) == b"x" * 5000
    with pytest.raises(UnreadableFileError, match="larger than 4,999 bytes"):
        read_bounded(path, 4999)
    assert len(read_bounded(Path("/proc/self/status"), 1 << 20)) > 0
    with pytest.raises(UnreadableFileError, match="larger than 10 bytes"):
        read_bounded(Path("/proc/self/status"), 10)
