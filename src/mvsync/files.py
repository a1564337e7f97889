"""Reading (and appending to) files that someone else named: regular files only, bounded.

Every file mvsync reads — the manifest, a saved plan, the secrets file and its journal,
the emulator's ``--state`` — is read through ``read_bounded``, so that none of them can
hang the process or eat its memory when it is something else than a regular file:

- the type is checked with ``stat`` before opening (a device is never opened) and again
  with ``fstat`` on the open descriptor (nothing swapped in between is read);
- the file is opened with ``O_NONBLOCK``: opening a FIFO (named pipe) does not wait
  for a writer (and the FIFO is then refused);
- the size limit is applied while reading, not only from ``st_size``: a file that
  grows while it is read, or reports a wrong size (``/proc``), stops at the limit.

``write_atomic`` is the one way mvsync replaces a file (the secrets file, a saved plan,
``import -o``): a temporary file beside it, written whole, fsynced, given its mode,
renamed over it, and the folder fsynced: a crash leaves the old file or the new one.

``open_append`` is the writing twin for a file mvsync appends to but does not own
(``GITHUB_STEP_SUMMARY``): opening a FIFO for writing would wait for a reader forever.

Nothing here knows which error type its caller raises: ``UnreadableFileError.reason``
is a short phrase ("not a regular file (a FIFO)") for the caller's own message.
"""

from __future__ import annotations

import errno
import os
import secrets as _random
import stat
from pathlib import Path
from typing import TextIO

MIB = 1024 * 1024
_CHUNK = MIB


class UnreadableFileError(Exception):
    """A file refused or unreadable; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
    )
    for check, name in kinds:
        if check(mode):
            return name
    return "not a regular file"  # pragma: no cover - every POSIX type is named above


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise UnreadableFileError(f"not a regular file ({_kind(mode)})")


def too_large(limit: int) -> str:
    if limit % MIB == 0:
        return f"larger than {limit // MIB} MiB"
    return f"larger than {limit:,} bytes"


def read_bounded(path: Path, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``FileNotFoundError`` passes through (callers decide what a missing file means);
    anything else that stops the read is an ``UnreadableFileError``.
    """
    try:
        mode = (os.stat if follow_symlinks else os.lstat)(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as error:
        raise UnreadableFileError(error.strerror or type(error).__name__) from None
    _check_regular(mode)
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks:
            raise UnreadableFileError("not a regular file (a symbolic link)") from None
        raise UnreadableFileError(error.strerror or type(error).__name__) from None
    try:
        return read_open(fd, limit)
    finally:
        os.close(fd)


def read_open(fd: int, limit: int) -> bytes:
    """The bytes of the open descriptor ``fd`` (checked with ``fstat`` to be a regular
    file), at most ``limit`` of them; ``UnreadableFileError`` otherwise. Not closed."""
    try:
        status = os.fstat(fd)
        _check_regular(status.st_mode)
        if status.st_size > limit:
            raise UnreadableFileError(too_large(limit))
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise UnreadableFileError(too_large(limit))
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise UnreadableFileError(error.strerror or type(error).__name__) from None


def open_append(path: Path) -> TextIO:
    """``path`` open for appending text (created if missing): a regular file only, and
    opening never waits (a FIFO is refused, not waited on). ``OSError`` when it fails."""
    try:
        _check_regular(os.stat(path).st_mode)  # a FIFO would answer ENXIO: say what it is
    except FileNotFoundError:
        pass
    except UnreadableFileError as refused:
        raise OSError(errno.EINVAL, refused.reason) from None
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags, 0o644)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class UnwritableFileError(Exception):
    """A file that could not be replaced; ``reason`` says why (no content, no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically and durably, with ``mode``.

    A temporary file in the same folder (so the rename stays on one file system),
    fsync, ``os.replace``, fsync of the folder; ``UnwritableFileError`` otherwise, the
    temporary file removed.
    """
    folder = path.parent if str(path.parent) else Path(".")
    temp = folder / f".{path.name}.{_random.token_hex(6)}.tmp"
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode)
    except OSError as error:
        raise UnwritableFileError(error.strerror or type(error).__name__) from None
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not change it
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
        raise UnwritableFileError(error.strerror or type(error).__name__) from None
