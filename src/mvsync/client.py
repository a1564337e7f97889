"""The one client of the MiniVoice Applications API (SPEC section 1).

``MiniVoiceClient`` wraps an ``httpx.Client`` (given, or made here) and offers the two
calls the API documents: ``list_applications()`` and ``create_application()``. It turns
every answer into a typed value (``mvsync.model``) or a typed error (``mvsync.errors``):

    ApiError             a non-2xx answer (401 names the URL that refused the key),
                         or a 3xx: mvsync never follows a redirect with its token
    ApiResponseError     a 2xx answer whose body is not what the API documents
    TransportError       no answer: connection refused, DNS, a GET that timed out
    OutcomeUnknownError  a POST that may have been committed: read timeout, reset
                         after sending, 5xx other than 503 with Retry-After

Retries (SPEC guarantee 2) are tenacity's loop with this module's rules: a GET is
retried on 429, 5xx and transport failures; a POST only when it is known not to have
been processed (429, 503 with Retry-After, a connection never made). Waits are capped
full-jitter exponential backoff, or exactly what ``Retry-After`` asks (seconds or an
HTTP date); every call has a total deadline, and a wait that would end past it ends the
call instead.

Token safety (SPEC guarantee 4): the bearer token is refused over plain ``http`` to a
non-loopback host before any request; redirects are never followed; error texts and
logs (logger ``mvsync.client``) show ``Bearer ***`` at most, and every text this module
produces is scrubbed of the token and of the webhook secret being sent.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus

import httpx
import pydantic
import tenacity
from pydantic import SecretStr

from mvsync import __version__
from mvsync.errors import (
    ApiError,
    ApiResponseError,
    MvsyncError,
    OutcomeUnknownError,
    TransportError,
    UsageError,
)
from mvsync.escape import escape
from mvsync.model import CreatedApp, CreateRequest, RemoteApp

log = logging.getLogger("mvsync.client")

USER_AGENT = f"mvsync/{__version__}"
APPLICATIONS_PATH = "/v1/applications"
MASK = "***"

# The largest body read from a 2xx answer: a 100,000-application list is about 30 MB.
MAX_BODY_BYTES = 256 * 1024 * 1024
# The largest error body read: only its code and message are shown, cut to a few hundred.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Longest API error code and message shown (after masking, before escaping).
_CODE_CHARS = 100
_MESSAGE_CHARS = 300
# An id, customer_id or created_at longer than this, or with a space, control or
# format character in it, is not an identifier: it would break every line it is shown on.
MAX_ID_CHARS = 256
# How much longer httpx's per-read timeouts are than the attempt's own budget.
_HTTPX_TIMEOUT_SLACK = 1.0

# Transport failures that prove the request never reached the server: safe to retry a POST.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures after the request may have been sent: a GET retries, a POST is unknown.
_MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class UnsafeApiUrlError(MvsyncError):
    """An ``api_url`` or API key that mvsync refuses to use (before any request)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one client call may try.

    ``deadline`` bounds one call including every attempt and wait. Backoff is full
    jitter: a uniform wait in ``[0, min(max_backoff, initial_backoff * 2**(n-1))]``
    before attempt ``n + 1``. A ``Retry-After`` answer is waited exactly, unless that
    wait would end past the deadline, in which case the call ends at once. ``sleep`` is
    the only way the client waits, so tests can record the waits instead of sleeping.
    """

    deadline: float = 60.0
    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if not self.deadline > 0:
            raise UsageError(
                f"the retry deadline must be a positive number of seconds, not {self.deadline!r}"
            )
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, not {self.max_attempts!r}")
        if not (self.initial_backoff >= 0 and self.max_backoff >= 0):
            raise UsageError("backoff seconds must not be negative")

    def backoff(self, attempt: int) -> float:
        """The capped full-jitter wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** max(attempt - 1, 0))
        return random.uniform(0.0, max(ceiling, 0.0))  # jitter, not cryptography


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header, or ``None`` when absent or unreadable.

    Accepts delay-seconds (``"2"``, also ``"1.5"``) and an HTTP date; a date in the
    past means "now" (0 seconds).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, infinities
            return None
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" and obsolete forms: HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (the hosts plain http may reach)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _display_url(url: httpx.URL) -> str:
    # No userinfo and no query string in anything shown to a user.
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


