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
logs (logger ``mvsync.api.client``) show ``Bearer ***`` at most, and every text this module
produces is scrubbed of the token and of the webhook secret being sent.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import httpx
import tenacity

from mvsync import __version__
from mvsync.api.announced import announced_limit
from mvsync.api.bodies import parse_created, read_list
from mvsync.api.exchange import Exchange
from mvsync.api.ratelimit import (
    AccountLimiter,
    LimiterStatus,
    account_of,
    fingerprint,
    limiter_for,
)
from mvsync.api.redact import MASK, Redactor
from mvsync.api.responses import (
    Call,
    Retryable,
    answer,
    attempt_timed_out,
    display_url,
    is_refusal,
    parse_retry_after,
    transport_failure,
)
from mvsync.api.safety import check_api_key, checked_base_url
from mvsync.errors import (
    ApiError,
    TransportError,
    UsageError,
)
from mvsync.model import CreatedApp, CreateRequest, RemoteApp, key_fingerprint

log = logging.getLogger("mvsync.api.client")

USER_AGENT = f"mvsync/{__version__}"
APPLICATIONS_PATH = "/v1/applications"

# The largest body read from a 2xx answer: a 100,000-application list is about 30 MB.
MAX_BODY_BYTES = 256 * 1024 * 1024

# How much longer httpx's per-read timeouts are than the attempt's own budget.
_HTTPX_TIMEOUT_SLACK = 1.0

