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
  until its ``Retry-After`` has passed; those that waited it out then take a token each,
  like every request. Refusals of requests sent before the last cut are the same
  episode and cut nothing more.
- The first cut (never paced yet): ``BETA`` times the rate the API was accepting — the
  successes of the busy stretch that ended in the refusal (the last ``RECENT``; a
  silence of ``IDLE`` ends the stretch; none from before the last pause ended), over
  the time they took. A rate measured in a burst is a guess: it grows by
  ``GROWTH_FIRST`` of itself per second.
- Refused while paced: the rate paced was a little too much. ``BETA_PACED`` times the
  rate accepted (never above the rate paced), growth ``GROWTH`` per second, and never
  again above ``CEILING_SHARE`` of the rate refused (CUBIC's plateau). A rate held
  ``HOLD`` seconds without a refusal is one the API sustains: a cut keeps
  ``HELD_SHARE`` of it.
- Never above twice the rate measured, so an idle account does not bank a rate it
  never used.
- Requests wait for a token of a small bucket filled at that rate.
- A limit the API announces (``mvsync.api.announced``: the IETF ``RateLimit-Policy``
  quota over its window) is paced from the first answer that carries it, at
  ``ANNOUNCED_SHARE`` of it, and the rate never grows above that; a refusal still
  pauses for its ``Retry-After`` and cuts as above (the announcement seen again changes
  nothing; a different one paces anew). An answer saying nothing remains empties the
  bucket when paced (the next request waits its turn), else pauses until the reset.
- A rate learned before (``start_from``: the last run's, kept with the state) is paced
  from the first request and not grown: it is ``CEILING_SHARE`` of the last rate the API
  refused while paced (``learned``: what this run leaves for the next; the rate paced
  when never refused while paced), and that rate stays the ceiling, so a run that
  starts from it meets no 429 it met before. A refusal still cuts as above. The rate
  refused is the one the API accepted from the end of the last pause to that refusal
  (at least ``SUSTAINED`` seconds of it), when lower than the rate paced then: growth
  overshoots the limit while the API's burst lasts, so the rate paced overstates it.

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

from mvsync.api.announced import Announced

# The cut: the new rate is BETA times the rate the API was accepting, measured while not
# paced yet (a burst: an overestimate), BETA_PACED times it when refused while paced.
BETA = 0.7
BETA_PACED = 0.9
# The growth after a cut, per second, as a share of the rate cut to: faster after the
# first cut (a guess from a burst), slow once a paced rate was refused; and never above
# CEILING_SHARE of the last rate refused while paced.
GROWTH_FIRST = 0.1
GROWTH = 0.02
CEILING_SHARE = 0.98
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
IDLE = 0.1
SHORTEST = 0.05
# The rate the API accepted over a stretch paced between two refusals at least this long
# is the one a next run may start from (a shorter one is mostly the API's burst).
SUSTAINED = 1.0
# The bucket holds this many seconds' worth of requests, at least one.
BUCKET_SECONDS = 0.05
# An announced rate is paced at this share of it: answers reach the API with the jitter
# of the network and of the workers, and its window does not forgive a burst over it.
ANNOUNCED_SHARE = 0.98


@dataclass(frozen=True)
class Learned:
    """A rate an account was paced at, and whether the API announced it."""

    rate: float
    announced: bool


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
        self._ceiling: float | None = None  # the last rate refused while paced
        self._refused_rate: float | None = None  # the rate accepted until then, when known
        self._paced_successes = 0  # since the rate last grew from a cut (or a start)
        self._measure_from = -math.inf  # successes before this (the last pause's end) are not
        self._waiting = 0
        self.refusals = 0
        self._announced: float | None = None  # the last announced rate seen (q / w)

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
            if not reserved:
                continue  # the pause is waited out: now a token, like every request
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
            self._paced_successes += 1
            grown = self._start + self._slope * (now - self._growth_from)
            measured = self._accepted(now)
            if measured is not None:
                grown = min(grown, 2 * max(measured, self._rate))
            if self._ceiling is not None:
                grown = min(grown, self._ceiling * CEILING_SHARE)
            self._set_rate(max(grown, self._rate))

    def announced(self, limit: Announced) -> None:
        """What an answer said of the account's limit (see the module docstring)."""
        with self._lock:
            now = self._clock()
            if limit.rate is not None and limit.rate != self._announced:
                self._announced = limit.rate
                # No growth: the API said what it allows. A refusal still cuts, and the
                # growth after it never reaches the rate refused (the ceiling).
                self._pace_from(now, limit.rate * ANNOUNCED_SHARE, slope=0.0)
            if limit.remaining == 0:
                if self._rate is not None:
                    self._refill(now)
                    self._tokens = min(self._tokens, 0.0)
                elif limit.reset_after:
                    self._paused_until = max(self._paused_until, now + limit.reset_after)

    def start_from(self, learned: Learned) -> None:
        """Pace from a rate learned before (an earlier run's), until this run learns its
        own: an announced one as if announced again, one learned from refusals flat, the
        rate it was learned below (``learned.rate / CEILING_SHARE``) its ceiling."""
        if learned.announced:
            self.announced(Announced(rate=learned.rate, remaining=None, reset_after=None))
            return
        with self._lock:
            if self._rate is None and learned.rate > 0:
                self._pace_from(self._clock(), learned.rate, slope=0.0)
                self._ceiling = learned.rate / CEILING_SHARE

    def learned(self) -> Learned | None:
        """What the next run may start from: the announced rate, when announced; else
        ``CEILING_SHARE`` of the last rate refused while paced (not the rate paced now,
        which a cut may just have lowered well under it), or the rate paced when never
        refused while paced; ``None`` when never paced."""
        with self._lock:
            if self._announced is not None:
                return Learned(self._announced, announced=True)
            if self._ceiling is not None:
                refused = self._ceiling
                if self._refused_rate is not None:
                    refused = min(refused, self._refused_rate)
                return Learned(refused * CEILING_SHARE, announced=False)
            if self._rate is not None and self.refusals:
                return Learned(self._rate, announced=False)
            return None

    def refused(self, sent_at: float, retry_after: float | None) -> float:
        """A refusal: pause the account for ``retry_after`` seconds, and cut the rate
        (once per episode: a request sent before the last cut is part of it).

        Returns when this refusal's own pause ends (the refused call waits it out itself).
        """
        with self._lock:
            now = self._clock()
            self.refusals += 1
            own_until = now + (retry_after or 0.0)
            accepted = self._accepted(now)  # measured before this pause moves the start
            if retry_after is not None:
                self._paused_until = max(self._paused_until, own_until)
            # Answers that arrive during the pause (requests sent before it) would stretch
            # the next measurement over the pause: it starts when the pause ends.
            self._measure_from = max(self._measure_from, self._paused_until)
            if sent_at < self._cut_at:
                return own_until
            self._cut_at = now
            if accepted is None:
                # No answer since the last pause: cut what was paced, or (never paced) start
                # from one request per SHORTEST; never a burst of every worker again.
                base = self._rate or 1 / SHORTEST
            else:
                base = accepted if self._rate is None else min(accepted, self._rate)
            paced = self._rate is not None
            if paced:
                # Refused while paced: the rate paced was a little too much (the API's
                # burst ran out). A gentler cut, and the growth never reaches it again.
                self._ceiling = self._rate
                span = now - self._growth_from
                if span >= SUSTAINED and self._paced_successes:
                    self._refused_rate = self._paced_successes / span
            rate = base * (BETA_PACED if paced else BETA)
            held = self._held(now)
            if held is not None:
                rate = max(rate, min(held * HELD_SHARE, base))
            self._set_rate(rate)
            # The bucket starts with one token when the pause ends: the pause was the wait.
            resume = max(now, self._paused_until)
            self._start = self._rate or rate
            self._slope = (GROWTH if paced else GROWTH_FIRST) * self._start
            self._growth_from = resume
            self._paced_successes = 0
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
        self._refill(now)
        self._tokens -= 1.0  # reserved: the waits of the waiting workers queue up
        return -self._tokens / rate if self._tokens < 0 else 0.0

    def _refill(self, now: float) -> None:
        rate = self._rate
        if rate is not None and now > self._updated:
            capacity = max(1.0, rate * BUCKET_SECONDS)
            self._tokens = min(capacity, self._tokens + (now - self._updated) * rate)
            self._updated = now

    def _pace_from(self, now: float, rate: float, *, slope: float) -> None:
        """Pace at ``rate`` from now, growing ``slope`` a second (tokens kept as they are)."""
        self._refill(now)
        self._set_rate(rate)
        self._start = self._rate or rate
        self._slope = slope
        self._growth_from = now
        self._paced_successes = 0
        self._updated = max(self._updated, now)

    def _set_rate(self, rate: float) -> None:
        self._rate = max(rate, MIN_RATE)

    def _accepted(self, now: float) -> float | None:
        """Successes a second: the recent ones, over the time since the first of them."""
        successes = self._successes
        while successes and (successes[0] < now - WINDOW or successes[0] < self._measure_from):
            successes.popleft()
        if not successes:
            return None
        # Only the busy stretch that ended in this refusal: walking back from the newest,
        # a silence longer than IDLE (a plan, a question) ends it.
        first, count = successes[-1], 1
        for index in range(len(successes) - 2, -1, -1):
            if first - successes[index] > IDLE:
                break
            first, count = successes[index], count + 1
        span = max(now - first, SHORTEST)
        return max(max(count - 1, 1) / span, MIN_RATE)

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


def fingerprint(account: tuple[str, str]) -> str:
    """A one-way name of an account, fit for a file: what a remembered rate is kept under."""
    return hashlib.sha256("\0".join(account).encode()).hexdigest()[:32]


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
