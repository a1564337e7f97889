"""``--rate-limit RATE[/BURST]``: a token bucket per customer, over real HTTP.

No timed assertions: the bursts use a refill so slow (one token per 100 s) that a loaded
machine cannot refill a bucket between two requests, and the refill is shown by waiting
*at least* the time of one token; the exact arithmetic is checked with a stepped clock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator, EmulatorError, Fault, RateLimit
from mvsync.emulator.ratelimit import RateLimiter

APPS = "/v1/applications"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
BODY = {"name": "Support IVR", "answer_url": "https://example.com/minivoice/answer"}
OTHER_KEY = "mvtest_OTHER_CUSTOMER_4d2c"
SLOW = 0.01  # tokens a second: one per 100 s, never refilled within a test

MakeEmulator = Callable[..., Emulator]


def statuses(client: httpx.Client, method: str, times: int) -> list[int]:
    if method == "POST":
        return [client.post(APPS, json=BODY).status_code for _ in range(times)]
    return [client.get(APPS).status_code for _ in range(times)]


def client_for(emulator: Emulator, key: str = TEST_API_KEY) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {key}"})


# --- the bucket over HTTP --------------------------------------------------------------


def test_a_burst_is_served_then_refused_with_429(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 3))
    with client_for(emulator) as client:
        assert statuses(client, "GET", 5) == [200, 200, 200, 429, 429]


def test_the_refusal_has_the_api_error_body_and_a_whole_seconds_retry_after(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 1))
    with client_for(emulator) as client:
        client.get(APPS)
        refused = client.get(APPS)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {"code": "rate_limited", "message": "rate limit exceeded, retry later"}
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 100  # one token takes 100 s


def test_retry_after_is_1_at_a_rate_of_one_or_more_a_second(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(1, 1))
    with client_for(emulator) as client:
        answers = [client.get(APPS) for _ in range(20)]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused  # 20 requests within far less than the 19 s they would need
    assert {answer.headers["Retry-After"] for answer in refused} == {"1"}


def test_gets_and_posts_take_from_the_same_bucket(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 2))
    with client_for(emulator) as client:
        assert [client.get(APPS).status_code, client.post(APPS, json=BODY).status_code] == [
            200,
            201,
        ]
        assert [client.post(APPS, json=BODY).status_code, client.get(APPS).status_code] == [
            429,
            429,
        ]


def test_refused_posts_create_nothing(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 2))
    with client_for(emulator) as client:
        assert statuses(client, "POST", 6) == [201, 201, 429, 429, 429, 429]
        emulator.set_rate_limit(None)
        listed = client.get(APPS).json()
    assert listed["count"] == 2
    assert len(emulator.applications(TEST_API_KEY)) == 2


def test_the_bucket_refills_at_the_rate(make_emulator: MakeEmulator) -> None:
    rate = 5.0  # one token every 0.2 s
    emulator = make_emulator(rate_limit=(rate, 1))
    with client_for(emulator) as client:
        assert client.get(APPS).status_code == 200
        for _ in range(200):  # empty the bucket (a refused request takes nothing)
            if client.get(APPS).status_code == 429:
                break
        else:
            pytest.fail("a bucket of 1 refilled at 5/s never refused 200 quick requests")
        time.sleep(2 / rate)  # at least one token back, however slow the machine
        assert client.get(APPS).status_code == 200


def test_served_requests_never_exceed_burst_plus_rate_times_elapsed(
    make_emulator: MakeEmulator,
) -> None:
    rate, burst = 20.0, 3
    emulator = make_emulator(rate_limit=(rate, burst))
    with client_for(emulator) as client:
        started = time.monotonic()
        served = statuses(client, "GET", 60).count(200)
        elapsed = time.monotonic() - started
    # An upper bound only (the server's time between requests is within the client's).
    assert served <= burst + rate * elapsed + 1
    assert emulator.rate_limited_count("GET", APPS) == 60 - served


def test_one_customers_burst_does_not_refuse_another(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator([TEST_API_KEY, OTHER_KEY], rate_limit=(SLOW, 2))
    with client_for(emulator) as first, client_for(emulator, OTHER_KEY) as second:
        assert statuses(first, "POST", 3) == [201, 201, 429]
        assert statuses(second, "POST", 3) == [201, 201, 429]


def test_an_issued_key_shares_its_customers_bucket(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 2))
    with client_for(emulator) as client:
        issued_key = client.post(APPS, json=BODY).json()["api_key"]
        with client_for(emulator, issued_key) as issued:
            assert statuses(issued, "GET", 2) == [200, 429]


def test_requests_without_a_known_key_are_not_limited_and_get_401(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 1))
    with client_for(emulator, "not-a-key") as stranger:
        assert statuses(stranger, "GET", 3) == [401, 401, 401]
    assert emulator.rate_limited_count() == 0


def test_a_refused_request_spends_no_fault(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 1))
    with client_for(emulator) as client:
        client.get(APPS)
        emulator.add_fault(Fault("500", method="GET"))
        assert client.get(APPS).status_code == 429
        emulator.set_rate_limit(None)
        assert client.get(APPS).status_code == 500


def test_without_a_limit_nothing_is_refused(emulator: Emulator) -> None:
    with client_for(emulator) as client:
        assert set(statuses(client, "GET", 30)) == {200}
    assert emulator.rate_limit is None
    assert emulator.rate_limited_count() == 0


# --- counts ----------------------------------------------------------------------------


def test_stats_count_what_was_refused_and_what_arrived(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 2))
    with client_for(emulator) as client:
        statuses(client, "POST", 5)
    assert emulator.stats() == {
        "rate_limit": {"rate": SLOW, "burst": 2},
        "requests": {"POST /v1/applications": 5},
        "rate_limited": {"POST /v1/applications": 3},
    }
    emulator.reset_request_counts()
    assert emulator.stats()["rate_limited"] == {}


# --- changing it while running ---------------------------------------------------------


def test_set_rate_limit_changes_it_while_running(emulator: Emulator) -> None:
    with client_for(emulator) as client:
        assert statuses(client, "GET", 3) == [200, 200, 200]
        emulator.set_rate_limit(SLOW, 1)
        assert statuses(client, "GET", 2) == [200, 429]
        emulator.set_rate_limit((SLOW, 2))  # a new limit: the bucket starts full
        assert statuses(client, "GET", 3) == [200, 200, 429]
        emulator.set_rate_limit(None)
        assert statuses(client, "GET", 3) == [200, 200, 200]


def test_the_burst_defaults_to_the_rate_at_least_1() -> None:
    assert RateLimit.of(100).burst == 100
    assert RateLimit.of(2.5).burst == 2
    assert RateLimit.of(0.2).burst == 1


@pytest.mark.parametrize("limit", [(0, 1), (-1, 1), (1, 0), (1, 1.5), (float("nan"), 1)])
def test_set_rate_limit_refuses_nonsense(emulator: Emulator, limit: tuple[float, int]) -> None:
    with pytest.raises(EmulatorError):
        emulator.set_rate_limit(*limit)


def test_the_control_endpoint_sets_reads_and_lifts_the_limit(emulator: Emulator) -> None:
    control = emulator.url + "/_emulator/rate-limit"
    answer = httpx.put(control, json={"rate": SLOW, "burst": 1})
    assert answer.status_code == 200
    assert answer.json() == {"rate_limit": {"rate": SLOW, "burst": 1}, "rate_limited": {}}
    assert emulator.rate_limit == RateLimit(SLOW, 1)
    with client_for(emulator) as client:
        assert statuses(client, "POST", 3) == [201, 429, 429]
        assert httpx.get(control).json() == {
            "rate_limit": {"rate": SLOW, "burst": 1},
            "rate_limited": {"POST /v1/applications": 2},
        }
        assert httpx.delete(control).json()["rate_limit"] is None
        assert statuses(client, "POST", 2) == [201, 201]
    assert emulator.request_count() == 5  # the controls themselves are not counted


def test_the_control_endpoint_defaults_the_burst_and_lifts_with_null(emulator: Emulator) -> None:
    control = emulator.url + "/_emulator/rate-limit"
    assert httpx.put(control, json={"rate": 100}).json()["rate_limit"] == {
        "rate": 100.0,
        "burst": 100,
    }
    assert httpx.put(control, json={"rate": None}).json()["rate_limit"] is None


@pytest.mark.parametrize(
    "body", [b'{"rate": 0}', b'{"rate": 5, "burst": 0}', b'{"rat": 5}', b"[5]", b"not json"]
)
def test_the_control_endpoint_refuses_a_bad_limit_with_400(emulator: Emulator, body: bytes) -> None:
    emulator.set_rate_limit(SLOW, 4)
    answer = httpx.put(emulator.url + "/_emulator/rate-limit", content=body)
    assert answer.status_code == 400
    assert emulator.rate_limit == RateLimit(SLOW, 4)  # left as it was


def test_the_control_endpoint_refuses_other_methods(emulator: Emulator) -> None:
    answer = httpx.post(emulator.url + "/_emulator/rate-limit", json={"rate": 1})
    assert (answer.status_code, answer.headers["Allow"]) == (405, "GET, PUT, DELETE")


# --- the arithmetic, with a stepped clock ------------------------------------------------


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_refills_rate_tokens_a_second_up_to_the_burst() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(RateLimit(4.0, 2), clock=clock)
    assert [limiter.take("c") for _ in range(2)] == [None, None]
    refusal = limiter.take("c")
    assert refusal is not None
    assert refusal.retry_after_seconds == 0.25
    assert refusal.retry_after == "1"
    clock.now += 0.25  # exactly one token
    assert [limiter.take("c") is None for _ in range(2)] == [True, False]
    clock.now += 10.0  # far more than the burst: capped at 2
    assert [limiter.take("c") is None for _ in range(3)] == [True, True, False]


def test_the_limiters_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(RateLimit(0.4, 1), clock=clock)
    limiter.take("c")
    refusal = limiter.take("c")
    assert refusal is not None
    assert (refusal.retry_after_seconds, refusal.retry_after) == (2.5, "3")


# --- the CLI flag ------------------------------------------------------------------------


def test_the_cli_flag_limits_each_customer() -> None:
    from test_emulator_cli import mvsync, wait_ready

    process = subprocess.Popen(
        mvsync("emulator", "--port", "0", "--api-key", TEST_API_KEY, "--rate-limit", "0.01/2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_ready(process)
        with httpx.Client(base_url=url, headers=AUTH) as client:
            assert statuses(client, "POST", 3) == [201, 201, 429]
        assert httpx.get(url + "/_emulator/rate-limit").json()["rate_limit"] == {
            "rate": 0.01,
            "burst": 2,
        }
    finally:
        process.kill()
        process.communicate()


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("fast", "use RATE[/BURST]"),
        ("10/x", "use RATE[/BURST]"),
        ("10/2.5", "use RATE[/BURST]"),
        ("0", "rate must be a number > 0"),
        ("-5/1", "rate must be a number > 0"),
        ("inf", "rate must be a number > 0"),
        ("10/0", "burst must be a whole number >= 1"),
    ],
)
def test_a_bad_rate_limit_flag_exits_1_with_one_line(spec: str, reason: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mvsync", "emulator", "--port", "0", "--rate-limit", spec],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"mvsync: error: --rate-limit {spec}: {reason}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
