"""An announced limit and a remembered rate, by arithmetic on a given clock.

``AccountLimiter.announced`` (what an answer's RateLimit fields say) and ``start_from``
(a rate learned by an earlier run): paced from the first request, never above the
announced rate, and ``Retry-After`` still wins.
"""

from __future__ import annotations

import itertools

import pytest

from mvsync.api.announced import Announced
from mvsync.api.ratelimit import (
    ANNOUNCED_SHARE,
    CEILING_SHARE,
    AccountLimiter,
    Learned,
    forget_all,
    limiter_for,
)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def departures(limiter: AccountLimiter, clock: Clock, count: int) -> list[float]:
    return [limiter.acquire(clock.sleep) or -1.0 for _ in range(count)]


def rate_of(limiter: AccountLimiter) -> float:
    rate = limiter.status().rate
    assert rate is not None
    return rate


def test_the_first_answer_that_announces_paces_every_request_after_it() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    assert limiter.status().rate is None  # nothing announced, never refused: not paced
    limiter.succeeded()
    limiter.announced(Announced(rate=100.0, remaining=9, reset_after=1.0))
    assert rate_of(limiter) == pytest.approx(100.0 * ANNOUNCED_SHARE)
    sent = departures(limiter, clock, 50)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps[1:]) == pytest.approx(1 / (100.0 * ANNOUNCED_SHARE), rel=1e-6)
    assert limiter.learned() == Learned(100.0, announced=True)


def test_successes_never_grow_the_rate_above_the_announced_one() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.announced(Announced(rate=50.0, remaining=None, reset_after=None))
    for _ in range(2000):
        clock.now += 0.01
        limiter.succeeded()
    assert rate_of(limiter) == pytest.approx(50.0 * ANNOUNCED_SHARE)
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)
    cut = rate_of(limiter)
    for _ in range(6000):  # a minute of successes after the cut
        clock.now += 0.01
        limiter.succeeded()
    assert cut < rate_of(limiter) < 50.0 * ANNOUNCED_SHARE


def test_retry_after_still_wins_and_the_same_announcement_does_not_undo_the_cut() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limit = Announced(rate=100.0, remaining=5, reset_after=1.0)
    limiter.announced(limit)
    for _ in range(30):
        clock.now += 0.01
        limiter.succeeded()
    until = limiter.refused(sent_at=clock.now - 0.001, retry_after=2.0)
    limiter.announced(limit)  # the 429 carried the same fields
    assert until == pytest.approx(clock.now + 2.0)
    waits: list[float] = []
    limiter.acquire(waits.append)
    assert waits and waits[0] == pytest.approx(2.0)  # the whole Retry-After, not a token
    assert rate_of(limiter) < 100.0 * ANNOUNCED_SHARE  # cut, and not reset by the fields


def test_a_new_announcement_paces_anew() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.announced(Announced(rate=100.0, remaining=None, reset_after=None))
    limiter.announced(Announced(rate=20.0, remaining=None, reset_after=None))
    assert rate_of(limiter) == pytest.approx(20.0 * ANNOUNCED_SHARE)
    assert limiter.learned() == Learned(20.0, announced=True)


def test_nothing_remaining_while_paced_makes_the_next_request_wait_its_turn() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.announced(Announced(rate=10.0, remaining=None, reset_after=None))
    clock.now += 5.0  # the bucket is full again
    limiter.announced(Announced(rate=10.0, remaining=0, reset_after=1.0))
    waits: list[float] = []
    limiter.acquire(waits.append)
    assert waits == [pytest.approx(1 / (10.0 * ANNOUNCED_SHARE))]


def test_nothing_remaining_without_a_rate_pauses_until_the_reset() -> None:
    # GitHub's fields: no window, so no pace; 0 left means wait for the reset.
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.announced(Announced(rate=None, remaining=0, reset_after=3.0))
    waits: list[float] = []
    limiter.acquire(waits.append)
    assert waits == [pytest.approx(3.0)]
    assert limiter.learned() is None  # a pause is not a rate


def test_a_remembered_rate_paces_from_the_first_request_and_does_not_grow() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.start_from(Learned(40.0, announced=False))
    sent = departures(limiter, clock, 3)
    assert sent[1] - sent[0] == pytest.approx(1 / 40.0, rel=1e-3)
    for _ in range(200):
        clock.now += 1 / 40.0
        limiter.succeeded()
    assert rate_of(limiter) == pytest.approx(40.0)  # 5 s of successes: still 40/s
    assert limiter.learned() == Learned(pytest.approx(40.0), announced=False)


def test_a_run_refused_while_paced_leaves_a_share_of_the_rate_refused() -> None:
    # Not the rate paced after the cut (0.9 of what was accepted): CEILING_SHARE of the
    # rate the API refused, which is what the next run starts from.
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.start_from(Learned(50.0, announced=False))
    for _ in range(30):
        clock.now += 1 / 50.0
        limiter.succeeded()
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)
    assert rate_of(limiter) < 50.0 * CEILING_SHARE
    assert limiter.learned() == Learned(pytest.approx(50.0 * CEILING_SHARE), announced=False)
    fresh = AccountLimiter(clock=clock)
    learned = limiter.learned()
    assert learned is not None
    fresh.start_from(learned)
    assert rate_of(fresh) == pytest.approx(50.0 * CEILING_SHARE)


def test_a_remembered_rate_does_not_replace_one_this_run_learned() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.announced(Announced(rate=10.0, remaining=None, reset_after=None))
    limiter.start_from(Learned(80.0, announced=False))
    assert rate_of(limiter) == pytest.approx(10.0 * ANNOUNCED_SHARE)


def test_a_remembered_announced_rate_is_as_if_announced_again() -> None:
    limiter = AccountLimiter(clock=Clock())
    limiter.start_from(Learned(50.0, announced=True))
    assert rate_of(limiter) == pytest.approx(50.0 * ANNOUNCED_SHARE)
    assert limiter.learned() == Learned(50.0, announced=True)


def test_an_account_never_paced_has_learned_nothing() -> None:
    limiter = AccountLimiter(clock=Clock())
    limiter.succeeded()
    assert limiter.learned() is None


def test_a_refused_account_has_learned_the_rate_it_is_paced_at() -> None:
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    for _ in range(30):
        clock.now += 0.01
        limiter.succeeded()
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)
    assert limiter.learned() == Learned(rate_of(limiter), announced=False)


def test_limiter_for_is_shared_by_url_and_key() -> None:
    forget_all()
    first = limiter_for("http://127.0.0.1:1/", "k1")
    assert limiter_for("http://127.0.0.1:1", "k1") is first
    assert limiter_for("http://127.0.0.1:1", "k2") is not first


def test_the_rate_left_is_the_one_accepted_when_lower_than_the_rate_refused() -> None:
    # Paced at 50/s but only 40 answers a second came back over the 2 s before the
    # refusal: the API's limit is nearer 40 than 50, and the next run starts under it.
    clock = Clock()
    limiter = AccountLimiter(clock=clock)
    limiter.start_from(Learned(50.0, announced=False))
    for _ in range(80):
        clock.now += 1 / 40.0
        limiter.succeeded()
    limiter.refused(sent_at=clock.now - 0.001, retry_after=1.0)
    assert limiter.learned() == Learned(pytest.approx(40.0 * CEILING_SHARE), announced=False)
