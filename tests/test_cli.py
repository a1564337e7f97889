"""The CLI's boundary: flags anywhere, exit statuses, version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT
from mvsync import __version__

MANIFEST = "version: 1\nenvironments:\n  {env}: {{}}\napplications: []\n"


def mvsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture
def two_manifests(tmp_path: Path) -> Path:
    (tmp_path / "flag.yaml").write_text(MANIFEST.format(env="fromflag"))
    (tmp_path / "variable.yaml").write_text(MANIFEST.format(env="fromvariable"))
    return tmp_path


@pytest.mark.parametrize("before", [True, False])
def test_a_file_flag_beats_mvsync_file_before_or_after_the_command(
    two_manifests: Path, before: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVSYNC_FILE", "variable.yaml")
    args = ["-f", "flag.yaml", "envs"] if before else ["envs", "-f", "flag.yaml"]
    done = mvsync(*args, cwd=two_manifests)
    assert (done.returncode, done.stdout) == (0, "fromflag\n")


def test_mvsync_file_is_read_when_no_flag_is_given(
    two_manifests: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVSYNC_FILE", "variable.yaml")
    done = mvsync("envs", cwd=two_manifests)
    assert (done.returncode, done.stdout) == (0, "fromvariable\n")


def test_version_is_printed_by_both_entry_points(tmp_path: Path) -> None:
    # This checkout is an editable install: the commit is the checkout's HEAD.
    head = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    done = mvsync("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"mvsync {__version__} (commit {head})\n")


def test_version_alone_imports_neither_click_nor_the_core() -> None:
    # The fast path of ``mvsync.cli.main``: one line from files, nothing else loaded.
    code = (
        "import sys\n"
        "from mvsync.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = ('click', 'pydantic', 'httpx', 'ruamel.yaml', 'tenacity', 'mvsync.cli.group')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0].startswith(f"mvsync {__version__} (commit ")
    assert done.stdout.splitlines()[-1] == ""


def test_version_of_the_fast_path_is_the_groups_own_line(tmp_path: Path) -> None:
    # --debug first sends --version through click's eager option: the same bytes.
    fast = mvsync("--version", cwd=tmp_path)
    through_click = mvsync("--debug", "--version", cwd=tmp_path)
    assert (fast.returncode, fast.stdout) == (through_click.returncode, through_click.stdout)
    assert through_click.stdout.startswith("mvsync ")


def _version_into_a_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "mvsync", *args],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            check=False,
        )
    finally:
        os.close(writer)


def test_version_to_a_closed_pipe_ends_as_through_click(tmp_path: Path) -> None:
    fast = _version_into_a_closed_pipe("--version", cwd=tmp_path)
    through_click = _version_into_a_closed_pipe("-f", "mvsync.yaml", "--version", cwd=tmp_path)
    assert (fast.returncode, fast.stderr) == (through_click.returncode, through_click.stderr)
    assert fast.returncode == 1
    assert "Traceback" not in fast.stderr


def test_an_unknown_flag_is_a_usage_error_with_exit_1(tmp_path: Path) -> None:
    done = mvsync("validate", "--bogus", cwd=tmp_path)
    assert done.returncode == 1
    assert "No such option '--bogus'" in done.stderr
    assert "Traceback" not in done.stderr


def test_debug_is_accepted_after_the_command_name(two_manifests: Path) -> None:
    done = mvsync("envs", "-f", "flag.yaml", "--debug", cwd=two_manifests)
    assert (done.returncode, done.stdout) == (0, "fromflag\n")


def test_error_messages_cannot_act_on_the_terminal(tmp_path: Path) -> None:
    # A manifest path is quoted in the message: its escape sequence must not reach stderr.
    hostile = "evil\x1b]0;PWNED\x07.yaml"
    done = mvsync("validate", "-f", hostile, cwd=tmp_path)
    assert done.returncode == 1
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "evil\\x1b]0;PWNED\\x07.yaml" in done.stderr
