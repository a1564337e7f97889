"""One HTTP request and its answer, bounded in time and size whatever the server does."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

# The largest error body read: only its code and message are shown, cut to a few hundred.
MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """One answer, read whole (or found too large to read)."""

    status: int
    headers: httpx.Headers
    content: bytes
    too_large: bool = False
    cap: int = 0  # the most bytes of this body that were to be read


class Exchange:
    """One request and its answer, in a daemon thread that the caller waits for.

    Why a thread: httpx bounds each read, not a whole request, and a server that sends
    headers or body a byte at a time never trips a per-read timeout. Checking the clock
    per body chunk would not cover headers that never end; waiting for a thread does.
    The caller waits at most the attempt's budget. When it runs out first, the thread
    is abandoned: it is a daemon (it cannot keep the process alive), it stops at its
    next chunk and closes the answer unread, so httpx drops that connection rather than
    reuse it. The body is streamed and never read past its cap.
    """

    def __init__(self, http: httpx.Client, max_body_bytes: int) -> None:
        self._http = http
        self._max_body_bytes = max_body_bytes
        self._finished = threading.Event()
        self._abandoned = threading.Event()
        self._reply: Reply | None = None
        self._error: BaseException | None = None
        # What httpcore's trace tells: the request may be on the wire once sending began.
        self._traced = False
        self._sending = False

    @property
    def maybe_sent(self) -> bool:
        """False only when the transport showed that the request was never sent."""
        return self._sending or not self._traced

    def trace(self, event: str, info: dict[str, Any]) -> None:
        self._traced = True
        if "send_request" in event or "receive_response" in event:
            self._sending = True

    def run(self, request: httpx.Request, budget: float) -> Reply | None:
        """The answer, or ``None`` when the budget ran out; raises what the request raised."""
        worker = threading.Thread(
            target=self._work, args=(request,), name="mvsync-http", daemon=True
        )
        try:
            worker.start()
            finished = self._finished.wait(budget)
        finally:
            if not self._finished.is_set():  # the budget ran out, or the caller was interrupted
                self._abandoned.set()
        if not finished:
            return None
        if self._error is not None:
            raise self._error
        return self._reply

    def _work(self, request: httpx.Request) -> None:
        try:
            self._reply = self._exchange(request)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the waiting caller
            self._error = exc
        finally:
            self._finished.set()

    def _exchange(self, request: httpx.Request) -> Reply | None:
        response = self._http.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            cap = self._max_body_bytes
            if not 200 <= status < 300:
                cap = min(cap, MAX_ERROR_BODY_BYTES)
            too_large = Reply(status, response.headers, b"", too_large=True, cap=cap)
            declared = response.headers.get("Content-Length", "").strip()
            if declared.isdigit() and int(declared) > cap:
                return too_large
            body = bytearray()
            for chunk in response.iter_bytes():  # decoded: a compression bomb is capped too
                if self._abandoned.is_set():
                    return None
                body += chunk
                if len(body) > cap:
                    return too_large
            return Reply(status, response.headers, bytes(body), cap=cap)
        finally:
            response.close()  # before the end of the body: httpx closes the connection
