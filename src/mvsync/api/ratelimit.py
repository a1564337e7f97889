"""One request rate per account, shared by every worker and client of it (SPEC guarantee 2).

An account is an API URL and a key (the key only as a SHA-256 digest): every
``MiniVoiceClient`` of one account shares one ``AccountLimiter`` (``limiter_for``), so a
refusal seen by one worker slows them all, reads and creates alike.

The idea is the client-side rate limiter of the AWS SDKs' "adaptive" retry mode,
written here for this client:

- Until the API first refuses, nothing is paced (``--concurrency`` is the only bound).
- A refusal (429, or 503 with ``Retry-After``) pauses every request of the account
  until its ``Retry-After`` has passed, and cuts the rate: the new rate is ``BETA`` times
  the rate the API was accepting (measured, smoothed), and that accepted rate becomes
  the cubic curve's plateau. Refusals of requests sent before that cut are the same
  episode and cut nothing more.
- Each success lets the rate grow along a cubic curve from the cut back to the plateau
  (fast at first, flat near it), then slowly past it; it never exceeds twice the rate
  measured, so an idle account does not bank a rate it never used.
- Requests wait for a token of a small bucket filled at that rate.

Waiting goes through the caller's ``sleep`` (``RetryPolicy.sleep``), so a test that
records its waits records these too; a pause a call has already waited out (its own
``Retry-After``, waited by the retry loop) is not waited again.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

# The cut: the new rate is BETA times the rate the API was accepting.
BETA = 0.7
# The cubic's scale (requests/s per s**3), as in the AWS SDKs.
SCALE = 0.4
# Never slower than this (requests a second), whatever the refusals.
MIN_RATE = 0.5
# The accepted rate is measured over intervals this long, and smoothed.
INTERVAL = 0.5
SMOOTHING = 0.8
# The bucket holds this many seconds' worth of requests, at least one.
BUCKET_SECONDS = 0.05


@dataclass(frozen=True)
class LimiterStatus:
    """What the progress line shows: paced (or paused) and at which rate."""

    limited: bool
    rate: float | None
    paused: bool


class AccountLimiter:
    """The pause and the rate of one account; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._rate: float | None = None  # None: not paced yet
        self._plateau = 0.0
        self._growth_from = 0.0
        self._cut_at = -math.inf
        self._tokens = 1.0
        self._updated = clock()
        # The accepted rate: successes per second, measured per INTERVAL and smoothed.
        self._measured = 0.0
        self._first_success: float | None = None
        self._interval_start: float | None = None
        self._interval_count = 0
        self._waiting = 0
        self.refusals = 0

    # --- what a request does ------------------------------------------------------

    def acquire(
        self,
        sleep: Callable[[float], None],
        honored_until: float = 0.0,
        max_wait: float = math.inf,
    ) -> float | None:
        """Wait for the pause and a token; the time the request may leave, or ``None``
        (without waiting) when that would take longer than ``max_wait`` seconds.

        ``honored_until``: the end of a pause this call has already waited out.
        """
        while True:
            with self._lock:
                now = self._clock()
                until = self._paused_until
                reserved = False
                if until > now and until > honored_until:
                    wait = until - now
                    honored_until = until
                else:
                    wait = self._take_token(now)
                    if wait <= 0:
                        return now
                    reserved = True
                    honored_until = max(honored_until, until)
                if wait > max_wait:
                    if reserved:
                        self._tokens += 1.0  # the token reserved is not used
                    return None
                max_wait -= wait
                self._waiting += 1
            try:
                sleep(wait)
            finally:
                with self._lock:
                    self._waiting -= 1
            with self._lock:
                if self._paused_until <= honored_until:
                    return self._clock()

    def succeeded(self) -> None:
        """An answer that was not a refusal: measure it, and let the rate grow."""
        with self._lock:
            now = self._clock()
            self._measure(now)
            if self._rate is None:
                return
            since = now - self._growth_from
            if since <= 0:
                return
            knee = (self._plateau * (1 - BETA) / SCALE) ** (1 / 3)
            cubic = SCALE * (since - knee) ** 3 + self._plateau
            grown = min(cubic, 2 * max(self._measured, self._rate))
            self._set_rate(max(grown, self._rate))

    def refused(self, sent_at: float, retry_after: float | None) -> float:
        """A refusal: pause the account for ``retry_after`` seconds, and cut the rate
        (once per episode: a request sent before the last cut is part of it).

        Returns when this refusal's own pause ends (the refused call waits it out itself).
        """
        with self._lock:
            now = self._clock()
            self.refusals += 1
            own_until = now + (retry_after or 0.0)
            if retry_after is not None:
                self._paused_until = max(self._paused_until, own_until)
            if sent_at < self._cut_at:
                return own_until
            self._cut_at = now
            accepted = self._accepted(now)
            if accepted is None:
                return own_until  # nothing measured yet: the pause alone, no rate to cut
            base = accepted if self._rate is None else min(accepted, self._rate)
            self._plateau = base
            self._set_rate(base * BETA)
            # The bucket starts with one token when the pause ends: the pause was the wait.
            self._growth_from = max(now, self._paused_until)
            self._tokens = 1.0
            self._updated = self._growth_from
            return own_until

    def status(self) -> LimiterStatus:
        with self._lock:
            now = self._clock()
            paused = self._paused_until > now
            return LimiterStatus(
                limited=paused or self._waiting > 0, rate=self._rate, paused=paused
            )

    # --- inside the lock ----------------------------------------------------------

    def _take_token(self, now: float) -> float:
        rate = self._rate
        if rate is None:
            return 0.0
        capacity = max(1.0, rate * BUCKET_SECONDS)
        if now > self._updated:
            self._tokens = min(capacity, self._tokens + (now - self._updated) * rate)
            self._updated = now
        self._tokens -= 1.0  # reserved: the waits of the waiting workers queue up
        return -self._tokens / rate if self._tokens < 0 else 0.0

    def _set_rate(self, rate: float) -> None:
        self._rate = max(rate, MIN_RATE)

    def _measure(self, now: float) -> None:
        if self._first_success is None:
            self._first_success = now
            self._interval_start = now
        assert self._interval_start is not None
        self._interval_count += 1
        elapsed = now - self._interval_start
        if elapsed >= INTERVAL:
            current = self._interval_count / elapsed
            if self._measured == 0.0:
                self._measured = current
            else:
                self._measured = SMOOTHING * current + (1 - SMOOTHING) * self._measured
            self._interval_start = now
            self._interval_count = 0

    def _accepted(self, now: float) -> float | None:
        if self._first_success is None:
            return None
        if self._measured > 0.0:
            return self._measured
        # Less than one interval of successes: their count over the time they took.
        elapsed = max(now - self._first_success, 1e-3)
        return max(self._interval_count / elapsed, MIN_RATE)


# --- one limiter per account ---------------------------------------------------------

_registry: weakref.WeakValueDictionary[tuple[str, str], AccountLimiter] = (
    weakref.WeakValueDictionary()
)
_registry_lock = threading.Lock()


def account_of(api_url: str, api_key: str) -> tuple[str, str]:
    """The account's key in the registry: the URL, and the API key's digest (never the key)."""
    return api_url.rstrip("/"), hashlib.sha256(api_key.encode()).hexdigest()


def limiter_for(api_url: str, api_key: str) -> AccountLimiter:
    """The one limiter of this account while any client of it lives."""
    account = account_of(api_url, api_key)
    with _registry_lock:
        limiter = _registry.get(account)
        if limiter is None:
            limiter = AccountLimiter()
            _registry[account] = limiter
        return limiter


def forget_all() -> None:
    """Drop every account's limiter (tests: each starts from an account never refused)."""
    with _registry_lock:
        _registry.clear()
