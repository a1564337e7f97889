"""One request rate per account, shared by every worker and client of it (SPEC guarantee 2).

An account is an API URL and a key (the key only as a SHA-256 digest): every
``MiniVoiceClient`` of one account shares one ``AccountLimiter`` (``limiter_for``), so a
refusal seen by one worker slows them all, reads and creates alike.

It is the idea of the AWS SDKs' "adaptive" retry mode (a token bucket whose rate is cut
on a refusal and grows back while answers succeed), tuned for an API whose refusal
costs the whole account its ``Retry-After`` (a second at least): here one refusal too
many costs more than running a few percent under the limit for the whole apply.

- Until the API first refuses, nothing is paced (``--concurrency`` is the only bound).
- A refusal (429, or 503 with ``Retry-After``) pauses every request of the account
  until its ``Retry-After`` has passed, and cuts the rate to ``BETA`` times the rate
  the API was accepting: the last ``RECENT`` answers that succeeded since the last
  pause ended (and in the last ``WINDOW`` seconds), over the time they took; once
  paced, never more than the rate that was refused. Refusals of requests sent before
  that cut are the same episode and cut nothing more.
- A rate that was held ``HOLD`` seconds without a refusal is one the API sustains
  (within its burst): a later cut never goes below ``HELD_SHARE`` of it, so a long
  apply does not fall back to 70% at each probe.
- Each success lets the rate grow linearly, by ``GROWTH`` times the rate cut to per
  second (additive increase: slow, because the next refusal costs a pause); it never
  exceeds twice the rate measured, so an idle account does not bank a rate it never
  used.
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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# The cut: the new rate is BETA times the rate the API was accepting.
BETA = 0.7
# The growth after a cut, per second, as a share of the rate cut to.
GROWTH = 0.02
# A rate held this long without a refusal is one the API sustains; a cut keeps this much.
HOLD = 3.0
HELD_SHARE = 0.97
# Never slower than this (requests a second), whatever the refusals.
MIN_RATE = 0.5
# The accepted rate: the last RECENT successes, of at most WINDOW seconds ago, over the
# time they took, and no less than SHORTEST (a few answers that came back at once). Only
# the recent ones: a stretch that began with a list, then planned, would count its idle.
RECENT = 25
WINDOW = 2.0
SHORTEST = 0.05
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
        # The line the rate grows along since the last cut: from _start at _growth_from,
        # _slope more each second.
        self._start = 0.0
        self._slope = 0.0
        self._growth_from = 0.0
        self._cut_at = -math.inf
        self._tokens = 1.0
        self._updated = clock()
        # When each of the last successes since the last pause was answered.
        self._successes: deque[float] = deque(maxlen=RECENT)
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
        """An answer that was not a refusal: count it, and let the rate grow."""
        with self._lock:
            now = self._clock()
            self._successes.append(now)
            if self._rate is None or now <= self._growth_from:
                return
            grown = self._start + self._slope * (now - self._growth_from)
            measured = self._accepted(now)
            if measured is not None:
                grown = min(grown, 2 * max(measured, self._rate))
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
                return own_until  # nothing accepted yet: the pause alone, no rate to cut
            base = accepted if self._rate is None else min(accepted, self._rate)
            rate = base * BETA
            held = self._held(now)
            if held is not None:
                rate = max(rate, min(held * HELD_SHARE, base))
            self._set_rate(rate)
            # The bucket starts with one token when the pause ends: the pause was the wait.
            resume = max(now, self._paused_until)
            self._start = self._rate or rate
            self._slope = GROWTH * self._start
            self._growth_from = resume
            self._tokens = 1.0
            self._updated = resume
            # What the API accepts after the pause is counted afresh.
            self._successes.clear()
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

    def _accepted(self, now: float) -> float | None:
        """Successes a second: the recent ones, over the time since the first of them."""
        successes = self._successes
        while successes and successes[0] < now - WINDOW:
            successes.popleft()
        if not successes:
            return None
        span = max(now - successes[0], SHORTEST)
        return max(max(len(successes) - 1, 1) / span, MIN_RATE)

    def _held(self, now: float) -> float | None:
        """The rate of HOLD seconds ago, when it has been paced without a cut since."""
        if self._rate is None or now - self._growth_from < HOLD:
            return None
        return min(self._start + self._slope * (now - HOLD - self._growth_from), self._rate)


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