class _Secrets:
    """The bearer token, other texts that must never leave this module, and the scrubber.

    ``scrub`` masks every form a secret takes in an answer that echoes it: as sent,
    JSON-escaped (a secret holding a quote or a backslash is echoed escaped), and
    URL-encoded; case-insensitively, since an echo may change case.
    Its ``repr`` masks everything, so no debugger, log or traceback shows the token.
    """

    def __init__(self, token: str, *others: str | None) -> None:
        self.token = token
        self._values = tuple(v for v in (token, *others) if v)
        forms = {form for value in self._values for form in _forms_of(value) if form}
        # Longest first, so that a longer form is masked whole, not around a shorter one.
        alternatives = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile(
            "|".join(re.escape(form) for form in alternatives), re.IGNORECASE
        )

    def __repr__(self) -> str:
        return f"<secrets: {len(self._values)} masked>"

    def authorization(self) -> str:
        return f"Bearer {self.token}"

    def with_(self, other: str | None) -> _Secrets:
        return _Secrets(self.token, *self._values[1:], other)

    def scrub(self, text: str) -> str:
        return self._pattern.sub(MASK, text)

    def shown(self, text: str, limit: int | None = None) -> str:
        """``text`` from the server made safe to show: masked, cut, then escaped.

        Masking comes first, so that a cut never leaves most of a secret unmasked;
        escaping comes after the cut, and is masked again (an escaped form of a secret
        holding a control character is also its JSON form).
        """
        masked = self.scrub(text)
        if limit is not None and len(masked) > limit:
            masked = masked[:limit] + "…"
        return self.scrub(escape(masked))


def _forms_of(value: str) -> set[str]:
    # As sent, and as a JSON string holds it; each of those also URL-encoded (an API
    # may echo the raw body in a query string or a form).
    escaped = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    encoded = {code(form) for form in escaped for code in (_quote_all, quote, quote_plus)}
    return escaped | encoded


def _quote_all(text: str) -> str:
    return quote(text, safe="")


