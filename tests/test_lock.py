"""mvsync.store.lock: one apply per environment; a killed holder never deadlocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.cli import main
from mvsync.emulator import Emulator
from mvsync.errors import LockError
from mvsync.store.keys import SecretEntry, SecretsFile, write_secrets
from mvsync.store.lock import EnvironmentLock, lock_path

HOLD_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mvsync.store.lock import EnvironmentLock
    command = sys.argv[2] if len(sys.argv) > 2 else "mvsync apply --env holder"
    lock = EnvironmentLock(Path(sys.argv[1]), command=command)
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def start_holder(path: Path, *command: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(path), *command], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    holder = start_holder(path)
    try:
        with pytest.raises(LockError) as refused:
            EnvironmentLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    message = str(refused.value)
    assert f"pid {holder.pid}" in message
    assert "mvsync apply --env holder" in message


def test_a_holder_whose_command_holds_a_newline_is_named_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    holder = start_holder(path, "mvsync apply\nmvsync: error: forged\x1b[31m")
    try:
        with pytest.raises(LockError) as refused:
            EnvironmentLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    message = str(refused.value)
    assert "\n" not in message and "\x1b" not in message
    assert "\\x0a" in message


def test_lock_timeout_waits_then_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    holder = start_holder(path)
    try:
        with pytest.raises(LockError, match=r"after waiting 0\.3s") as refused:
            EnvironmentLock(path, timeout=0.3).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert f"pid {holder.pid}" in str(refused.value)


def test_lock_of_a_kill9_holder_is_free(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    holder = start_holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = EnvironmentLock(path)
    lock.acquire()
    lock.release()
    assert path.exists()


def test_released_lock_can_be_taken_again_in_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    with EnvironmentLock(path), pytest.raises(LockError):
        EnvironmentLock(path).acquire()
    with EnvironmentLock(path) as again:
        assert again.path == path


def test_lock_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    previous = os.umask(0)
    try:
        with EnvironmentLock(path):
            pass
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600


SECRETS_TEXT = b'environment: "dev"\napi_url: "u"\napplications: {}\n'


def _precious(tmp_path: Path) -> Path:
    target = tmp_path / "dev.secrets.yaml"
    target.write_bytes(SECRETS_TEXT)
    target.chmod(0o600)
    return target


def test_a_lock_that_is_a_symbolic_link_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    target = _precious(tmp_path)
    path = tmp_path / "dev.secrets.yaml.lock"
    path.symlink_to(target)
    with pytest.raises(LockError, match="the lock file is a symbolic link"):
        EnvironmentLock(path).acquire()
    assert target.read_bytes() == SECRETS_TEXT


def test_a_dangling_symbolic_link_is_refused_and_nothing_created(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LockError, match="symbolic link"):
        EnvironmentLock(path).acquire()
    assert not (tmp_path / "elsewhere").exists()


def test_a_lock_hard_linked_to_another_file_is_refused_and_kept(tmp_path: Path) -> None:
    target = _precious(tmp_path)
    path = tmp_path / "dev.secrets.yaml.lock"
    os.link(target, path)
    with pytest.raises(LockError, match="other hard links"):
        EnvironmentLock(path).acquire()
    assert target.read_bytes() == SECRETS_TEXT


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "s.yaml.lock"
    if kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises(LockError, match=r"s\.yaml\.lock: .*(not a regular file|cannot open)"):
        EnvironmentLock(path).acquire()


def test_a_file_that_holds_something_else_is_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    path.write_bytes(SECRETS_TEXT)
    with pytest.raises(LockError, match="not an mvsync lock file"):
        EnvironmentLock(path).acquire()
    assert path.read_bytes() == SECRETS_TEXT


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml.lock"
    path.write_text('{"pid": 1, "host": "h", "started": "t", "command": "mvsync apply"}')
    with EnvironmentLock(path, command="mvsync apply --env now"):
        assert "--env now" in path.read_text()


def test_apply_with_a_lock_linked_to_the_secrets_file_keeps_the_keys(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        "version: 1\nenvironments:\n"
        f"  dev:\n    api_url: {emulator.url}\n    api_key_env: MV_TEST_KEY\n"
        "applications:\n  - name: New\n    answer_url: https://example.com/new\n"
    )
    stored = tmp_path / ".mvsync" / "dev.secrets.yaml"
    stored.parent.mkdir(mode=0o700)
    key = "mv_live_LOCK_CANARY_93b1"
    write_secrets(
        stored,
        SecretsFile(
            environment="dev",
            api_url=emulator.url,
            applications={"Old": SecretEntry(id="app_1", api_key=SecretStr(key))},
        ),
    )
    before = stored.read_bytes()
    lock_path(stored).symlink_to(stored.name)
    monkeypatch.setenv("MV_TEST_KEY", TEST_API_KEY)
    monkeypatch.delenv("MVSYNC_FILE", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["-f", str(manifest), "apply", "--env", "dev", "--yes"])
    out, err = capsys.readouterr()
    assert_no_secrets(out + err, extra=[key])
    assert (exit_.value.code, emulator.request_count("POST")) == (1, 0)
    assert "the lock file is a symbolic link" in err
    assert stored.read_bytes() == before
