"""``/_emulator/*``: the Emulator's Python controls over HTTP, for an emulator in another process.

No auth; the server only lets loopback clients reach these, and does not count them
as API requests. The emulator is reached through the ``Controllable`` protocol, so this
module never imports the server (which imports it).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from mvsync.emulator import api
from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.faults import Fault
from mvsync.emulator.ratelimit import RateLimit


class Controllable(Protocol):
    """What the controls need of the emulator (``Emulator`` has all of it)."""

    def add_fault(self, fault: Fault) -> None: ...
    def clear_faults(self) -> None: ...
    def faults(self) -> list[Fault]: ...
    def set_latency(self, seconds: float) -> None: ...
    @property
    def latency(self) -> float: ...
    def set_rate_limit(self, rate: RateLimit | None) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def request_counts(self) -> dict[str, int]: ...
    def reset_request_counts(self) -> None: ...


def answer(emulator: Controllable, method: str, path: str, body: bytes) -> api.Answer:
    """``/_emulator/*``: the Python controls over HTTP, for an emulator in another process."""
    if path == "/_emulator/faults":
        if method == "POST":
            try:
                value = json.loads(body)
                new = [
                    Fault.from_json(item)
                    for item in (value if isinstance(value, list) else [value])
                ]
            except ValueError:
                return api.error(400, "invalid_json", "request body must be valid JSON")
            except EmulatorError as error:
                return api.error(400, "invalid_request", str(error))
            for fault in new:
                emulator.add_fault(fault)
        elif method == "DELETE":
            emulator.clear_faults()
        elif method != "GET":
            return api.method_not_allowed(method, path, ("GET", "POST", "DELETE"))
        return api.Answer(200, {"faults": [fault.to_json() for fault in emulator.faults()]})
    if path == "/_emulator/latency":
        if method == "PUT":
            try:
                value = json.loads(body)
            except ValueError:
                return api.error(400, "invalid_json", "request body must be valid JSON")
            seconds = value.get("seconds") if isinstance(value, dict) else None
            try:
                emulator.set_latency(seconds)  # type: ignore[arg-type]  # checked inside
            except EmulatorError as error:
                return api.error(400, "invalid_request", str(error))
        elif method != "GET":
            return api.method_not_allowed(method, path, ("GET", "PUT"))
        return api.Answer(200, {"seconds": emulator.latency})
    if path == "/_emulator/rate-limit":
        return _rate_limit(emulator, method, path, body)
    if path == "/_emulator/requests":
        if method == "DELETE":
            emulator.reset_request_counts()
        elif method != "GET":
            return api.method_not_allowed(method, path, ("GET", "DELETE"))
        return api.Answer(200, {"counts": emulator.request_counts()})
    return api.not_found(method, path)


def _rate_limit(emulator: Controllable, method: str, path: str, body: bytes) -> api.Answer:
    """``PUT {"rate": R, "burst": B}`` sets (``"rate": null`` lifts), ``DELETE`` lifts."""
    if method == "PUT":
        try:
            value = json.loads(body)
        except ValueError:
            return api.error(400, "invalid_json", "request body must be valid JSON")
        try:
            emulator.set_rate_limit(RateLimit.from_json(value))
        except EmulatorError as error:
            return api.error(400, "invalid_request", str(error))
    elif method == "DELETE":
        emulator.set_rate_limit(None)
    elif method != "GET":
        return api.method_not_allowed(method, path, ("GET", "PUT", "DELETE"))
    stats = emulator.stats()
    return api.Answer(
        200, {"rate_limit": stats["rate_limit"], "rate_limited": stats["rate_limited"]}
    )
