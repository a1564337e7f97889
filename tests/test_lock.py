"""mvsync.lock: one apply per environment; a killed holder never deadlocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mvsync.errors import LockError
from mvsync.lock import EnvironmentLock

HOLD_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mvsync.lock import EnvironmentLock
    lock = EnvironmentLock(Path(sys.argv[1]), command="mvsync apply --env holder")
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def start_holder(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
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
