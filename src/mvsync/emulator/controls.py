"""``/_emulator/*``: the Emulator's Python controls over HTTP, for an emulator in another process.

No auth; the server only lets loopback clients reach these, and does not count them
as API requests.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mvsync.emulator import api
from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.faults import Fault

if TYPE_CHECKING:
    from mvsync.emulator.server import Emulator


def answer(emulator: Emulator, method: str, path: str, body: bytes) -> api.Answer:
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
    if path == "/_emulator/requests":
        if method == "DELETE":
            emulator.reset_request_counts()
        elif method != "GET":
            return api.method_not_allowed(method, path, ("GET", "DELETE"))
        return api.Answer(200, {"counts": emulator.request_counts()})
    return api.not_found(method, path)
