"""Issue 9, item 12 (messages): what mvsync says about the answers it reads.

- a malformed create answer names the status the server sent (201), not 200;
- a list holding one id twice is a malformed answer;
- a lone surrogate escape in a listed or created application is a malformed answer
  (it can be neither printed nor saved), and a created one still hands over its key;
- the last confirmation listing gets a budget an answer fits in, never 0.001 s.

Real HTTP on loopback: the hostile servers of ``test_client_hostile`` and the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import TEST_API_KEY
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.apply.run import apply_environment
from mvsync.apply.settings import ApplySettings, NullReporter
from mvsync.emulator import Emulator, Fault
from mvsync.errors import ApiResponseError
from mvsync.model import DesiredApp, DesiredEnvironment
from test_client_hostile import (
    APP,
    ISSUED_KEY,
    FakeApi,
    Handler,
    client_for,
    create_request,
    created,
)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeApi]]:
    started: list[FakeApi] = []

    def start(handler: Handler) -> FakeApi:
        started.append(FakeApi(handler).__enter__())
        return started[-1]

    yield start
    for fake in started:
        fake.__exit__()


@pytest.mark.parametrize("status", [200, 201])
def test_a_malformed_create_answer_names_the_status_the_server_sent(
    serve: Callable[[Handler], FakeApi], status: int
) -> None:
    fake = serve(lambda ex: ex.send(status, created(customer_id=5)))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.create_application(create_request())
    assert f"answered {status} with an unexpected body" in str(caught.value)
    assert caught.value.status == status
    assert caught.value.issued_key is not None


def test_a_malformed_list_names_the_status_the_server_sent(
    serve: Callable[[Handler], FakeApi],
) -> None:
    fake = serve(lambda ex: ex.send(203, {"data": [], "count": 3}))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.list_applications()
    assert "answered 203 with an unexpected body" in str(caught.value)


def test_a_list_holding_one_id_twice_is_malformed(serve: Callable[[Handler], FakeApi]) -> None:
    twice = [APP, APP | {"name": "Other"}]
    fake = serve(lambda ex: ex.send(200, {"data": twice, "count": 2}))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.list_applications()
    assert "data[1].id: the id of data[0] again" in str(caught.value)


@pytest.mark.parametrize("field", ["name", "answer_url", "webhook_url"])
def test_a_listed_lone_surrogate_is_a_malformed_answer(
    serve: Callable[[Handler], FakeApi], field: str
) -> None:
    body = '{"data": [' + _with_surrogate(APP, field) + '], "count": 1}'
    fake = serve(lambda ex: ex.send(200, body))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.list_applications()
    message = str(caught.value)
    assert f"data[0].{field}: not valid Unicode (a lone surrogate escape)" in message
    message.encode("utf-8")  # the message itself can be printed


def test_a_created_lone_surrogate_is_malformed_and_hands_over_the_key(
    serve: Callable[[Handler], FakeApi],
) -> None:
    body = _with_surrogate(created(), "name")
    fake = serve(lambda ex: ex.send(201, body))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.create_application(create_request())
    assert "name: not valid Unicode" in str(caught.value)
    assert caught.value.issued_key is not None
    assert caught.value.issued_key.get_secret_value() == ISSUED_KEY
    assert caught.value.app_id == APP["id"]


def _with_surrogate(item: dict[str, Any], field: str) -> str:
    import json

    text = json.dumps(item | {field: "https://e.com/PLACE"})
    return text.replace("PLACE", "\\ud800")


# --- the last confirmation listing ---------------------------------------------------


class _Notes(NullReporter):
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.notes: list[str] = []

    def creating(self, total: int) -> None:
        # The first confirmation listing fails: a second one is needed.
        self.emulator.add_fault(Fault("500", method="GET", times=1))

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_the_last_confirmation_listing_gets_a_budget_an_answer_fits_in(
    emulator: Emulator, tmp_path: Path
) -> None:
    def sleep_out_the_deadline(seconds: float) -> None:
        # The pause before the next listing uses up all that is left of the deadline,
        # and the next listing takes 50 ms to answer.
        emulator.add_fault(Fault("slow", method="GET", times=5, delay=0.05))
        time.sleep(seconds)

    env = DesiredEnvironment(
        name="dev",
        api_url=emulator.url,
        api_key_env="MINIVOICE_API_KEY",
        secrets_path=tmp_path / ".mvsync" / "dev.secrets.yaml",
        apps=(DesiredApp(name="App 0", answer_url="https://example.com/0/answer"),),
    )
    settings = ApplySettings(
        unknown_wait=0.01, confirm_deadline=0.2, confirm_backoff=10.0, sleep=sleep_out_the_deadline
    )
    reporter = _Notes(emulator)
    retry = RetryPolicy(deadline=5.0, max_attempts=1)
    with MiniVoiceClient(emulator.url, TEST_API_KEY, timeout=2.0, retry=retry) as client:
        result = apply_environment(
            env, client, settings=settings, secret_of=lambda ref: ref, reporter=reporter
        )
    assert len(reporter.notes) == 1, reporter.notes  # the first listing's 500, only
    assert result.unconfirmed == []
    assert result.ok
