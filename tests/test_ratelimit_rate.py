"""The account's rate, by arithmetic on a given clock: how it is cut and how it grows back.

No HTTP and no sleeping: each test drives ``AccountLimiter`` with the answers a worker
would report, at the times it names, and checks the rate it arrives at.
"""

from __future__ import annotations

import itertools

import pytest

from mvsync.api.ratelimit import (
    BETA,
    BETA_PACED,
    CEILING_SHARE,
    GROWTH,
    GROWTH_FIRST,
    HELD_SHARE,
    AccountLimiter,
)


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


def served(limiter: AccountLimiter, clock: Clock, start: float, seconds: float) -> None:
    """Answers that succeed at the limiter's own rate, as it grows, for ``seconds``."""
    clock.now = start
    while clock.now < start + seconds:
        limiter.succeeded()
        clock.now += 1 / rate_of(limiter)
    clock.now -= 1 / rate_of(limiter)  # the time of the last answer


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


def test_after_the_first_cut_the_rate_grows_back_linearly() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 50)
    clock.now = 100.5
    limiter.refused(sent_at=100.49, retry_after=1.0)
    cut = rate_of(limiter)
    # Served at the cut rate from the pause's end (101.5) for 2 s.
    successes(limiter, clock, 101.5, cut, int(2 * cut) + 1)
    grown = cut * (1 + GROWTH_FIRST * (clock.now - 101.5))
    assert rate_of(limiter) == pytest.approx(grown, rel=1e-6)


def test_refused_while_paced_a_gentler_cut_and_never_that_rate_again() -> None:
    """The first cut came from a burst (a guess); a refusal while paced says the rate
    paced was a little too much: cut to BETA_PACED of it, grow slowly, and never reach
    CEILING_SHARE of it again."""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 50)
    clock.now = 100.5
    limiter.refused(sent_at=100.49, retry_after=1.0)
    served(limiter, clock, 101.5, 1.0)
    refused_rate = rate_of(limiter)
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)
    second = rate_of(limiter)
    assert second == pytest.approx(refused_rate * BETA_PACED, rel=0.03)
    resume = clock.now + 1.0
    successes(limiter, clock, resume, second, int(2 * second))
    assert rate_of(limiter) == pytest.approx(second * (1 + GROWTH * (clock.now - resume)), rel=1e-6)
    successes(limiter, clock, clock.now + 0.01, second, int(20 * second))  # 20 s more
    assert rate_of(limiter) == pytest.approx(refused_rate * CEILING_SHARE, rel=1e-6)


def test_a_later_cut_keeps_most_of_a_rate_held_without_refusal() -> None:
    """Refused while paced, after holding the rate 5 s: back to HELD_SHARE of the rate of
    3 s before, more than BETA_PACED of the rate refused."""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 50)
    clock.now = 100.5
    limiter.refused(sent_at=100.49, retry_after=1.0)
    served(limiter, clock, 101.5, 1.0)
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)  # paced: slow growth now
    second, resume = rate_of(limiter), clock.now + 1.0
    served(limiter, clock, resume, 5.0)
    refused_at, before = clock.now, rate_of(limiter)
    limiter.refused(sent_at=refused_at - 0.001, retry_after=1.0)
    held = second * (1 + GROWTH * (refused_at - 3.0 - resume))
    assert rate_of(limiter) == pytest.approx(held * HELD_SHARE, rel=0.02)
    assert rate_of(limiter) > before * BETA_PACED


def test_workers_released_by_a_pause_leave_one_token_apart_not_all_at_once() -> None:
    """Eight workers waiting out one pause: at its end they are paced by the cut rate.
    (Returning straight after the pause let all eight fire together, a burst the API
    refused again at every pause's end: 29 refusals and 24 s for 80 creates at 40/s.)"""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 20)
    sent = clock.now
    limiter.refused(sent_at=sent, retry_after=1.0)
    rate = rate_of(limiter)
    departures = []
    for _worker in range(8):

        def sleep(seconds: float) -> None:
            clock.now += seconds

        departures.append(limiter.acquire(sleep))
    gaps = [b - a for a, b in itertools.pairwise(departures) if a and b]
    assert departures[0] == pytest.approx(sent + 1.0)
    assert len(gaps) == 7 and min(gaps) == pytest.approx(1 / rate, rel=1e-6)


def test_answers_that_come_back_during_a_pause_do_not_stretch_the_next_measure() -> None:
    """Requests sent before a refusal answer during its pause; the next cut measures from
    the pause's end (else 13 answers over 1.3 s read as ~10/s, cut to 7/s)."""
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    successes(limiter, clock, 100.0, 100.0, 20)
    limiter.refused(sent_at=clock.now, retry_after=1.0)  # paused until ~101.19
    first = rate_of(limiter)
    successes(limiter, clock, clock.now + 0.01, 100.0, 3)  # stragglers, inside the pause
    successes(limiter, clock, 101.2, first, 10)  # paced at the cut rate after the pause
    limiter.refused(sent_at=clock.now, retry_after=1.0)
    assert rate_of(limiter) == pytest.approx(first * BETA_PACED, rel=0.05)
