"""Injected faults: what the next matching requests suffer instead of a normal answer."""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from mvsync.emulator.errors import EmulatorError

FaultKind = Literal["429", "500", "503", "drop_before_commit", "drop_after_commit", "slow"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
FAULT_METHODS = ("GET", "POST")

# The error answer of each status fault: (status, code, message). Nothing is committed.
STATUS_FAULTS: dict[str, tuple[int, str, str]] = {
    "429": (429, "rate_limited", "too many requests, retry later"),
    "500": (500, "internal_error", "internal server error"),
    "503": (503, "unavailable", "service temporarily unavailable"),
}


@dataclass
class Fault:
    """One fault for the next ``times`` requests of ``method`` to /v1/applications.

    ``drop_before_commit`` closes the connection without an answer and creates nothing;
    ``drop_after_commit`` commits a POST, then closes without an answer; ``slow`` commits
    a POST, then waits ``delay`` seconds before answering (a GET just waits); 429/500/503
    answer with that status and an error body, and commit nothing.
    """

    kind: FaultKind
    method: str | None = None
    times: int = 1
    retry_after: str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise EmulatorError(
                f"unknown fault kind {self.kind!r}: use one of {', '.join(FAULT_KINDS)}"
            )
        if self.method is not None:
            self.method = self.method.upper()
            if self.method not in FAULT_METHODS:
                raise EmulatorError(f"fault method must be GET, POST or none, not {self.method!r}")
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1:
            raise EmulatorError(f"fault times must be a whole number >= 1, not {self.times!r}")
        if self.retry_after is not None and (
            not isinstance(self.retry_after, str) or not self.retry_after.strip()
        ):
            raise EmulatorError("fault retry_after must be a non-empty string or null")
        if (
            isinstance(self.delay, bool)
            or not isinstance(self.delay, int | float)
            or not math.isfinite(self.delay)
            or self.delay < 0
        ):
            raise EmulatorError(f"fault delay must be a number of seconds >= 0, not {self.delay!r}")
        self.delay = float(self.delay)

    def matches(self, method: str) -> bool:
        return self.method is None or self.method == method

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> Fault:
        """A fault from the body of ``POST /_emulator/faults``."""
        if not isinstance(value, dict):
            raise EmulatorError("a fault must be a JSON object")
        unknown = sorted(set(value) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise EmulatorError(f"unknown fault field(s): {', '.join(unknown)}")
        if "kind" not in value:
            raise EmulatorError("a fault needs a kind")
        kind = value["kind"]
        return cls(
            kind=cast(FaultKind, str(kind) if isinstance(kind, int) else kind),
            method=value.get("method"),
            times=value.get("times", 1),
            retry_after=value.get("retry_after"),
            delay=value.get("delay", 0.0),
        )

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """A fault from the command line: ``KIND[:METHOD[:TIMES[:ARG]]]``."""
        parts = spec.split(":", 3)
        kind = parts[0]
        method = parts[1] if len(parts) > 1 and parts[1] not in ("", "*") else None
        try:
            times = int(parts[2]) if len(parts) > 2 and parts[2] else 1
        except ValueError:
            raise EmulatorError(f"--fault {spec}: TIMES must be a whole number") from None
        arg = parts[3] if len(parts) > 3 and parts[3] else None
        retry_after: str | None = None
        delay = 0.0
        if arg is not None and kind in ("429", "503"):
            retry_after = arg
        elif arg is not None and kind == "slow":
            try:
                delay = float(arg)
            except ValueError:
                raise EmulatorError(f"--fault {spec}: the delay must be seconds") from None
        elif arg is not None:
            raise EmulatorError(f"--fault {spec}: {kind} takes no argument")
        try:
            return cls(cast(FaultKind, kind), method, times, retry_after, delay)
        except EmulatorError as error:
            raise EmulatorError(f"--fault {spec}: {error}") from None


class FaultBook:
    """The pending faults, first added first used; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(dataclasses.replace(fault))  # the caller's copy stays as given

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._pending]

    def take(self, method: str) -> Fault | None:
        """The fault this request suffers (spending one of its times), or ``None``."""
        if not self._pending:  # the common case, without the lock
            return None
        with self._lock:
            for index, fault in enumerate(self._pending):
                if fault.matches(method):
                    fault.times -= 1
                    if fault.times == 0:
                        del self._pending[index]
                    return dataclasses.replace(fault, times=1)
        return None
