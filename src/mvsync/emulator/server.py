"""The emulator itself (``Emulator``): its Python API, and what it answers each request.

Imports run one way: ``server`` -> ``httpd`` (the HTTP/1.1 plumbing, which hands every
request back through the ``Responder`` protocol), ``controls`` (the ``/_emulator/*``
endpoints, which drive the ``Controllable`` protocol), ``api``, ``faults``,
``ratelimit``, ``state``; none of them imports this module. ``stop()`` closes every open
connection, wakes every injected wait, and joins the request threads, so nothing leaks
from one test to the next.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from mvsync.emulator import api, controls
from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.faults import STATUS_FAULTS, Fault, FaultBook
from mvsync.emulator.httpd import Request, Server, is_loopback
from mvsync.emulator.ratelimit import RateLimit, RateLimiter
from mvsync.emulator.receiver import PREFIX as RECEIVER_PREFIX
from mvsync.emulator.receiver import Receiver
from mvsync.emulator.state import Store

CONTROL_PREFIX = "/_emulator/"


class Emulator:
    """A local MiniVoice Applications API on a loopback port, served from a background thread.

    ``api_keys`` each stand for one customer; every key issued by a create also
    authenticates as that create's customer. ``state_file`` keeps the applications
    across restarts. ``latency`` (seconds) is added before every API answer.
    ``rate_limit=(rate, burst)`` answers 429 to a customer beyond ``rate`` requests a
    second in bursts of ``burst`` (``burst`` ``None``: the rate, at least 1);
    ``rate_limit_headers`` also announces that limit in the IETF ``RateLimit-Policy`` and
    ``RateLimit`` fields of each of that customer's answers.
    ``receiver_secret`` also serves the sample backend of ``receiver.py`` on this port.
    """

    def __init__(
        self,
        api_keys: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        latency: float = 0.0,
        rate_limit: tuple[float, int | None] | RateLimit | None = None,
        receiver_secret: str | None = None,
        rate_limit_headers: bool = False,
    ) -> None:
        if isinstance(api_keys, str):
            raise EmulatorError("api_keys is a sequence of keys, not one string")
        self._host = host
        self._port = port
        self._store = Store(tuple(api_keys), state_file)
        self._faults = FaultBook()
        self._latency = 0.0
        self.set_latency(latency)
        self._limiter = RateLimiter()
        self.set_rate_limit(rate_limit)
        # Announce the limit in every answer of a limited customer (RateLimit fields).
        self.rate_limit_headers = rate_limit_headers
        self._counts: Counter[tuple[str, str]] = Counter()
        self._refused: Counter[tuple[str, str]] = Counter()  # by the rate limit
        self._counts_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: Server | None = None
        self._thread: threading.Thread | None = None
        # The sample application backend of ``--receiver`` (receiver.py), on this port.
        self.receiver = Receiver(receiver_secret) if receiver_secret is not None else None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve in a background thread; returns once the port is listening."""
        if self._httpd is not None:
            raise EmulatorError("the emulator is already running")
        self._stopping.clear()
        try:
            httpd = Server((self._host, self._port), self)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise EmulatorError(f"cannot listen on {self._host}:{self._port}: {reason}") from exc
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_until_stopped,
            name=f"mvsync-emulator:{self._port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: close open connections, join every request thread, close the state file."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes injected latency and slow answers
        httpd.stop_serving()
        thread.join()
        httpd.close_connections()
        httpd.server_close()  # joins the request threads
        self._store.close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- controls -----------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def faults(self) -> list[Fault]:
        """The faults not yet spent, in the order they will be used."""
        return self._faults.pending()

    def set_latency(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise EmulatorError(f"latency must be a number of seconds >= 0, not {seconds!r}")
        self._latency = float(seconds)

    @property
    def latency(self) -> float:
        return self._latency

    def set_rate_limit(
        self, rate: tuple[float, int | None] | RateLimit | float | None, burst: int | None = None
    ) -> None:
        """Limit each customer to ``rate`` requests a second in bursts of ``burst``.

        ``set_rate_limit(100, 10)``, ``set_rate_limit((100, 10))`` or a ``RateLimit``;
        ``None`` lifts the limit. Every customer's bucket starts full again.
        """
        limit: RateLimit | None
        if rate is None or isinstance(rate, RateLimit):
            limit = rate
        elif isinstance(rate, tuple):
            if len(rate) != 2:
                raise EmulatorError("rate_limit is (rate, burst)")
            limit = RateLimit.of(rate[0], rate[1])
        else:
            limit = RateLimit.of(rate, burst)
        self._limiter.set_limit(limit)

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._limiter.limit

    def add_api_key(self, api_key: str) -> None:
        """Accept one more key, as a new customer."""
        self._store.add_customer(api_key)

    # -- inspection ---------------------------------------------------------------------

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests arrived (faulted ones included), optionally of one method/path."""
        wanted_method = method.upper() if method is not None else None
        with self._counts_lock:
            return sum(
                count
                for (seen_method, seen_path), count in self._counts.items()
                if (wanted_method is None or seen_method == wanted_method)
                and (path is None or seen_path == path)
            )

    def request_counts(self) -> dict[str, int]:
        """``{"GET /v1/applications": n, ...}`` for every method and path seen."""
        with self._counts_lock:
            return {
                f"{method} {path}": count for (method, path), count in sorted(self._counts.items())
            }

    def rate_limited_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests the rate limit refused (429), optionally of one method/path."""
        wanted_method = method.upper() if method is not None else None
        with self._counts_lock:
            return sum(
                count
                for (seen_method, seen_path), count in self._refused.items()
                if (wanted_method is None or seen_method == wanted_method)
                and (path is None or seen_path == path)
            )

    def stats(self) -> dict[str, Any]:
        """The limit and the counts: ``{"rate_limit": {"rate", "burst"} | None,
        "requests": {"POST /v1/applications": n, ...}, "rate_limited": {...}}``.

        ``requests`` counts every request that arrived (refused ones included), so the
        share of creates refused is ``rate_limited[k] / requests[k]``.
        """
        limit = self._limiter.limit
        with self._counts_lock:
            refused = {f"{m} {p}": count for (m, p), count in sorted(self._refused.items())}
        return {
            "rate_limit": limit.to_json() if limit is not None else None,
            "requests": self.request_counts(),
            "rate_limited": refused,
        }

    def reset_request_counts(self) -> None:
        """Zero the request counts and the rate-limited counts (not the limit's buckets)."""
        with self._counts_lock:
            self._counts.clear()
            self._refused.clear()

    def applications(self, api_key: str) -> list[dict[str, Any]]:
        """The applications of that key's customer, as the list shows them."""
        customer_id = self._store.customer_of(api_key)
        if customer_id is None:
            raise EmulatorError("that API key is not known to this emulator")
        return [app.listed() for app in self._store.apps_of(customer_id)]

    def issued_keys(self, api_key: str) -> dict[str, str]:
        """Test-only insight: every key issued to that key's customer, by application id
        (what a leak scan looks for; the API itself never shows a key twice)."""
        customer_id = self._store.customer_of(api_key)
        if customer_id is None:
            raise EmulatorError("that API key is not known to this emulator")
        return {app.id: app.api_key for app in self._store.apps_of(customer_id)}

    def webhook_secret_of(self, app_id: str) -> str | None:
        """The webhook secret an application was created with (``None`` if none or no such app)."""
        app = self._store.app(app_id)
        return app.webhook_secret if app is not None else None

    # -- what each request is answered (the httpd.Responder protocol) -----------------

    def respond(self, request: Request) -> api.Answer | None:
        """The answer to one request, or ``None`` to close the connection without one."""
        method, path = request.method, request.path
        if path.startswith(CONTROL_PREFIX):
            if not is_loopback(request.client_host):
                return api.error(403, "forbidden", "emulator controls answer loopback only")
            return controls.answer(self, method, path, request.body)
        if self.receiver is not None and path.startswith(RECEIVER_PREFIX):
            return self.receiver.respond(request, self._wait)
        self._count(method, path)
        if path != api.APPLICATIONS_PATH:
            answer = api.not_found(method, path)
        elif method not in api.API_METHODS:
            answer = api.method_not_allowed(method, path, api.API_METHODS)
        else:
            return self._serve_limited(request)
        self._wait(self._latency)
        return answer

    def _serve_limited(self, request: Request) -> api.Answer | None:
        # The limit stands in front of everything else, as a gateway would: a refused
        # request spends no fault and commits nothing. A request without a known key is
        # nobody's to limit; it goes on to its 401 (or its fault).
        if self._limiter.limit is not None:
            token = api.bearer_token(request.authorization)
            customer_id = self._store.customer_of(token) if token is not None else None
            refusal = self._limiter.take(customer_id) if customer_id is not None else None
            announced = (
                self._limiter.announced(customer_id)
                if customer_id is not None and self.rate_limit_headers
                else ()
            )
            if refusal is not None:
                with self._counts_lock:
                    self._refused[(request.method, request.path)] += 1
                self._wait(self._latency)
                return api.error(
                    429,
                    "rate_limited",
                    "rate limit exceeded, retry later",
                    (("Retry-After", refusal.retry_after), *announced),
                )
            if announced:
                served = self._serve_with_faults(
                    request.method, request.authorization, request.body
                )
                if served is None:
                    return None
                return replace(served, headers=(*served.headers, *announced))
        return self._serve_with_faults(request.method, request.authorization, request.body)

    def _serve_with_faults(
        self, method: str, authorization: str | None, body: bytes
    ) -> api.Answer | None:
        fault = self._faults.take(method)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind in STATUS_FAULTS:
            status, code, message = STATUS_FAULTS[fault.kind]
            headers = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
            self._wait(self._latency)
            return api.error(status, code, message, headers)
        if kind == "drop_before_commit":
            self._wait(self._latency)
            return None
        answer = self._serve_api(method, authorization, body)
        if kind == "drop_after_commit":
            self._wait(self._latency)
            return None
        if fault is not None and kind == "slow":
            self._wait(fault.delay)
        self._wait(self._latency)
        return answer

    def _count(self, method: str, path: str) -> None:
        with self._counts_lock:
            self._counts[(method, path)] += 1

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _serve_api(self, method: str, authorization: str | None, body: bytes) -> api.Answer:
        token = api.bearer_token(authorization)
        customer_id = self._store.customer_of(token) if token is not None else None
        if customer_id is None:
            return api.UNAUTHORIZED
        if method == "GET":
            return api.list_applications(self._store, customer_id)
        try:
            return api.create_application(self._store, customer_id, body)
        except EmulatorError:
            # The state file could not be written: nothing was created (the app is only
            # remembered after its line is written), so say so like a real 500 would.
            return api.error(500, "internal_error", "the application could not be stored")
