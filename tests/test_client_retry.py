"""mvsync.api.client against the real emulator on a loopback port: one test per fault case.

Every client here records its waits instead of sleeping (``RetryPolicy.sleep``), so the
tests assert on the waits the client chose, never on wall time.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.emulator import Emulator, Fault
from mvsync.errors import ApiError, MvsyncError, OutcomeUnknownError, TransportError
from mvsync.model import CreateRequest

# The canaries of tests/helpers.py (the `emulator` fixture accepts API_KEY).
API_KEY = "mvtest_BEARER_CANARY_7f3a9c"
WEBHOOK_SECRET = "whsec_CANARY_2b8e41"
APPS = "/v1/applications"


class Recorder:
    """A ``RetryPolicy.sleep`` that records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def waits() -> Recorder:
    return Recorder()


@pytest.fixture
def make_client(waits: Recorder) -> Iterator[Any]:
    made: list[MiniVoiceClient] = []

    def make(
        url: str, *, key: str = API_KEY, timeout: float = 2.0, **retry: Any
    ) -> MiniVoiceClient:
        client = MiniVoiceClient(url, key, timeout=timeout, retry=RetryPolicy(sleep=waits, **retry))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def request(name: str = "Support IVR", secret: str | None = WEBHOOK_SECRET) -> CreateRequest:
    return CreateRequest.model_validate(
        {
            "name": name,
            "answer_url": "https://example.com/minivoice/answer",
            "webhook_url": "https://example.com/minivoice/webhooks",
            "webhook_secret": secret,
        }
    )


def assert_clean(text: str, *extra: str) -> None:
    for secret in (API_KEY, WEBHOOK_SECRET, *extra):
        for form in (secret, secret.upper(), secret.lower()):  # an echo may change case
            assert form not in text


# --- the happy path ------------------------------------------------------------------


def test_create_then_list_shows_the_application_without_its_key(
    emulator: Emulator, make_client: Any
) -> None:
    client = make_client(emulator.url)
    created = client.create_application(request())
    assert created.api_key.get_secret_value().startswith("mv_live_")
    [listed] = client.list_applications()
    assert (listed.id, listed.name, listed.customer_id) == (
        created.id,
        "Support IVR",
        created.customer_id,
    )
    assert emulator.webhook_secret_of(created.id) == WEBHOOK_SECRET


def test_one_client_serves_a_thread_pool(emulator: Emulator, make_client: Any) -> None:
    client = make_client(emulator.url)
    names = [f"app {i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda n: client.create_application(request(n)), names))
    assert sorted(c.name for c in created) == sorted(names)
    assert sorted(a.name for a in client.list_applications()) == sorted(names)


def test_401_names_the_url_that_refused_the_key(emulator: Emulator, make_client: Any) -> None:
    wrong_key = "mvtest_WRONG_KEY_CANARY_19d0"
    client = make_client(emulator.url, key=wrong_key)
    with pytest.raises(ApiError) as caught:
        client.list_applications()
    error = caught.value
    assert (error.status, error.code) == (401, "unauthorized")
    assert f"the API at {emulator.url}{APPS} refused the API key" in str(error)
    assert_clean(str(error) + repr(error), wrong_key)
    assert emulator.request_count("GET", APPS) == 1


def test_400_from_the_emulator_carries_its_code(emulator: Emulator, make_client: Any) -> None:
    client = make_client(emulator.url)
    bad = CreateRequest(name="", answer_url="https://example.com/a")
    with pytest.raises(ApiError) as caught:
        client.create_application(bad)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert "name is required" in str(caught.value)


# --- 429 ---------------------------------------------------------------------------------


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("429", method="GET", retry_after="2"))
    assert make_client(emulator.url).list_applications() == []
    assert waits.waits == [2.0]
    assert emulator.request_count("GET", APPS) == 2


def test_429_with_an_http_date_waits_until_that_date(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=4)
    emulator.add_fault(Fault("429", method="GET", retry_after=format_datetime(when, usegmt=True)))
    assert make_client(emulator.url).list_applications() == []
    [wait] = waits.waits
    assert 2.0 < wait <= 4.0  # HTTP dates have whole seconds
    assert emulator.request_count("GET", APPS) == 2


def test_429_without_retry_after_on_post_is_retried_with_jittered_backoff(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("429", method="POST"))
    client = make_client(emulator.url, initial_backoff=0.5)
    client.create_application(request())
    [wait] = waits.waits
    assert 0.0 <= wait <= 0.5
    assert emulator.request_count("POST", APPS) == 2
    assert len(emulator.applications(API_KEY)) == 1


def test_429_until_the_deadline_gives_up_with_the_rate_limit_error(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("429", method="GET", times=1000, retry_after="3"))
    client = make_client(emulator.url, deadline=10.0, max_attempts=100)
    with pytest.raises(ApiError, match="gave up after 4 attempts") as caught:
        client.list_applications()
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert waits.waits == [3.0, 3.0, 3.0]  # a fourth wait would end past the 10s deadline
    assert emulator.request_count("GET", APPS) == 4


# --- 5xx ---------------------------------------------------------------------------------


def test_500_on_get_is_retried(emulator: Emulator, make_client: Any, waits: Recorder) -> None:
    emulator.add_fault(Fault("500", method="GET"))
    assert make_client(emulator.url).list_applications() == []
    assert len(waits.waits) == 1
    assert emulator.request_count("GET", APPS) == 2


