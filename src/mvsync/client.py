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
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn

import httpx
import pydantic
import tenacity

from mvsync import __version__
from mvsync.errors import (
    ApiError,
    ApiResponseError,
    MvsyncError,
    OutcomeUnknownError,
    TransportError,
    UsageError,
)
from mvsync.model import CreatedApp, CreateRequest, RemoteApp

log = logging.getLogger("mvsync.client")

USER_AGENT = f"mvsync/{__version__}"
APPLICATIONS_PATH = "/v1/applications"
MASK = "***"

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

    Its ``repr`` masks everything, so no debugger, log or traceback shows the token.
    """

    def __init__(self, token: str, *others: str | None) -> None:
        self.token = token
        self._values = tuple(v for v in (token, *others) if v)

    def __repr__(self) -> str:
        return f"<secrets: {len(self._values)} masked>"

    def authorization(self) -> str:
        return f"Bearer {self.token}"

    def with_(self, other: str | None) -> _Secrets:
        return _Secrets(self.token, *self._values[1:], other)

    def scrub(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text


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
    ) -> None:
        base = _checked_base_url(api_url)
        _check_api_key(api_key)
        self._base_url = base
        self._applications_url = base.copy_with(path=base.path.rstrip("/") + APPLICATIONS_PATH)
        self._secrets = _Secrets(api_key)
        self._timeout = timeout
        self._retry = retry
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
        timeout = max(min(self._timeout, remaining), 0.001)
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
            timeout,
            MASK,
            USER_AGENT,
        )
        started = time.monotonic()
        try:
            response = self._http.request(
                call.method,
                call.url,
                json=call.body,
                headers=headers,
                timeout=timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            call.attempt_seconds += time.monotonic() - started
            _transport_failure(call, exc, number)
        except (httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as exc:
            # Outside httpx's HTTPError tree: typed, scrubbed, never chained.
            call.attempt_seconds += time.monotonic() - started
            message = call.secrets.scrub(f"{call.method} {call.shown_url} failed: {exc!r}")
            raise TransportError(message, method=call.method, url=call.shown_url) from None
        call.attempt_seconds += time.monotonic() - started
        log.debug(
            "%s %s attempt %d answered %d",
            call.method,
            call.shown_url,
            number,
            response.status_code,
        )
        return _answer(call, response)


# --- one answer ----------------------------------------------------------------------


def _failure_of(state: tenacity.RetryCallState) -> _Retryable:
    outcome = state.outcome
    failure = outcome.exception() if outcome is not None else None
    if not isinstance(failure, _Retryable):  # pragma: no cover - the retry predicate ensures it
        raise TypeError("the retry loop saw a failure it does not retry")
    return failure


def _transport_failure(call: _Call, exc: httpx.HTTPError, number: int) -> NoReturn:
    reason = call.secrets.scrub(str(exc) or type(exc).__name__)
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


def _answer(call: _Call, response: httpx.Response) -> Any:
    status = response.status_code
    what = f"{call.method} {call.shown_url}"
    if 200 <= status < 300:
        return _json_body(call, response)
    if 300 <= status < 400:
        location = response.headers.get("Location")
        target = ""
        if location:
            try:
                target = f" to {_display_url(call.url.join(location))}"
            except httpx.InvalidURL:
                target = " to an invalid URL"
        raise ApiError(
            f"{what}: the API redirected ({status}){call.secrets.scrub(target)}; mvsync does not"
            " follow redirects (its API key would go with them) — set api_url to the final URL",
            method=call.method,
            url=call.shown_url,
            status=status,
        )
    code, api_message = _error_body(call, response)
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
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
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


def _error_body(call: _Call, response: httpx.Response) -> tuple[str | None, str | None]:
    """The API's ``{"error": {"code", "message"}}``, scrubbed; ``(None, None)`` if absent."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    message = error.get("message")
    return (
        call.secrets.scrub(code[:100]) if isinstance(code, str) and code else None,
        call.secrets.scrub(message[:300]) if isinstance(message, str) and message else None,
    )


def _json_body(call: _Call, response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        # The body itself is never shown: a create answer carries the new key.
        raise _malformed(call, response.status_code, "the body is not JSON") from None


def _malformed(call: _Call, status: int, reason: str) -> ApiResponseError:
    message = f"{call.method} {call.shown_url} answered {status} with an unexpected body: {reason}"
    if call.method == "POST":
        message += "; the application was probably created — list before retrying"
    return ApiResponseError(
        call.secrets.scrub(message), method=call.method, url=call.shown_url, status=status
    )


def _validation_summary(error: pydantic.ValidationError) -> str:
    # Locations and messages only: pydantic's own text quotes the input, which may hold a key.
    parts = []
    for problem in error.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


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
            apps.append(RemoteApp.model_validate(item))
        except pydantic.ValidationError as exc:
            raise _malformed(call, 200, f"data[{index}]: {_validation_summary(exc)}") from None
    return apps


def _parse_created(payload: Any, call: _Call) -> CreatedApp:
    if not isinstance(payload, dict):
        raise _malformed(call, 200, f"expected an object, got {type(payload).__name__}")
    key = payload.get("api_key")
    if not isinstance(key, str) or not key:
        raise _malformed(call, 200, "no api_key in the create answer")
    try:
        return CreatedApp.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise _malformed(call, 200, _validation_summary(exc)) from None


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


def _checked_base_url(api_url: str) -> httpx.URL:
    try:
        url = httpx.URL(api_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeApiUrlError(f"api_url {api_url!r} is not a valid URL") from None
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
