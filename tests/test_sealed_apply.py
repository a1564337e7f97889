"""Sealed keys end to end (SPEC 5.2): apply with two recipients writes only ciphertext,
and the real ``age`` CLI opens every entry with either identity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, assert_no_secrets, case_forms
from mvsync.emulator import Emulator
from test_cli_apply import cli_env, command, run

pytestmark = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("age-keygen") is None,
    reason="the age CLI is not installed (.ci/run installs Debian's age)",
)


def make_identity(folder: Path, name: str) -> tuple[Path, str]:
    identity = folder / f"{name}.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return identity, public


def sealed_manifest(folder: Path, url: str, recipients: list[str], count: int = 3) -> Path:
    apps = "".join(
        f"  - name: App {n}\n    answer_url: https://example.com/{n}/answer\n" for n in range(count)
    )
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        "version: 1\n"
        f"recipients: [{', '.join(recipients)}]\n"
        "environments:\n"
        f"  dev:\n    api_url: {url}\n    api_key_env: MV_TEST_KEY\n"
        "defaults:\n"
        "  webhook_url: https://example.com/hooks\n"
        "  webhook_secret: ${MV_WEBHOOK_SECRET}\n"
        f"applications:\n{apps}"
    )
    return manifest


def every_file_text(folder: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("utf-8", "replace") for path in folder.rglob("*") if path.is_file()
    )


def age_decrypt(armor: str, identity: Path) -> str:
    done = subprocess.run(
        ["age", "-d", "-i", str(identity)], input=armor, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_apply_with_two_recipients_writes_only_ciphertext_that_age_opens(
    tmp_path: Path, emulator: Emulator
) -> None:
    from mvsync.store.keys import read_secrets

    keys_dir = tmp_path / "identities"
    keys_dir.mkdir()
    team, team_public = make_identity(keys_dir, "team")
    glass, glass_public = make_identity(keys_dir, "break-glass")
    work = tmp_path / "work"
    work.mkdir()
    sealed_manifest(work, emulator.url, [team_public, glass_public])

    done = run(work, "apply", "--env", "dev", "--yes")

    assert done.returncode == 0, done.stderr
    issued = emulator.issued_keys(TEST_API_KEY)
    assert len(issued) == 3
    stored = read_secrets(work / ".mvsync" / "dev.secrets.yaml")
    assert stored is not None
    assert {entry.id for entry in stored.applications.values()} == set(issued)
    for entry in stored.applications.values():
        assert entry.api_key is None and entry.sealed_api_key is not None
        assert age_decrypt(entry.sealed_api_key, team) == issued[entry.id]
        assert age_decrypt(entry.sealed_api_key, glass) == issued[entry.id]
    # No plaintext key in any file of the workspace, in any case form, nor in the output.
    assert_no_secrets(every_file_text(work), extra=issued.values())
    assert_no_secrets(done.stdout + done.stderr, extra=issued.values())
    assert "sealed with age" in (work / ".mvsync" / "dev.secrets.yaml").read_text()


def test_a_sealed_journal_left_by_a_killed_apply_holds_no_plaintext(
    tmp_path: Path, make_emulator: object
) -> None:
    import signal
    import time

    assert callable(make_emulator)
    slow: Emulator = make_emulator(latency=0.3)
    _identity, public = make_identity(tmp_path, "team")
    work = tmp_path / "work"
    work.mkdir()
    sealed_manifest(work, slow.url, [public], count=20)
    journal = work / ".mvsync" / "dev.secrets.yaml.journal"
    process = subprocess.Popen(
        command(work, "apply", "--env", "dev", "--yes", "--concurrency", "1"),
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b"sealed_api_key" not in (
        journal.read_bytes() if journal.exists() else b""
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert b"sealed_api_key" in journal.read_bytes(), "the kill came before any key"
    issued = list(slow.issued_keys(TEST_API_KEY).values())
    assert issued
    text = every_file_text(work)
    for key in issued:
        for form in case_forms(key):
            assert form not in text