class _Retryable(Exception):
    """One failed attempt that the retry loop may try again (never leaves this module)."""

    def __init__(self, error: ApiError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass
class _Call:
    """The state of one client call across its attempts."""

    method: str
    url: httpx.URL
    shown_url: str
    secrets: _Secrets
    body: dict[str, str] | None = None
    attempt_seconds: float = 0.0  # time spent inside attempts; waits are tenacity's idle_for


class MiniVoiceClient:
    """The MiniVoice Applications API, typed, retried and token-safe.

    Thread-safe: every call keeps its state on its own stack, and the one
    ``httpx.Client`` is itself safe to share across a small thread pool.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),  # frozen, so sharing it is safe
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        base = _checked_base_url(api_url)
        _check_api_key(api_key)
        self._base_url = base
        self._applications_url = base.copy_with(path=base.path.rstrip("/") + APPLICATIONS_PATH)
        self._secrets = _Secrets(api_key)
        self._timeout = timeout
        self._retry = retry
        self._max_body_bytes = max_body_bytes
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(follow_redirects=False)

    def __repr__(self) -> str:
        return f"MiniVoiceClient({_display_url(self._base_url)!r}, api_key={MASK!r})"

    @property
    def api_url(self) -> str:
        """The API's base URL as shown to users (no userinfo)."""
        return _display_url(self._base_url)

    def close(self) -> None:
        """Close the ``httpx.Client`` if this client made it (a given one is the caller's)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> MiniVoiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the two calls -------------------------------------------------------------

    def list_applications(self, *, deadline: float | None = None) -> list[RemoteApp]:
        """Every application of the key's customer, as ``GET /v1/applications`` lists them.

        ``deadline`` shortens this one call's retry deadline (never lengthens it): a
        caller with its own, shorter deadline is not held past it by the retries.
        """
        call = self._new_call("GET", None, self._secrets)
        policy = self._retry
        if deadline is not None and 0 < deadline < policy.deadline:
            policy = replace(policy, deadline=deadline)
        payload = self._run(call, policy)
        return _parse_list(payload, call)

    def create_application(self, request: CreateRequest) -> CreatedApp:
        """``POST /v1/applications``: the one answer that carries the new key."""
        secret = request.webhook_secret.get_secret_value() if request.webhook_secret else None
        call = self._new_call("POST", request.body(), self._secrets.with_(secret))
        payload = self._run(call, self._retry)
        return _parse_created(payload, call)

    # --- the retry loop ---------------------------------------------------------------

    def _new_call(self, method: str, body: dict[str, str] | None, secrets: _Secrets) -> _Call:
        return _Call(
            method=method,
            url=self._applications_url,
            shown_url=_display_url(self._applications_url),
            secrets=secrets,
            body=body,
        )

    def _run(self, call: _Call, policy: RetryPolicy) -> Any:

        def wait(state: tenacity.RetryCallState) -> float:
            failure = _failure_of(state)
            if failure.retry_after is not None:
                return failure.retry_after
            return policy.backoff(state.attempt_number)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            spent = call.attempt_seconds + state.idle_for
            return spent + state.upcoming_sleep >= policy.deadline

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = _failure_of(state)
            log.debug(
                "%s %s attempt %d failed (%s); waiting %.3fs before attempt %d",
                call.method,
                call.shown_url,
                state.attempt_number,
                failure.error.status or type(failure.error).__name__,
                state.upcoming_sleep,
                state.attempt_number + 1,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=wait,
            stop=stop,
            sleep=policy.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return self._attempt(call, attempts, policy)

        try:
            return retrying(attempt)
        except _Retryable as failure:
            raise _gave_up(failure, attempts, policy) from None

    def _attempt(self, call: _Call, number: int, policy: RetryPolicy) -> Any:
        remaining = policy.deadline - call.attempt_seconds
        # One bound for the whole attempt, whatever the server does: httpx's timeouts
        # only bound each read, so a server that drips a byte at a time would hold a
        # timed read forever. Both come from the same budget.
        budget = max(min(self._timeout, remaining), 0.001)
        headers = {
            "Authorization": call.secrets.authorization(),
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        log.debug(
            "%s %s attempt %d (timeout %.3fs; Authorization: Bearer %s; User-Agent: %s)",
            call.method,
            call.shown_url,
            number,
            budget,
            MASK,
            USER_AGENT,
        )
        exchange = _Exchange(self._http, self._max_body_bytes)
        started = time.monotonic()
        try:
            request = self._http.build_request(
                call.method,
                call.url,
                json=call.body,
                headers=headers,
                # httpx's own timeouts only back up the wait below (a thread abandoned
                # while connecting gives up on its own); one clock decides, so a slow
                # answer always reads the same.
                timeout=budget + _HTTPX_TIMEOUT_SLACK,
                extensions={"trace": exchange.trace},
            )
            reply = exchange.run(request, budget)
        except httpx.HTTPError as exc:
            call.attempt_seconds += time.monotonic() - started
            _transport_failure(call, exc, number)
        except (httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as exc:
            # Outside httpx's HTTPError tree: typed, scrubbed, never chained.
            call.attempt_seconds += time.monotonic() - started
            message = call.secrets.shown(f"{call.method} {call.shown_url} failed: {exc!r}")
            raise TransportError(message, method=call.method, url=call.shown_url) from None
        call.attempt_seconds += time.monotonic() - started
        if reply is None:
            _attempt_timed_out(call, number, budget, maybe_sent=exchange.maybe_sent)
        log.debug(
            "%s %s attempt %d answered %d",
            call.method,
            call.shown_url,
            number,
            reply.status,
        )
        return _answer(call, reply)


@dataclass(frozen=True)
class _Reply:
    """One answer, read whole (or found too large to read)."""

    status: int
    headers: httpx.Headers
    content: bytes
    too_large: bool = False
    cap: int = 0  # the most bytes of this body that were to be read


class _Exchange:
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
        self._reply: _Reply | None = None
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

    def run(self, request: httpx.Request, budget: float) -> _Reply | None:
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

    def _exchange(self, request: httpx.Request) -> _Reply | None:
        response = self._http.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            cap = self._max_body_bytes
            if not 200 <= status < 300:
                cap = min(cap, MAX_ERROR_BODY_BYTES)
            too_large = _Reply(status, response.headers, b"", too_large=True, cap=cap)
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
            return _Reply(status, response.headers, bytes(body), cap=cap)
        finally:
            response.close()  # before the end of the body: httpx closes the connection


# --- one answer ----------------------------------------------------------------------


def _failure_of(state: tenacity.RetryCallState) -> _Retryable:
    outcome = state.outcome
    failure = outcome.exception() if outcome is not None else None
    if not isinstance(failure, _Retryable):  # pragma: no cover - the retry predicate ensures it
        raise TypeError("the retry loop saw a failure it does not retry")
    return failure


def _transport_failure(call: _Call, exc: httpx.HTTPError, number: int) -> NoReturn:
    reason = call.secrets.shown(str(exc) or type(exc).__name__, _MESSAGE_CHARS)
    what = f"{call.method} {call.shown_url}"
    log.debug("%s attempt %d: no answer (%s: %s)", what, number, type(exc).__name__, reason)
    if isinstance(exc.__cause__, ssl.SSLError):
        # A certificate or TLS failure will not heal by retrying: say so at once.
        raise TransportError(
            f"{what}: TLS failed ({reason})", method=call.method, url=call.shown_url
        ) from None
    if isinstance(exc, _NOT_SENT):
        error = TransportError(
            f"{what}: could not connect ({type(exc).__name__}: {reason})",
            method=call.method,
            url=call.shown_url,
        )
        raise _Retryable(error) from None
    if isinstance(exc, _MAYBE_SENT):
        if call.method == "POST":
            raise OutcomeUnknownError(
                f"{what}: no answer after the request was sent ({type(exc).__name__}: {reason});"
                " the application may or may not have been created — list before retrying",
                method=call.method,
                url=call.shown_url,
            ) from None
        error = TransportError(
            f"{what}: no answer ({type(exc).__name__}: {reason})",
            method=call.method,
            url=call.shown_url,
        )
        raise _Retryable(error) from None
    raise TransportError(
        f"{what} failed ({type(exc).__name__}: {reason})", method=call.method, url=call.shown_url
    ) from None


def _attempt_timed_out(call: _Call, number: int, budget: float, *, maybe_sent: bool) -> NoReturn:
    """An attempt whose whole answer did not arrive within its budget: a timeout."""
    what = f"{call.method} {call.shown_url}"
    log.debug("%s attempt %d: no complete answer within %.3fs", what, number, budget)
    if not maybe_sent:
        error = TransportError(
            f"{what}: could not connect within {budget:.3g}s",
            method=call.method,
            url=call.shown_url,
        )
        raise _Retryable(error)
    if call.method == "POST":
        raise OutcomeUnknownError(
            f"{what}: no complete answer within {budget:.3g}s after the request was sent;"
            " the application may or may not have been created — list before retrying",
            method=call.method,
            url=call.shown_url,
        )
    error = TransportError(
        f"{what}: no complete answer within {budget:.3g}s", method=call.method, url=call.shown_url
    )
    raise _Retryable(error)


def _answer(call: _Call, reply: _Reply) -> Any:
    status = reply.status
    what = f"{call.method} {call.shown_url}"
    if 200 <= status < 300:
        return _json_body(call, reply)
    if 300 <= status < 400:
        location = reply.headers.get("Location")
        target = ""
        if location:
            try:
                target = f" to {_display_url(call.url.join(location))}"
            except httpx.InvalidURL:
                target = " to an invalid URL"
        raise ApiError(
            f"{what}: the API redirected ({status}){call.secrets.shown(target)}; mvsync does not"
            " follow redirects (its API key would go with them) — set api_url to the final URL",
            method=call.method,
            url=call.shown_url,
            status=status,
        )
    code, api_message = _error_body(call, reply)
    detail = f"{status} {code}" if code else str(status)
    if api_message:
        detail += f": {api_message}"
    if status == 401:
        raise ApiError(
            f"the API at {call.shown_url} refused the API key ({detail}); check the key in the"
            " environment's api_key_env variable",
            method=call.method,
            url=call.shown_url,
            status=status,
            code=code,
        )
    error_type: type[ApiError] = ApiError
    message = f"{what} answered {detail}"
    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
    if status == 429 or (status == 503 and retry_after is not None):
        # Known not processed: safe to retry for both methods.
        raise _Retryable(
            ApiError(message, method=call.method, url=call.shown_url, status=status, code=code),
            retry_after,
        )
    if status >= 500:
        if call.method == "POST":
            error_type = OutcomeUnknownError
            message += "; the application may or may not have been created — list before retrying"
        else:
            raise _Retryable(
                ApiError(message, method=call.method, url=call.shown_url, status=status, code=code),
                retry_after,
            )
    raise error_type(message, method=call.method, url=call.shown_url, status=status, code=code)


def _error_body(call: _Call, reply: _Reply) -> tuple[str | None, str | None]:
    """The API's ``{"error": {"code", "message"}}``, safe to show; ``(None, None)`` if absent.

    Each is masked first, then cut, then escaped: the API's own words are shown, but
    never a secret it echoed, nor a terminal control sequence.
    """
    if reply.too_large:
        return None, None
    try:
        payload = json.loads(reply.content)
    except (ValueError, RecursionError):
        return None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    message = error.get("message")
    return (
        call.secrets.shown(code, _CODE_CHARS) if isinstance(code, str) and code else None,
        call.secrets.shown(message, _MESSAGE_CHARS)
        if isinstance(message, str) and message
        else None,
    )


def _json_body(call: _Call, reply: _Reply) -> Any:
    # The body itself is never shown: a create answer carries the new key.
    if reply.too_large:
        raise _malformed(call, reply.status, f"the body is larger than {reply.cap:,} bytes")
    try:
        return json.loads(reply.content)
    except json.JSONDecodeError:
        reason = "the body is not JSON"
    except UnicodeDecodeError:
        reason = "the body is not JSON (not UTF-8 text)"
    except ValueError:  # int() refuses a number of more than 4,300 digits
        reason = "the body holds a number too long to read"
    except RecursionError:
        reason = "the body is nested too deeply to read"
    raise _malformed(call, reply.status, reason)


def _malformed(
    call: _Call,
    status: int,
    reason: str,
    *,
    issued_key: str | None = None,
    app_id: str | None = None,
) -> ApiResponseError:
    message = f"{call.method} {call.shown_url} answered {status} with an unexpected body: {reason}"
    secrets = call.secrets.with_(issued_key)
    if issued_key is not None:
        message += (
            "; the application was created and the answer holds its key (not shown)"
            f" — {'id ' + app_id if app_id else 'its id is unreadable'}"
        )
    elif call.method == "POST":
        message += "; the application was probably created — list before retrying"
    return ApiResponseError(
        secrets.shown(message),
        method=call.method,
        url=call.shown_url,
        status=status,
        issued_key=SecretStr(issued_key) if issued_key is not None else None,
        app_id=app_id,
    )


def _validation_summary(error: pydantic.ValidationError) -> str:
    # Locations and messages only: pydantic's own text quotes the input, which may hold a key.
    parts = []
    for problem in error.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


# The fields that identify an application and are shown, stored and compared verbatim.
_IDENTIFIERS = ("id", "customer_id", "created_at")


def is_identifier(value: object) -> bool:
    """True for a string an id may be: 1 to 256 characters, no space, control or format
    character (``str.isprintable`` refuses C0, C1, DEL, bidi controls, line separators)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isprintable()
        and not any(char.isspace() for char in value)
    )


