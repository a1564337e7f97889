"""``--rate-limit RATE[/BURST]``: a token bucket per customer (SPEC section 7).

Each customer's bucket holds at most ``burst`` tokens and gains ``rate`` tokens a second;
every API request of that customer takes one. A request that finds the bucket without a
whole token is refused (429) and takes nothing, so a client that keeps hammering does not
push its own wait further out. Buckets start full, and changing the limit starts every
bucket full again. The clock is a parameter so the arithmetic can be tested exactly.

``--rate-limit-headers`` announces the limit in every answer of a limited customer, in
the IETF fields (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy:
"default";q=100;w=1`` (the rate as a whole quota over a window of whole seconds, never
more than the rate) and ``RateLimit: "default";r=7;t=1`` (whole tokens left after this
request, and seconds until the bucket is full again, rounded up).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mvsync.emulator.errors import EmulatorError


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests a second per customer, in bursts of at most ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        rate, burst = self.rate, self.burst
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise EmulatorError(f"rate must be a number > 0, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise EmulatorError(f"burst must be a whole number >= 1, not {burst!r}")
        object.__setattr__(self, "rate", float(rate))

    @classmethod
    def of(cls, rate: float, burst: int | None = None) -> RateLimit:
        """``burst`` defaults to the rate (a second's worth of requests), at least 1."""
        if burst is None and isinstance(rate, int | float) and math.isfinite(rate):
            burst = max(1, math.floor(rate))
        return cls(rate, burst if burst is not None else 1)

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        """A limit from the command line: ``RATE[/BURST]``, e.g. ``100/10`` or ``0.5``."""
        rate_text, slash, burst_text = spec.strip().partition("/")
        try:
            rate = float(rate_text)
            burst = int(burst_text) if slash else None
        except ValueError:
            raise EmulatorError(
                f"--rate-limit {spec}: use RATE[/BURST], e.g. 100/10 "
                "(RATE requests a second, BURST a whole number)"
            ) from None
        try:
            return cls.of(rate, burst)
        except EmulatorError as error:
            raise EmulatorError(f"--rate-limit {spec}: {error}") from None

    @classmethod
    def from_json(cls, value: Any) -> RateLimit | None:
        """The body of ``PUT /_emulator/rate-limit``: ``{"rate": 100, "burst": 10}``."""
        if not isinstance(value, dict):
            raise EmulatorError('the rate limit must be a JSON object {"rate": R, "burst": B}')
        unknown = sorted(set(value) - {"rate", "burst"})
        if unknown:
            raise EmulatorError(f"unknown rate limit field(s): {', '.join(unknown)}")
        if value.get("rate") is None:
            return None
        return cls.of(value["rate"], value.get("burst"))

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "burst": self.burst}

    def policy_field(self) -> str:
        """The ``RateLimit-Policy`` value: a whole quota per window of whole seconds."""
        if self.rate >= 1:
            quota, window = math.floor(self.rate), 1
        else:
            quota, window = 1, math.ceil(1 / self.rate)
        return f'"default";q={quota};w={window}'


@dataclass(frozen=True)
class Refusal:
    """A request the limiter refused, and how long until that customer has a token."""

    retry_after_seconds: float

    @property
    def retry_after(self) -> str:
        """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_seconds)))


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    """The buckets of every customer under one limit (or none); thread-safe."""

    def __init__(
        self, limit: RateLimit | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = limit
        self._buckets: dict[str, _Bucket] = {}

    @property
    def limit(self) -> RateLimit | None:
        return self._limit

    def set_limit(self, limit: RateLimit | None) -> None:
        """A new limit (``None`` lifts it); every bucket starts full again."""
        with self._lock:
            self._limit = limit
            self._buckets.clear()

    def take(self, customer_id: str) -> Refusal | None:
        """Take one of that customer's tokens: ``None`` when served, a ``Refusal`` when not."""
        limit = self._limit
        if limit is None:  # the common case, without the lock
            return None
        with self._lock:
            limit = self._limit
            if limit is None:
                return None
            now = self._clock()
            bucket = self._buckets.get(customer_id)
            if bucket is None:
                bucket = self._buckets[customer_id] = _Bucket(float(limit.burst), now)
            else:
                elapsed = max(now - bucket.updated, 0.0)
                bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return Refusal((1.0 - bucket.tokens) / limit.rate)

    def announced(self, customer_id: str) -> tuple[tuple[str, str], ...]:
        """The ``RateLimit-Policy`` and ``RateLimit`` fields of that customer now (after
        its ``take``); none without a limit."""
        with self._lock:
            limit = self._limit
            if limit is None:
                return ()
            bucket = self._buckets.get(customer_id)
            tokens = bucket.tokens if bucket is not None else float(limit.burst)
            # Up to date, without moving the bucket's own clock (take does that).
            if bucket is not None:
                elapsed = max(self._clock() - bucket.updated, 0.0)
                tokens = min(float(limit.burst), tokens + elapsed * limit.rate)
        remaining = math.floor(tokens)
        reset = math.ceil(max(float(limit.burst) - tokens, 0.0) / limit.rate)
        return (
            ("RateLimit-Policy", limit.policy_field()),
            ("RateLimit", f'"default";r={remaining};t={reset}'),
        )
