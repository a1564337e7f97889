"""A sample application backend on the emulator's port (``--receiver SECRET``), for
``mvsync check`` to pass and to fail against (SPEC section 7).

    GET|POST /_receiver/answer     200, one JSON action
    POST     /_receiver/webhooks   200 for an event with a valid Standard Webhooks
                                   signature made with SECRET, 401 otherwise
    any      /_receiver/slow       the answer of /answer after ``?ms=`` (default 1500) ms
    any      /_receiver/html       200 text/html: a web page, not an action
    any      /_receiver/open       200 to anything: accepts events signed or not
    any      /_receiver/redirect   302 to /_receiver/answer
    any      /_receiver/error      500
    any      /_receiver/string     200 with JSON that is a string, not an action

Every endpoint takes ``?ms=N``: it answers after N ms (a backend's latency, for a
benchmark).

The signature is verified here with code of its own (the emulator shares nothing with
the checks it serves): ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, the key the
secret's bytes or, after ``whsec_``, its base64; a timestamp more than five minutes
away is refused, as the specification advises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qs

from mvsync.emulator import api
from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.httpd import Request

PREFIX = "/_receiver/"
TOLERANCE_SECONDS = 5 * 60
DEFAULT_SLOW_MS = 1500
ACTION = {"action": "talk", "text": "Hello from the mvsync sample receiver."}
_PAGE = b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>\n"


def _key_of(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        return secret.encode("utf-8")
    rest = secret[len("whsec_") :]
    try:
        return base64.b64decode(rest + "=" * (-len(rest) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EmulatorError("the receiver secret starts with whsec_ but is not base64") from None


class Receiver:
    """Answers ``/_receiver/*``; counts what each endpoint accepted and refused."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise EmulatorError("the receiver secret is empty")
        self._key = _key_of(secret)
        self._counts: Counter[str] = Counter()
        self._signatures: list[str] = []
        self._lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        """``{"webhooks accepted": n, "webhooks refused": n, "answer": n, ...}``."""
        with self._lock:
            return dict(self._counts)

    def signatures_seen(self) -> list[str]:
        """Test-only insight: the ``webhook-signature`` values received (the last
        1,000), for a leak scan of what mvsync printed."""
        with self._lock:
            return list(self._signatures)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def verified(self, request: Request) -> bool:
        headers = {name.lower(): value for name, value in request.headers}
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        with self._lock:
            self._signatures = [*self._signatures[-999:], signatures]
        if not message_id or not timestamp.isdigit():
            return False
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return False
        signed = f"{message_id}.{timestamp}.".encode() + request.body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected):
                return True
        return False

    def respond(self, request: Request, wait: Callable[[float], None]) -> api.Answer:
        endpoint = request.path[len(PREFIX) :]
        self._count(endpoint)
        values = parse_qs(request.query).get("ms", [])
        delay = int(values[0]) if values and values[0].isdigit() else None
        if endpoint != "slow" and delay:
            wait(delay / 1000)  # any endpoint answers after ?ms= (a receiver's latency)
        if endpoint == "answer":
            return api.Answer(200, ACTION)
        if endpoint == "webhooks":
            if request.method != "POST":
                return api.method_not_allowed(request.method, request.path, ("POST",))
            if self.verified(request):
                self._count("webhooks accepted")
                return api.Answer(200, {"received": True})
            self._count("webhooks refused")
            return api.error(401, "invalid_signature", "the webhook signature is not valid")
        if endpoint == "slow":
            wait((delay if delay is not None else DEFAULT_SLOW_MS) / 1000)
            return api.Answer(200, ACTION)
        if endpoint == "html":
            return api.Answer(200, None, raw=_PAGE, content_type="text/html; charset=utf-8")
        if endpoint == "open":
            return api.Answer(200, ACTION if request.method == "GET" else {"received": True})
        if endpoint == "redirect":
            return api.Answer(302, {}, (("Location", PREFIX + "answer"),))
        if endpoint == "error":
            return api.error(500, "internal_error", "the sample receiver failed on purpose")
        if endpoint == "string":
            return api.Answer(200, "ok")
        return api.not_found(request.method, request.path)