def test_500_on_post_is_outcome_unknown_and_not_retried(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("500", method="POST"))
    with pytest.raises(OutcomeUnknownError) as caught:
        make_client(emulator.url).create_application(request())
    assert (caught.value.status, caught.value.code) == (500, "internal_error")
    assert waits.waits == []
    assert emulator.request_count("POST", APPS) == 1
    assert emulator.applications(API_KEY) == []  # this fault commits nothing


def test_503_with_retry_after_on_post_is_retried_and_creates_once(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("503", method="POST", retry_after="1"))
    created = make_client(emulator.url).create_application(request())
    assert waits.waits == [1.0]
    assert emulator.request_count("POST", APPS) == 2
    assert [a["id"] for a in emulator.applications(API_KEY)] == [created.id]


def test_503_without_retry_after_on_post_is_outcome_unknown(
    emulator: Emulator, make_client: Any
) -> None:
    emulator.add_fault(Fault("503", method="POST"))
    with pytest.raises(OutcomeUnknownError):
        make_client(emulator.url).create_application(request())
    assert emulator.request_count("POST", APPS) == 1


# --- dropped connections ------------------------------------------------------------


def test_drop_before_commit_on_get_is_retried(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="GET"))
    assert make_client(emulator.url).list_applications() == []
    assert len(waits.waits) == 1
    assert emulator.request_count("GET", APPS) == 2


def test_drop_before_commit_on_post_is_outcome_unknown_as_the_client_cannot_tell(
    emulator: Emulator, make_client: Any
) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="POST"))
    with pytest.raises(OutcomeUnknownError):
        make_client(emulator.url).create_application(request())
    assert emulator.request_count("POST", APPS) == 1
    assert emulator.applications(API_KEY) == []


def test_drop_after_commit_on_post_is_outcome_unknown_with_the_app_committed(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    with pytest.raises(OutcomeUnknownError, match="list before retrying"):
        make_client(emulator.url).create_application(request())
    assert waits.waits == []
    assert emulator.request_count("POST", APPS) == 1
    assert [a["name"] for a in emulator.applications(API_KEY)] == ["Support IVR"]


# --- slow answers and no server -----------------------------------------------------


def test_slow_answer_on_post_is_outcome_unknown_with_the_app_committed(
    emulator: Emulator, make_client: Any
) -> None:
    emulator.add_fault(Fault("slow", method="POST", delay=0.5))
    with pytest.raises(OutcomeUnknownError, match=r"no complete answer within 0\.1s"):
        make_client(emulator.url, timeout=0.1).create_application(request())
    assert emulator.request_count("POST", APPS) == 1
    assert [a["name"] for a in emulator.applications(API_KEY)] == ["Support IVR"]


def test_slow_answers_on_get_are_retried_until_the_deadline(
    emulator: Emulator, make_client: Any, waits: Recorder
) -> None:
    emulator.add_fault(Fault("slow", method="GET", times=1000, delay=0.5))
    client = make_client(emulator.url, timeout=0.1, deadline=0.5, initial_backoff=0.05)
    with pytest.raises(TransportError, match="gave up after") as caught:
        client.list_applications()
    assert "no complete answer within" in str(caught.value)
    attempts = emulator.request_count("GET", APPS)
    assert attempts >= 2
    assert len(waits.waits) == attempts - 1
    assert sum(waits.waits) < 0.5


def test_an_attempt_never_waits_past_the_deadline_for_its_answer(
    emulator: Emulator, make_client: Any
) -> None:
    # The answer would come after 1s; the 10s timeout alone would wait for it, but the
    # 0.3s deadline of the call cuts the attempt short.
    emulator.add_fault(Fault("slow", method="GET", delay=1.0))
    client = make_client(emulator.url, timeout=10.0, deadline=0.3)
    with pytest.raises(TransportError, match=r"no complete answer within 0\.3s"):
        client.list_applications()
    assert emulator.request_count("GET", APPS) == 1


def test_connection_refused_is_a_transport_error_after_one_quick_retry(
    make_client: Any, waits: Recorder
) -> None:
    # Nothing listens there: two attempts, not max_attempts (issue 9 item 12).
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", max_attempts=8)
    with pytest.raises(TransportError, match="could not connect") as caught:
        client.create_application(request())
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "gave up after 2 attempts" in str(caught.value)
    assert len(waits.waits) == 1


# --- secrets -------------------------------------------------------------------------


def test_no_secret_reaches_errors_or_debug_logs_through_every_fault(
    emulator: Emulator, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(emulator.url, timeout=0.2)
    texts: list[str] = []
    raised: list[str] = []
    issued: list[str] = []
    faults = [
        Fault("429", retry_after="0"),
        Fault("500", method="POST"),
        Fault("503", method="POST"),
        Fault("drop_before_commit", method="POST"),
        Fault("drop_after_commit", method="POST"),
        Fault("slow", method="POST", delay=0.5),
    ]
    with caplog.at_level(logging.DEBUG):
        for fault in faults:
            emulator.add_fault(fault)
            try:
                issued.append(client.create_application(request()).api_key.get_secret_value())
            except MvsyncError as error:
                raised.append(type(error).__name__)
                texts += [str(error), repr(error), repr(error.__context__), repr(vars(error))]
        client.list_applications()
        issued.append(client.create_application(request()).api_key.get_secret_value())
    assert raised == ["OutcomeUnknownError"] * 5  # every fault but the 429 raised
    assert issued
    assert "Bearer ***" in caplog.text
    assert_clean("\n".join(texts) + caplog.text + repr(client), *issued)