def _identifier_problem(item: dict[str, Any]) -> str | None:
    # The value is never quoted: it is what makes the answer hostile.
    for name in _IDENTIFIERS:
        value = item.get(name)
        if isinstance(value, str) and not is_identifier(value):
            return (
                f"{name}: not an identifier (empty, longer than {MAX_ID_CHARS} characters,"
                " or holding a space, control or format character)"
            )
    return None


def _parse_list(payload: Any, call: _Call) -> list[RemoteApp]:
    if not isinstance(payload, dict):
        raise _malformed(call, 200, f"expected an object, got {type(payload).__name__}")
    data = payload.get("data")
    count = payload.get("count")
    if not isinstance(data, list):
        raise _malformed(call, 200, '"data" is missing or not a list')
    if not isinstance(count, int) or isinstance(count, bool):
        raise _malformed(call, 200, '"count" is missing or not an integer')
    if count != len(data):
        raise _malformed(call, 200, f'"count" is {count} but "data" holds {len(data)} applications')
    apps: list[RemoteApp] = []
    for index, item in enumerate(data):
        try:
            app = RemoteApp.model_validate(item)
        except pydantic.ValidationError as exc:
            raise _malformed(call, 200, f"data[{index}]: {_validation_summary(exc)}") from None
        problem = _identifier_problem(item)
        if problem is not None:
            raise _malformed(call, 200, f"data[{index}].{problem}")
        apps.append(app)
    return apps


