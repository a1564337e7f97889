"""The real ``pass`` password store as a key sink: ``mvsync apply`` as a real process
against the emulator on loopback, then ``pass show`` gives back the key MiniVoice issued.

Each test has a throwaway GNUPGHOME (a key made with ``gpg --batch --quick-gen-key`` and
no passphrase) and PASSWORD_STORE_DIR, both listed in ``key_sink_env``; the gpg-agent the
test starts is stopped after. Skipped when ``pass`` or ``gpg`` is not installed
(``.ci/run`` installs Debian's ``pass`` and ``gnupg``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.store.keys import read_secrets

pytestmark = pytest.mark.skipif(
    shutil.which("pass") is None or shutil.which("gpg") is None,
    reason="pass and gpg are not installed (apt-get install pass gnupg, as .ci/run does)",
)

GPG_UID = "mvsync test <mvsync-test@example.invalid>"
SINK = ["pass", "insert", "--multiline", "--force", "minivoice/{environment}/{slug}"]


@dataclass(frozen=True)
class PassStore:
    """A password store and the GnuPG home whose key it is encrypted to."""

    gnupg_home: Path
    store_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GNUPGHOME": str(self.gnupg_home),
            "PASSWORD_STORE_DIR": str(self.store_dir),
        }

    def init(self) -> None:
        pass_(self, "init", GPG_UID)

    def show(self, entry: str) -> str:
        return pass_(self, "show", entry).stdout


def pass_(store: PassStore, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["pass", *args],
        env=store.env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def pass_store() -> Iterator[PassStore]:
    """A GnuPG home with one key (no passphrase) and a store folder not yet initialised.

    The home is a short path of its own (not tmp_path): gpg-agent's socket path must fit
    in a Unix socket address."""
    root = Path(tempfile.mkdtemp(prefix="mvgpg-"))
    home = root / "g"
    home.mkdir(mode=0o700)
    store = PassStore(home, root / "store")
    try:
        made = subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", GPG_UID],
            env=store.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        yield store
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env=store.env, capture_output=True, timeout=30
        )
        shutil.rmtree(root, ignore_errors=True)


def write_manifest(folder: Path, url: str) -> None:
    (folder / "mvsync.yaml").write_text(
        "version: 1\n"
        "environments:\n"
        "  prod:\n"
        f"    api_url: {url}\n"
        "    api_key_env: MV_TEST_KEY\n"
        f"    key_sink: {json.dumps(SINK)}\n"
        "    key_sink_env: [PASSWORD_STORE_DIR, GNUPGHOME]\n"
        "defaults:\n"
        "  webhook_url: https://example.com/hooks\n"
        "  webhook_secret: ${MV_WEBHOOK_SECRET}\n"
        "applications:\n"
        "  - name: Support IVR\n"
        "    answer_url: https://example.com/support/answer\n"
        "  - name: Night Shift / Overflow\n"
        "    answer_url: https://example.com/night/answer\n"
    )


def mvsync(folder: Path, store: PassStore, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **store.env,
        "MV_TEST_KEY": TEST_API_KEY,
        "MV_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "MVSYNC_API_DEADLINE": "5",
        "MVSYNC_HTTP_TIMEOUT": "2",
        "MVSYNC_LAG_WINDOW": "0",
        "NO_COLOR": "1",
    }
    env.pop("MVSYNC_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml"), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def issued_by_name(emulator: Emulator) -> dict[str, str]:
    keys = emulator.issued_keys(TEST_API_KEY)
    return {app["name"]: keys[app["id"]] for app in emulator.applications(TEST_API_KEY)}


def delivered(folder: Path) -> dict[str, bool]:
    """Whether the ledger (the secrets file) records each entry's key as delivered."""
    stored = read_secrets(folder / ".mvsync" / "prod.secrets.yaml")
    assert stored is not None
    return {name: entry.delivered_at is not None for name, entry in stored.applications.items()}


def test_apply_puts_each_new_key_in_the_password_store(
    emulator: Emulator, tmp_path: Path, pass_store: PassStore
) -> None:
    pass_store.init()
    write_manifest(tmp_path, emulator.url)
    done = mvsync(tmp_path, pass_store, "apply", "--env", "prod", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    issued = issued_by_name(emulator)
    assert sorted(issued) == ["Night Shift / Overflow", "Support IVR"]
    # Exactly the key: pass insert --multiline reads to EOF, and mvsync sends no newline.
    assert pass_store.show("minivoice/prod/SUPPORT_IVR") == issued["Support IVR"]
    assert (
        pass_store.show("minivoice/prod/NIGHT_SHIFT_OVERFLOW") == issued["Night Shift / Overflow"]
    )
    assert delivered(tmp_path) == {"Night Shift / Overflow": True, "Support IVR": True}
    assert_no_secrets(done.stdout + done.stderr, extra=issued.values())


def test_a_store_not_initialised_fails_then_the_next_apply_delivers(
    emulator: Emulator, tmp_path: Path, pass_store: PassStore
) -> None:
    # No `pass init` yet: pass insert refuses, the keys stay stored, apply exits 1.
    write_manifest(tmp_path, emulator.url)
    failed = mvsync(tmp_path, pass_store, "apply", "--env", "prod", "--yes")
    issued = issued_by_name(emulator)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    output = failed.stdout + failed.stderr
    assert 'the key sink did not take the key of "Support IVR"' in output
    assert "exited with status 1" in output
    assert "mvsync keys deliver --env prod" in output
    assert_no_secrets(output, extra=issued.values())
    assert delivered(tmp_path) == {
        "Night Shift / Overflow": False,
        "Support IVR": False,
    }
    pass_store.init()
    again = mvsync(tmp_path, pass_store, "apply", "--env", "prod", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert issued_by_name(emulator) == issued  # nothing created twice
    assert pass_store.show("minivoice/prod/SUPPORT_IVR") == issued["Support IVR"]
    assert delivered(tmp_path) == {"Night Shift / Overflow": True, "Support IVR": True}
    assert_no_secrets(again.stdout + again.stderr, extra=issued.values())
