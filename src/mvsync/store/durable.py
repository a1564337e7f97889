"""The only writer of secret-bearing files: 0600 from birth, fsynced, atomic.

Every file that may hold an API key (the secrets file, its journal, the lock
file beside them) is created here with ``O_CREAT|O_EXCL`` and mode 0600, and
``fchmod``-ed to 0600 *before any byte is written*, so the mode never depends on
the umask and there is no moment when a key sits in a file others can read.
Nothing is ever chmod-ed after it was written.

A secrets file or journal that is a symbolic link is refused, never followed:
an atomic rewrite would replace the link with a regular file and the file it
pointed to would silently keep the old keys.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from pathlib import Path
from typing import NoReturn

from mvsync import files
from mvsync.errors import SecretsError
from mvsync.files import MIB, UnreadableFileError, fsync_dir, read_open

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# A secrets file of 100,000 keys is about 25 MiB; its journal about three times that.
MAX_PRIVATE_BYTES = 256 * MIB


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


def refuse_open_folder(path: Path) -> None:
    """Refuse a secrets folder that every user may write to (without the sticky bit of
    ``/tmp``), whether it is the folder itself or where a symlink leads: anyone could
    replace the secrets file, its journal or its lock there."""
    try:
        mode = os.stat(path).st_mode  # follows a symlink: the folder the files land in
    except OSError:
        return  # not there yet: created 0700
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        target = f" (a symlink to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise SecretsError(
            f"{path}{target}: the folder is writable by every user, who could replace the "
            f"keys' files in it; run chmod o-w {os.path.realpath(path)} (nothing was changed)"
        )


__all__ = ["fsync_dir", "write_atomic"]  # re-exported for the store's other modules


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, durably, with mode 0600 (``mvsync.files``)."""
    if path.is_symlink():  # replacing it would cut the link, and its target keeps old keys
        raise SecretsError(_symlink_message(path))
    try:
        files.write_atomic(path, data, PRIVATE_FILE_MODE)
    except files.UnwritableFileError as error:
        raise SecretsError(f"{path}: cannot write: {error.reason}") from None


class DurableAppender:
    """An append-only file kept open: each ``append`` is on disk when it returns.

    The cost of one append is one ``write`` and one ``fsync``, whatever the size
    of the file. Lines are written with a single ``write`` call on an
    ``O_APPEND`` descriptor so concurrent appenders (threads) never interleave.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        check_private(path)  # a symbolic link, a folder, a lax mode: refused before opening
        existed = path.exists()
        try:
            # O_NOFOLLOW: a link swapped in since the check is refused, never written through.
            self._fd = os.open(
                path,
                os.O_CREAT | os.O_APPEND | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                PRIVATE_FILE_MODE,
            )
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise SecretsError(_symlink_message(path)) from None
            raise SecretsError(f"{path}: cannot open for writing: {error.strerror}") from None
        try:
            if not existed:
                os.fchmod(self._fd, PRIVATE_FILE_MODE)
                fsync_dir(path.parent)
            else:
                _check_mode(path, os.fstat(self._fd).st_mode)
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, line: bytes) -> None:
        """Append ``line`` (one write) and fsync it.

        A failed append leaves no torn line behind (the file is cut back to where it
        was, so the next append does not land after half a line), and a file that was
        removed while open is an error: an append to an unlinked file reaches no disk
        anyone will read.
        """
        with self._lock:
            size = -1
            try:
                size = os.fstat(self._fd).st_size
                written = os.write(self._fd, line)
                if written != len(line):  # a full disk writes part of a line
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(self._fd)
            except OSError as error:
                if size >= 0:
                    with contextlib.suppress(OSError):  # best effort: the append failed anyway
                        os.ftruncate(self._fd, size)
                raise SecretsError(f"{self.path}: cannot append: {error.strerror}") from None
            if os.fstat(self._fd).st_nlink == 0:
                raise SecretsError(f"{self.path}: removed while apply was writing it")

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


def _symlink_message(path: Path) -> str:
    return (
        f"{path}: is a symbolic link; mvsync does not follow links for files that hold "
        "API keys (a rewrite would replace the link, not update what it points to): "
        "point secrets_file at the real file"
    )


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISLNK(mode):
        raise SecretsError(_symlink_message(path))
    if not stat.S_ISREG(mode):
        raise SecretsError(f"{path}: not a regular file")


def is_shared(mode: int) -> bool:
    """Whether the group or others may read or write a file of this mode."""
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def refuse_shared(path: Path, mode: int) -> NoReturn:
    """The refusal of a file that holds plaintext keys and that others may read."""
    raise SecretsError(
        f"{path}: mode {stat.S_IMODE(mode):04o} lets the group or others read it; "
        f"it holds plaintext API keys: run 'chmod 600 {path}' and check who copied it "
        "(a file whose keys are all sealed with recipients may have any mode)"
    )


def _check_mode(path: Path, mode: int) -> None:
    _check_regular(path, mode)
    if is_shared(mode):
        refuse_shared(path, mode)


def check_private(path: Path) -> None:
    """Refuse a symbolic link, anything but a regular file, and a file that the group
    or others may read or write. A missing file passes (it will be created 0600)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise SecretsError(f"{path}: cannot read: {error.strerror}") from None
    _check_mode(path, mode)


def read_private(path: Path) -> bytes | None:
    """The bytes of a secret-bearing file, ``None`` when it does not exist.

    Refused (SecretsError) like ``check_private``; opened with ``O_NOFOLLOW`` and
    checked again on the open descriptor, so a link swapped in meanwhile is not read.
    """
    check_private(path)
    read = read_regular(path)
    if read is None:
        return None
    raw, mode = read
    _check_mode(path, mode)
    return raw


def read_regular(path: Path) -> tuple[bytes, int] | None:
    """The bytes of a file and its mode as opened, ``None`` when it does not exist.

    A symbolic link or anything but a regular file is refused (SecretsError), whatever
    its mode; the caller decides whether a mode others may read is acceptable (a
    secrets file whose keys are all sealed may be committed: a checkout gives 0644).
    """
    try:
        _check_regular(path, os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretsError(f"{path}: cannot read: {error.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SecretsError(_symlink_message(path)) from None
        raise SecretsError(f"{path}: cannot read: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        _check_regular(path, mode)
        return read_open(fd, MAX_PRIVATE_BYTES), mode  # bounded while read, not by st_size
    except UnreadableFileError as error:
        raise SecretsError(f"{path}: cannot read: {error.reason}") from None
    finally:
        os.close(fd)
