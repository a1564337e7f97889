"""The account's rate, by arithmetic on a given clock: how it is cut and how it grows back.

No HTTP and no sleeping: each test drives ``AccountLimiter`` with the answers a worker
would report, at the times it names, and checks the rate it arrives at.
"""

from __future__ import annotations

import pytest

from mvsync.api.ratelimit import BETA, GROWTH, HELD_SHARE, AccountLimiter


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def successes(limiter: AccountLimiter, clock: Clock, start: float, rate: float, n: int) -> None:
    """``n`` answers that succeeded, ``rate`` a second from ``start``."""
    for index in range(n):
        clock.now = start + index / rate
        limiter.succeeded()


def rate_of(limiter: AccountLimiter) -> float:
    rate = limiter.status().rate
    assert rate is not None
    return rate


def test_the_cut_counts_the_recent_successes_not_the_idle_before_them() -> None:
    """A list, a pause to plan, then creates at 100/s until refused: cut from ~100/s."""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 1.0, 1)  # the list
    successes(limiter, clock, 100.3, 100.0, 40)  # the creates, 0.3 s later
    clock.now = 100.7
    limiter.refused(sent_at=100.69, retry_after=1.0)
    # Counted from the list on it would be 41 in 0.7 s, ~59/s, and a cut to ~41/s.
    assert rate_of(limiter) == pytest.approx(BETA * 100.0, rel=0.05)


def test_after_a_cut_the_rate_grows_back_linearly_and_slowly() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 50)
    clock.now = 100.5
    limiter.refused(sent_at=100.49, retry_after=1.0)
    cut = rate_of(limiter)
    # Served at the cut rate from the pause's end (101.5) for 5 s.
    successes(limiter, clock, 101.5, cut, int(5 * cut) + 1)
    grown = cut * (1 + GROWTH * (clock.now - 101.5))
    assert rate_of(limiter) == pytest.approx(grown, rel=1e-6)
    assert rate_of(limiter) < cut * 1.15  # a cubic would be back near 100/s by now


def test_a_later_cut_keeps_most_of_a_rate_held_without_refusal() -> None:
    """Refused after holding ~70-78/s for 5 s: back to 97% of the rate of 3 s before,
    not to 70% of the rate refused."""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 50)
    clock.now = 100.5
    limiter.refused(sent_at=100.49, retry_after=1.0)
    cut = rate_of(limiter)
    successes(limiter, clock, 101.5, cut, int(5 * cut) + 1)
    refused_at = clock.now
    before = rate_of(limiter)
    limiter.refused(sent_at=refused_at - 0.01, retry_after=1.0)
    held = cut * (1 + GROWTH * (refused_at - 3.0 - 101.5))
    assert rate_of(limiter) == pytest.approx(held * HELD_SHARE, rel=0.02)
    assert rate_of(limiter) > before * BETA * 1.2
