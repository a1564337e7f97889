"""Run a key sink once per key (SPEC 5.5): no shell, the key on stdin, bounded in time.

The program is found before anything is created (``SinkRunner.check``). Each run gets the
key on its stdin with no newline and nothing else — never in an argument or a variable,
which ``ps`` and ``/proc`` show — an environment of its own (``sink.environment``), the
manifest's folder as working directory, and ``timeout`` seconds (``MVSYNC_SINK_TIMEOUT``,
default 30), after which it is killed with its whole process group. Exit 0 means
delivered. Its stdout is read and dropped; of its stderr only the end is kept, and a
failure says it with every secret masked: its output is never echoed raw.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mvsync.errors import MvsyncError
from mvsync.model import DesiredEnvironment, KeySink
from mvsync.sink.environment import masked_tail, sink_environment

DEFAULT_TIMEOUT = 30.0
TIMEOUT_VARIABLE = "MVSYNC_SINK_TIMEOUT"
# Bytes of stderr kept (its end): enough that a key cut at the start is not what is shown.
_KEPT = 8192
_CHUNK = 65536


class SinkError(MvsyncError):
    """The key sink cannot be run at all (its program is not found)."""


@dataclass(frozen=True)
class Delivery:
    """How one run of the sink ended: ``problem`` is None when it took the key."""

    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class SinkRunner:
    """The sink of one environment, ready to run once per key."""

    sink: KeySink
    environment: str
    cwd: Path
    timeout: float = DEFAULT_TIMEOUT
    # Every secret mvsync holds (API key, webhook secrets, state URL...): masked in
    # messages, and never passed in the sink's environment.
    secrets: Sequence[str] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _program: str | None = None

    @property
    def described(self) -> str:
        """The sink as written, for plans and messages."""
        return self.sink.as_written()

    def check(self) -> str:
        """The program's path; SinkError naming it when it is not found or not runnable."""
        if self._program is not None:
            return self._program
        program = self.sink.program
        search = self.environ.get("PATH") or os.defpath
        if "/" in program:
            path = Path(program) if Path(program).is_absolute() else self.cwd / program
            found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
        else:
            found = shutil.which(program, path=search)
        if found is None:
            where = "the manifest's folder" if "/" in program else "PATH"
            raise SinkError(
                f"environment {self.environment!r}: the key_sink program {program!r} is not"
                f" found in {where} or is not executable; install it or fix key_sink;"
                " nothing was created"
            )
        self._program = found
        return found

    def deliver(self, name: str, app_id: str, key: str) -> Delivery:
        """Hand ``key`` of application ``name`` to the sink; never raises for what the
        sink does (a failure is a ``Delivery`` with its problem, masked)."""
        masked = [key, *self.secrets]
        if self.sink.dash_made(name, app_id, self.environment) is not None:
            return Delivery("an argument would start with '-' (read as an option): not run")
        try:
            program = self.check()
        except SinkError as error:
            return Delivery(str(error).rsplit(";", 1)[0])
        argv = list(self.sink.fill(name, app_id, self.environment))
        env = sink_environment(
            self.sink,
            self.environ,
            environment=self.environment,
            name=name,
            app_id=app_id,
            secrets=masked,
        )
        try:
            process = subprocess.Popen(
                argv,
                executable=program,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.cwd,
                close_fds=True,
                start_new_session=True,  # its own process group: killed whole on timeout
            )
        except OSError as error:
            return Delivery(f"could not start {self.sink.program!r}: {error.strerror}")
        return _wait(process, key, self.timeout, masked)


def _feed(stream: IO[bytes] | None, key: str) -> None:
    if stream is None:
        return
    try:
        stream.write(key.encode())
    except (BrokenPipeError, ValueError):
        pass  # the sink exited without reading it: its exit status tells
    finally:
        with contextlib.suppress(BrokenPipeError):
            stream.close()


def _drain(stream: IO[bytes] | None, tail: bytearray | None) -> None:
    if stream is None:
        return
    with stream:
        while chunk := os.read(stream.fileno(), _CHUNK):
            if tail is not None:
                tail.extend(chunk)
                del tail[:-_KEPT]


def _wait(
    process: subprocess.Popen[bytes], key: str, timeout: float, masked: list[str]
) -> Delivery:
    stderr = bytearray()
    threads = [
        threading.Thread(target=_feed, args=(process.stdin, key), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, None), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        # The whole group, before it is reaped: a sink's children die with it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait()
    for thread in threads:
        thread.join(timeout=2.0)
    tail = masked_tail(bytes(stderr), masked)
    said = f": {tail}" if tail else ""
    if timed_out:
        return Delivery(f"did not finish within {timeout:g}s and was killed{said}")
    if process.returncode != 0:
        status = process.returncode
        how = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
        return Delivery(f"{how}{said}")
    return Delivery()


def runner_for(
    desired: DesiredEnvironment, folder: Path, secrets: Sequence[str], timeout: float
) -> SinkRunner | None:
    """The runner of ``desired``'s sink (None without one), its program already found:
    SinkError before anything is created or asked. ``folder`` is the manifest's."""
    if desired.key_sink is None:
        return None
    runner = SinkRunner(desired.key_sink, desired.name, folder, timeout=timeout, secrets=secrets)
    runner.check()
    return runner
