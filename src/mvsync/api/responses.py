"""What one answer of the MiniVoice API means: a value, a retry, or a typed error.

Used by ``mvsync.api.client`` only: it turns an HTTP reply (``mvsync.api.exchange``) or a
transport failure into the parsed body, a ``Retryable`` failure the retry loop may try
again, or one of the errors of ``mvsync.errors`` — every text in them masked
(``mvsync.api.redact``) and escaped (``mvsync.escape``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
import pydantic
from pydantic import SecretStr

from mvsync.api.exchange import Reply
from mvsync.api.redact import Redactor
from mvsync.errors import ApiError, ApiResponseError, OutcomeUnknownError, TransportError

log = logging.getLogger("mvsync.api.client")

# Longest API error code and message shown (after masking, before escaping).
CODE_CHARS = 100
MESSAGE_CHARS = 300
# An id, customer_id or created_at longer than this, or with a space, control or
# format character in it, is not an identifier: it would break every line it is shown on.
MAX_ID_CHARS = 256
# How much longer httpx's per-read timeouts are than the attempt's own budget.
_HTTPX_TIMEOUT_SLACK = 1.0

# Transport failures that prove the request never reached the server: safe to retry a POST.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures after the request may have been sent: a GET retries, a POST is unknown.
MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


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


def display_url(url: httpx.URL) -> str:
    # No userinfo and no query string in anything shown to a user.
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


class Retryable(Exception):
    """One failed attempt that the retry loop may try again (never leaves this module)."""

    def __init__(
        self, error: ApiError, retry_after: float | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        # Nothing listens there (ECONNREFUSED): worth a quick second try, not eight.
        self.connection_refused = refused


@dataclass
class Call:
    """The state of one client call across its attempts."""

    method: str
    url: httpx.URL
    shown_url: str
    secrets: Redactor
    body: dict[str, str] | None = None
    attempt_seconds: float = 0.0  # time spent inside attempts; waits are tenacity's idle_for
    status: int = 0  # the status of the 2xx answer whose body is parsed, for its messages
    honored_until: float = 0.0  # the end of the account's pause this call waited out
    # How a 2xx body is read: parsed as JSON (``json_body``) unless the call names its own
    # reader (the list reads its bytes straight into models: ``mvsync.api.bodies``).
    read: Callable[[Call, Reply], Any] | None = None


def transport_failure(call: Call, exc: httpx.HTTPError, number: int) -> NoReturn:
    reason = call.secrets.shown(str(exc) or type(exc).__name__, MESSAGE_CHARS)
    what = f"{call.method} {call.shown_url}"
    log.debug("%s attempt %d: no answer (%s: %s)", what, number, type(exc).__name__, reason)
    if isinstance(exc.__cause__, ssl.SSLError):
        # A certificate or TLS failure will not heal by retrying: say so at once.
        raise TransportError(
            f"{what}: TLS failed ({reason})", method=call.method, url=call.shown_url
        ) from None
    if isinstance(exc, NOT_SENT):
        error = TransportError(
            f"{what}: could not connect ({type(exc).__name__}: {reason})",
            method=call.method,
            url=call.shown_url,
        )
        raise Retryable(error, refused=_connection_refused(exc)) from None
    if isinstance(exc, MAYBE_SENT):
        _no_answer_after_sending(call, f"no answer ({type(exc).__name__}: {reason})")
    raise TransportError(
        f"{what} failed ({type(exc).__name__}: {reason})", method=call.method, url=call.shown_url
    ) from None


def _connection_refused(exc: BaseException) -> bool:
    # httpx wraps httpcore's error, which wraps (as context) the socket's own.
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or any(
            isinstance(arg, ConnectionRefusedError) for arg in seen.args
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_refusal(status: int, retry_after: float | None) -> bool:
    """A 429, or a 503 with ``Retry-After``: the API is known not to have processed it."""
    return status == 429 or (status == 503 and retry_after is not None)


def attempt_timed_out(call: Call, number: int, budget: float, *, maybe_sent: bool) -> NoReturn:
    """An attempt whose whole answer did not arrive within its budget: a timeout."""
    what = f"{call.method} {call.shown_url}"
    log.debug("%s attempt %d: no complete answer within %.3fs", what, number, budget)
    if not maybe_sent:
        error = TransportError(
            f"{what}: could not connect within {budget:.3g}s",
            method=call.method,
            url=call.shown_url,
        )
        raise Retryable(error)
    _no_answer_after_sending(call, f"no complete answer within {budget:.3g}s")


def _no_answer_after_sending(call: Call, what_happened: str) -> NoReturn:
    """The one decision for a request sent whose answer never came: a POST's outcome is
    unknown (list before anything else), a GET is retried."""
    what = f"{call.method} {call.shown_url}"
    if call.method == "POST":
        raise OutcomeUnknownError(
            f"{what}: {what_happened} after the request was sent; the application may or may"
            " not have been created — list before retrying",
            method=call.method,
            url=call.shown_url,
        ) from None
    raise Retryable(
        TransportError(f"{what}: {what_happened}", method=call.method, url=call.shown_url)
    ) from None


def answer(call: Call, reply: Reply) -> Any:
    status = reply.status
    what = f"{call.method} {call.shown_url}"
    if 200 <= status < 300:
        call.status = status
        return (call.read or json_body)(call, reply)
    if 300 <= status < 400:
        location = reply.headers.get("Location")
        target = ""
        if location:
            try:
                target = f" to {display_url(call.url.join(location))}"
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
    if is_refusal(status, retry_after):
        # Known not processed: safe to retry for both methods.
        raise Retryable(
            ApiError(message, method=call.method, url=call.shown_url, status=status, code=code),
            retry_after,
        )
    if status >= 500:
        if call.method == "POST":
            error_type = OutcomeUnknownError
            message += "; the application may or may not have been created — list before retrying"
        else:
            raise Retryable(
                ApiError(message, method=call.method, url=call.shown_url, status=status, code=code),
                retry_after,
            )
    raise error_type(message, method=call.method, url=call.shown_url, status=status, code=code)


def _error_body(call: Call, reply: Reply) -> tuple[str | None, str | None]:
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
        call.secrets.shown(code, CODE_CHARS) if isinstance(code, str) and code else None,
        call.secrets.shown(message, MESSAGE_CHARS)
        if isinstance(message, str) and message
        else None,
    )


def json_body(call: Call, reply: Reply) -> Any:
    # The body itself is never shown: a create answer carries the new key.
    if reply.too_large:
        raise malformed(call, reply.status, f"the body is larger than {reply.cap:,} bytes")
    try:
        return json.loads(reply.content)
    except json.JSONDecodeError as error:
        reason = "the body is not JSON"
        if error.msg == "Extra data":
            reason = "the body is one JSON value followed by other bytes"
            _salvage_key(call, reply, reply.content.decode(), reason)
    except UnicodeDecodeError as error:
        reason = "the body is not JSON (not UTF-8 text)"
        _salvage_key(
            call,
            reply,
            reply.content[: error.start].decode(),
            "the body is one JSON value followed by bytes that are not UTF-8 text",
        )
    except ValueError:  # int() refuses a number of more than 4,300 digits
        reason = "the body holds a number too long to read"
    except RecursionError:
        reason = "the body is nested too deeply to read"
    raise malformed(call, reply.status, reason)


def _salvage_key(call: Call, reply: Reply, text: str, reason: str) -> None:
    """A create answer whose JSON object is followed by garbage still holds a readable
    key: raise the malformed-answer error carrying it, so that apply stores it."""
    if call.method != "POST":
        return
    try:
        head, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except (ValueError, RecursionError):
        return
    key = head.get("api_key") if isinstance(head, dict) else None
    if not isinstance(key, str) or not key:
        return
    raw_id = head.get("id")
    app_id = raw_id if isinstance(raw_id, str) and raw_id.isprintable() and raw_id else None
    raise malformed(call, reply.status, reason, issued_key=key, app_id=app_id)


def malformed(
    call: Call,
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