def _parse_created(payload: Any, call: _Call) -> CreatedApp:
    if not isinstance(payload, dict):
        raise _malformed(call, 200, f"expected an object, got {type(payload).__name__}")
    key = payload.get("api_key")
    if not isinstance(key, str) or not key:
        raise _malformed(call, 200, "no api_key in the create answer")
    # From here on the answer carries a key the API issued: whatever else is wrong
    # with it, the key goes with the error so that apply stores it rather than lose it.
    raw_id = payload.get("id")
    app_id = raw_id if is_identifier(raw_id) else None
    try:
        created = CreatedApp.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise _malformed(
            call, 200, _validation_summary(exc), issued_key=key, app_id=app_id
        ) from None
    problem = _identifier_problem(payload)
    if problem is not None:
        raise _malformed(call, 200, problem, issued_key=key, app_id=app_id)
    return created


def _gave_up(failure: _Retryable, attempts: int, policy: RetryPolicy) -> ApiError:
    error = failure.error
    note = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    if failure.retry_after is not None:
        note += f"; the API asked to wait {failure.retry_after:g}s"
    note += f" (deadline {policy.deadline:g}s, at most {policy.max_attempts} attempts)"
    return type(error)(
        f"{error} ({note})",
        method=error.method,
        url=error.url,
        status=error.status,
        code=error.code,
    )