# A refused connection (nothing listens on the port) is tried this often, this soon
# again: a server restarting gets one more chance, a wrong port fails at once.
REFUSED_ATTEMPTS = 2
REFUSED_BACKOFF = 0.2


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
    # Told of each retry as it is decided ("GET … answered 500; retrying in 2 s (3 of 8)"),
    # so that a CI log shows the wait instead of silence; the text holds no secret.
    on_retry: Callable[[str], None] | None = field(default=None, compare=False)

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
        limiter: AccountLimiter | None = None,
    ) -> None:
        base = checked_base_url(api_url)
        check_api_key(api_key)
        # One pause and one rate per account, shared with every other client of it.
        self._limiter = limiter if limiter is not None else limiter_for(str(base), api_key)
        self._account = fingerprint(account_of(str(base), api_key))
        self._base_url = base
        self._applications_url = base.copy_with(path=base.path.rstrip("/") + APPLICATIONS_PATH)
        self._secrets = Redactor(api_key)
        # One-way: what a shared database knows this account by (never the key itself).
        self.key_fingerprint = key_fingerprint(api_key)
        self._timeout = timeout
        self._retry = retry
        self._max_body_bytes = max_body_bytes
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(follow_redirects=False)

    def __repr__(self) -> str:
        return f"MiniVoiceClient({display_url(self._base_url)!r}, api_key={MASK!r})"

    @property
    def api_url(self) -> str:
        """The API's base URL as shown to users (no userinfo)."""
        return display_url(self._base_url)

    @property
    def account(self) -> str:
        """A one-way fingerprint of the account (URL and key digest; never the key)."""
        return self._account

    @property
    def limiter(self) -> AccountLimiter:
        """The account's pause and rate, shared with every other client of it."""
        return self._limiter

    def rate_status(self) -> LimiterStatus:
        """Whether requests to this account are paced or paused now, and at which rate."""
        return self._limiter.status()

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
        call = replace(self._new_call("GET", None, self._secrets), read=read_list)
        policy = self._retry
        if deadline is not None and 0 < deadline < policy.deadline:
            policy = replace(policy, deadline=deadline)
        listed: list[RemoteApp] = self._run(call, policy)
        return listed

    def create_application(self, request: CreateRequest) -> CreatedApp:
        """``POST /v1/applications``: the one answer that carries the new key."""
        secret = request.webhook_secret.get_secret_value() if request.webhook_secret else None
        call = self._new_call("POST", request.body(), self._secrets.with_(secret))
        payload = self._run(call, self._retry)
        return parse_created(payload, call)

    # --- the retry loop ---------------------------------------------------------------

    def _new_call(self, method: str, body: dict[str, str] | None, secrets: Redactor) -> Call:
        return Call(
            method=method,
            url=self._applications_url,
            shown_url=display_url(self._applications_url),
            secrets=secrets,
            body=body,
        )

    def _run(self, call: Call, policy: RetryPolicy) -> Any:

        def wait(state: tenacity.RetryCallState) -> float:
            failure = _failure_of(state)
            if failure.retry_after is not None:
                return failure.retry_after
            if failure.connection_refused:
                return min(policy.backoff(state.attempt_number), REFUSED_BACKOFF)
            return policy.backoff(state.attempt_number)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            if _failure_of(state).connection_refused and state.attempt_number >= REFUSED_ATTEMPTS:
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
            if policy.on_retry is not None:
                policy.on_retry(_retry_notice(call, failure, state, policy))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retryable),
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
        except Retryable as failure:
            raise _gave_up(failure, attempts, policy) from None

    def _wait_for_the_account(self, call: Call, policy: RetryPolicy) -> float:
        """The account's pause and pace (shared by every worker); when the request left."""
        remaining = policy.deadline - call.attempt_seconds
        started = time.monotonic()
        sent_at = self._limiter.acquire(policy.sleep, call.honored_until, max_wait=remaining)
        call.attempt_seconds += time.monotonic() - started
        if sent_at is None:
            raise ApiError(
                f"{call.method} {call.shown_url}: not sent — the API asked every request to"
                f" wait (rate-limited) longer than this call's deadline ({policy.deadline:g}s)",
                method=call.method,
                url=call.shown_url,
                status=429,
            )
        return sent_at

    def _attempt(self, call: Call, number: int, policy: RetryPolicy) -> Any:
        sent_at = self._wait_for_the_account(call, policy)
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
        exchange = Exchange(self._http, self._max_body_bytes)
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
            transport_failure(call, exc, number)
        except (httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as exc:
            # Outside httpx's HTTPError tree: typed, scrubbed, never chained.
            call.attempt_seconds += time.monotonic() - started
            message = call.secrets.shown(f"{call.method} {call.shown_url} failed: {exc!r}")
            raise TransportError(message, method=call.method, url=call.shown_url) from None
        call.attempt_seconds += time.monotonic() - started
        if reply is None:
            attempt_timed_out(call, number, budget, maybe_sent=exchange.maybe_sent)
        log.debug(
            "%s %s attempt %d answered %d",
            call.method,
            call.shown_url,
            number,
            reply.status,
        )
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        if is_refusal(reply.status, retry_after):
            call.honored_until = self._limiter.refused(sent_at, retry_after)
        else:
            self._limiter.succeeded()
        # After the refusal's own pause and cut: Retry-After wins over what is announced.
        announced = announced_limit(reply.headers.get, time.time())
        if announced is not None:
            self._limiter.announced(announced)
        return answer(call, reply)


def _retry_notice(
    call: Call, failure: Retryable, state: tenacity.RetryCallState, policy: RetryPolicy
) -> str:
    """One line for a person watching: what failed, how long until which attempt."""
    status = failure.error.status
    what = f"{call.method} {call.shown_url} answered {status}" if status else str(failure.error)
    wait = state.upcoming_sleep
    seconds = f"{wait:.0f}" if wait >= 9.5 else f"{wait:.1f}".removesuffix(".0")
    limit = REFUSED_ATTEMPTS if failure.connection_refused else policy.max_attempts
    return f"{what}; retrying in {seconds} s ({state.attempt_number + 1} of {limit})"


def _failure_of(state: tenacity.RetryCallState) -> Retryable:
    outcome = state.outcome
    failure = outcome.exception() if outcome is not None else None
    if not isinstance(failure, Retryable):  # pragma: no cover - the retry predicate ensures it
        raise TypeError("the retry loop saw a failure it does not retry")
    return failure


def _gave_up(failure: Retryable, attempts: int, policy: RetryPolicy) -> ApiError:
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
