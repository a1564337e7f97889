"""A sealed secrets folder may live in git (SPEC 5.1): a file without a plaintext key is
accepted whatever its mode, a plaintext one that others may read is refused, and the
folder's own ``.gitignore`` keeps the lock, journal and temporary files out of a commit."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from helpers import assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.store.gitignore import ensure_ignored
from test_cli_apply import run, secrets_path, write_manifest
from test_sealed_apply import make_identity, sealed_manifest

needs_age = pytest.mark.skipif(
    shutil.which("age-keygen") is None, reason="the age CLI is not installed"
)


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    return done.stdout


def sealed_repository(folder: Path, url: str, count: int = 2) -> Path:
    folder.mkdir()
    _identity, recipient = make_identity(folder.parent, "key")
    sealed_manifest(folder, url, [recipient], count=count)
    git(folder, "init", "-q")
    return folder


@needs_age
def test_sealed_file_readable_by_others_is_accepted(emulator: Emulator, tmp_path: Path) -> None:
    folder = sealed_repository(tmp_path / "repo", emulator.url)
    assert run(folder, "apply", "--env", "dev", "--yes").returncode == 0
    secrets = folder / ".mvsync" / "dev.secrets.yaml"
    secrets.chmod(0o644)  # what a git checkout gives
    _identity, recipient = make_identity(tmp_path, "other")
    sealed_manifest(folder, emulator.url, [recipient], count=3)
    listed = run(folder, "keys", "list", "--env", "dev")
    assert listed.returncode == 0, listed.stderr
    applied = run(folder, "apply", "--env", "dev", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert emulator.request_count("POST") == 3
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600  # still written 0600


def test_plain_file_readable_by_others_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    secrets_path(tmp_path).chmod(0o644)
    write_manifest(tmp_path, emulator.url, count=4)
    refused = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert (refused.returncode, emulator.request_count("POST")) == (1, 3)
    assert "plaintext API keys" in refused.stderr and "chmod 600" in refused.stderr
    assert run(tmp_path, "keys", "list", "--env", "dev").returncode == 1
    assert_no_secrets(refused.stdout + refused.stderr)


def test_malformed_file_readable_by_others_is_refused_as_if_plaintext(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    path = secrets_path(tmp_path)
    path.parent.mkdir()
    path.write_text("environment: dev\napi_url: [\n")
    path.chmod(0o644)
    refused = run(tmp_path, "keys", "list", "--env", "dev")
    assert refused.returncode == 1 and "chmod 600" in refused.stderr


@needs_age
def test_git_add_of_the_folder_takes_no_lock_or_journal(emulator: Emulator, tmp_path: Path) -> None:
    folder = sealed_repository(tmp_path / "repo", emulator.url)
    assert run(folder, "apply", "--env", "dev", "--yes").returncode == 0
    mvsync_dir = folder / ".mvsync"
    # A run in doubt leaves its journal and a killed write a temporary file beside it.
    (mvsync_dir / "dev.secrets.yaml.journal").write_text("{}\n")
    (mvsync_dir / ".dev.secrets.yaml.0123456789ab.tmp").write_text("x")
    assert (mvsync_dir / "dev.secrets.yaml.lock").exists()
    git(folder, "add", ".mvsync")
    staged = git(folder, "diff", "--cached", "--name-only").split()
    assert sorted(staged) == [".mvsync/.gitignore", ".mvsync/dev.secrets.yaml"]


@needs_age
def test_a_clone_of_the_committed_folder_applies(emulator: Emulator, tmp_path: Path) -> None:
    folder = sealed_repository(tmp_path / "repo", emulator.url)
    assert run(folder, "apply", "--env", "dev", "--yes").returncode == 0
    git(folder, "add", ".")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "keys")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(folder), str(clone)], check=True, timeout=30)
    sealed_manifest(clone, emulator.url, [make_identity(tmp_path, "k2")[1]], count=3)
    applied = run(clone, "apply", "--env", "dev", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert emulator.request_count("POST") == 3  # the two committed keys were not made again


def test_an_existing_gitignore_is_kept_and_completed(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("notes.txt")
    ensure_ignored(tmp_path / "prod [eu].secrets.yaml")
    ensure_ignored(tmp_path / "prod [eu].secrets.yaml")  # a second run adds nothing
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[0] == "notes.txt"
    assert lines[2:] == [
        "/prod\\ \\[eu\\].secrets.yaml.lock",
        "/prod\\ \\[eu\\].secrets.yaml.journal",
        "/.prod\\ \\[eu\\].secrets.yaml.*.tmp",
        "/prod\\ \\[eu\\].secrets.yaml.pace",
    ]


def test_gitignore_patterns_match_the_names_only(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    ensure_ignored(tmp_path / "prod [eu].secrets.yaml")
    names = ["prod [eu].secrets.yaml.lock", "prod e.secrets.yaml.lock", "poetry.lock"]
    ignored = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", *names], capture_output=True, text=True
    ).stdout.splitlines()
    assert ignored == ["prod [eu].secrets.yaml.lock"]
