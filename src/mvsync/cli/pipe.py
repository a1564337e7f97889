"""Standard output closed by its reader (``mvsync plan | head -1``): never a failure.

A closed pipe changes nothing that a command does, nor its exit status:

- ``plan`` exits with the status it would have had (0, or 2 for changes with
  ``--detailed-exitcode``), silently, as git and terraform do;
- ``apply`` goes on, stores every key, exits with its real status, and says on
  stderr that its output was cut;
- the other commands (whose output *is* their result: ``import``, ``envs``,
  ``schema``) exit 1 with one line on stderr (``mvsync.cli.boundary``).

``StdoutGuard`` wraps the stream: the first write or flush that meets ``EPIPE``
points file descriptor 1 at ``/dev/null`` (so neither later writes nor Python's
flush at exit fail again) and records it in ``closed_early``.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, TextIO, cast


class StdoutGuard:
    """A text stream that turns a closed pipe into a flag."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.closed_early = False

    def write(self, text: str) -> int:
        if not self.closed_early:
            try:
                return self.inner.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.closed_early:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _closed(self) -> None:
        self.closed_early = True
        silence(self.inner)


def silence(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null: what is still buffered goes nowhere."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return  # not a file (a test's StringIO): nothing will flush it at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def write_result(text: str) -> None:
    """Write a command's result (``keys show``'s key, ``keys list``'s lines) to stdout;
    a closed, broken or full stdout is one clear MvsyncError, and what was buffered goes
    nowhere (Python's flush at exit must not fail on it again)."""
    from mvsync.errors import MvsyncError

    stream = sys.stdout
    if stream is None:  # started with its descriptor 1 closed (``>&-``)
        raise MvsyncError(
            "standard output is closed: nothing was written; run it with its output open"
        )
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        silence(stream)
        raise MvsyncError("standard output was closed before all of it was written") from None
    except OSError as error:
        silence(stream)
        raise MvsyncError(
            f"cannot write to standard output: {error.strerror or 'write failed'}; "
            "nothing was written: send it somewhere that can take it"
        ) from None


def guarded_stdout() -> tuple[TextIO, StdoutGuard]:
    """``sys.stdout`` guarded, as a ``TextIO`` to write to and as the guard to ask."""
    guard = StdoutGuard(sys.stdout)
    return cast(TextIO, guard), guard


CUT_NOTE = (
    "mvsync: standard output was closed before all of it was written; the run went on"
    " and its exit status is its own\n"
)
