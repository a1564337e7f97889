"""The per-environment lock: ``<secrets_file>.lock``, ``fcntl.flock`` exclusive.

The kernel drops a flock when its holder's descriptor closes, and a process
that dies (kill -9 included) closes them all: a killed apply never leaves a
lock that deadlocks the next one, and there is no stale-lock heuristic to get
wrong. The holder writes who it is (pid, host, start time, command) into the
file so that a refused apply can name it.

The lock file is opened with ``O_NOFOLLOW`` and must be a regular file with no
other name (hard link); it is rewritten only once the flock is held and its
content is what a holder writes (nothing, or the holder's JSON). A link planted
as ``.lock`` can therefore never make apply truncate the secrets file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from mvsync.errors import LockError
from mvsync.escape import escape
from mvsync.model import utc_stamp
from mvsync.store.durable import PRIVATE_FILE_MODE
from mvsync.urls import account_url

LOCK_SUFFIX = ".lock"
POLL_INTERVAL = 0.1
# What a holder writes is a short JSON object; anything larger is not a lock file.
MAX_HOLDER_BYTES = 64 * 1024


def lock_path(secrets_path: Path) -> Path:
    """Where the lock of a secrets file lives: beside it."""
    return secrets_path.with_name(secrets_path.name + LOCK_SUFFIX)


# Machine-wide locks live where no variable of the user's moves them: two checkouts,
# one with TMPDIR or XDG_RUNTIME_DIR set and one without, must meet at one lock.
MACHINE_LOCK_ROOT = Path("/tmp")


def machine_lock_dir() -> Path:
    """This user's folder for machine-wide locks, ``/tmp/mvsync-<uid>`` whatever
    ``TMPDIR`` or ``XDG_RUNTIME_DIR`` say; created 0700, refused unless ours and private."""
    folder = MACHINE_LOCK_ROOT / f"mvsync-{os.getuid()}"
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise LockError(f"{folder}: cannot create the lock folder: {error.strerror}") from None
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        # In a shared temp folder, another user could have planted it.
        raise LockError(
            f"{folder}: the machine-wide lock folder is not a private folder of this user "
            "(mode 0700, owned by you): remove it"
        )
    return folder


def machine_lock_path(api_url: str, environment: str) -> Path:
    """The machine-wide lock of one account and environment (SPEC guarantee 6): every
    checkout of a manifest on this machine takes it, whatever its secrets folder and
    however ``api_url`` is spelt (host case, a trailing ``/``, a default port)."""
    digest = hashlib.sha256(f"{account_url(api_url)}\0{environment}".encode()).hexdigest()[:32]
    return machine_lock_dir() / f"{digest}{LOCK_SUFFIX}"


def _describe_holder(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        # The file is anyone's who can write it: shown escaped, on one line.
        return escape(
            f"pid {int(info['pid'])} on {info['host']}, started {info['started']}"
            f" ({info['command']})"
        )
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"


class EnvironmentLock:
    """An exclusive lock held until ``release`` (or the process ends)."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = 0.0,
        command: str = "mvsync apply",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.command = command
        self._sleep = sleep
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; LockError naming the holder."""
        fd = self._open()
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise LockError(f"{self.path}: cannot lock: {error.strerror}") from None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = _describe_holder(os.pread(fd, 4096, 0))
                    waited = f" after waiting {self.timeout:g}s" if self.timeout else ""
                    raise LockError(
                        f"another apply holds the lock of this environment{waited}: {holder}; "
                        f"lock file {self.path} (use --lock-timeout SECONDS to wait for it)"
                    )
                self._sleep(min(POLL_INTERVAL, remaining))
            # Held: only now may the file be rewritten, and only if it is a lock file.
            self._check_content(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_holder()

    def _open(self) -> int:
        """Open (or create, 0600) the lock file itself: never through a link, never a
        file that is also reachable under another name (the lock is truncated)."""
        try:
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                PRIVATE_FILE_MODE,
            )
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise LockError(
                    f"{self.path}: the lock file is a symbolic link; mvsync does not follow it "
                    "(it would overwrite what it points to): remove the link"
                ) from None
            raise LockError(f"{self.path}: cannot open the lock file: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise LockError(f"{self.path}: the lock file is not a regular file: remove it")
            if info.st_nlink != 1:
                raise LockError(
                    f"{self.path}: the lock file has other hard links; mvsync does not "
                    "overwrite a file that is also another one: remove it"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_content(self, fd: int) -> None:
        """Refuse a file that holds something other than what a lock holder writes."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        if size <= MAX_HOLDER_BYTES:
            try:
                info = json.loads(os.pread(fd, size, 0))
            except (ValueError, RecursionError):
                info = None
            if isinstance(info, dict) and "pid" in info:
                return
        raise LockError(
            f"{self.path}: not an mvsync lock file (it holds something else); "
            "mvsync will not overwrite it: move it away"
        )

    def _write_holder(self) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": utc_stamp(),
            "command": self.command,
        }
        data = json.dumps(info).encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError as error:  # a full disk, say: the lock is held but cannot say by whom
            self.release()
            raise LockError(
                f"{self.path}: cannot write the lock file: {error.strerror}; nothing was created"
            ) from None

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race with a waiter)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # the flock goes with the descriptor anyway
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.release()
