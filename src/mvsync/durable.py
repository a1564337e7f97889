"""The only writer of secret-bearing files: 0600 from birth, fsynced, atomic.

Every file that may hold an API key (the secrets file, its journal, the lock
file beside them) is created here with ``O_CREAT|O_EXCL`` and mode 0600, and
``fchmod``-ed to 0600 *before any byte is written*, so the mode never depends on
the umask and there is no moment when a key sits in a file others can read.
Nothing is ever chmod-ed after it was written.
"""

from __future__ import annotations

import os
import secrets as _random
import stat
from pathlib import Path

from mvsync.errors import SecretsError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700 when it does not exist.

    An existing folder is left as it is: it may be the user's own (``.`` or a
    repository folder), and the files inside are 0600 anyway.
    """
    if path.is_dir():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, PRIVATE_DIR_MODE)
        # mkdir honours the umask; a lax umask must not widen it, a strict one may not matter.
        os.chmod(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        return
    except OSError as error:
        raise SecretsError(f"{path}: cannot create the folder: {error.strerror}") from None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, durably, with mode 0600.

    A temporary file in the same folder (so the rename stays on one file
    system), fsync, ``os.replace``, fsync of the folder. A crash at any point
    leaves either the old file or the new one, never a mix.
    """
    folder = path.parent
    temp = folder / f".{path.name}.{_random.token_hex(6)}.tmp"
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
    except OSError as error:
        raise SecretsError(f"{path}: cannot write: {error.strerror}") from None
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        fsync_dir(folder)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise SecretsError(f"{path}: cannot write: {error.strerror}") from None


class DurableAppender:
    """An append-only file kept open: each ``append`` is on disk when it returns.

    The cost of one append is one ``write`` and one ``fsync``, whatever the size
    of the file. Lines are written with a single ``write`` call on an
    ``O_APPEND`` descriptor so concurrent appenders (threads) never interleave.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        existed = path.exists()
        try:
            self._fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, PRIVATE_FILE_MODE)
        except OSError as error:
            raise SecretsError(f"{path}: cannot open for writing: {error.strerror}") from None
        try:
            if not existed:
                os.fchmod(self._fd, PRIVATE_FILE_MODE)
                fsync_dir(path.parent)
            else:
                check_private(path)
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, line: bytes) -> None:
        """Append ``line`` (one write) and fsync it."""
        try:
            written = os.write(self._fd, line)
            if written != len(line):  # pragma: no cover - regular files write whole
                raise OSError(0, "short write")
            os.fsync(self._fd)
        except OSError as error:
            raise SecretsError(f"{self.path}: cannot append: {error.strerror}") from None

    def close(self) -> None:
        """Close the file; appends already returned are on disk."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DurableAppender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def append_durable(path: Path, line: bytes) -> None:
    """Append one line to ``path`` (created 0600) and fsync it."""
    with DurableAppender(path) as appender:
        appender.append(line)


def check_private(path: Path) -> None:
    """Refuse a file that the group or others may read or write."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise SecretsError(f"{path}: cannot read: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SecretsError(f"{path}: not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"{path}: mode {stat.S_IMODE(mode):04o} lets the group or others read it; "
            f"it holds live API keys: run 'chmod 600 {path}' and check who copied it"
        )