# --- refusals before any request ---------------------------------------------------------

# Everything between "//" and the last "@" of the authority: a user name and password.
_USERINFO = re.compile(r"//[^/?#]*@")


def _without_userinfo(api_url: str) -> str:
    # For a URL too broken to parse: never show what may be a password.
    return escape(_USERINFO.sub("//", api_url))


def _checked_base_url(api_url: str) -> httpx.URL:
    try:
        url = httpx.URL(api_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeApiUrlError(
            f"api_url {_without_userinfo(str(api_url))!r} is not a valid URL"
        ) from None
    if url.userinfo:
        # httpx would send them as Basic auth instead of the bearer token, and they
        # would show in every message that names the URL.
        raise UnsafeApiUrlError(
            f"api_url {_display_url(url)!r} holds a user name or password (user:password@):"
            " mvsync authenticates with the API key only — remove them from api_url"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise UnsafeApiUrlError(
            f"api_url {_display_url(url)!r} is not an absolute http(s) URL"
        ) from None
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise UnsafeApiUrlError(
            f"refusing to send the API key over plain http to {url.host}: use https "
            "(plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
        )
    return url


def _check_api_key(api_key: str) -> None:
    # A key with spaces or control characters cannot be a header value, and the HTTP
    # stack's own error would quote it: refuse it here without ever showing it.
    if not api_key:
        raise UnsafeApiUrlError("the API key is empty")
    if not api_key.isascii() or not api_key.isprintable() or any(c.isspace() for c in api_key):
        raise UnsafeApiUrlError(
            "the API key contains spaces, control or non-ASCII characters (it is not shown)"
        )
