"""Contract: the seed page's example bodies (tests/fixtures/seed/) and the client's models.

What the client sends must be the seed's request body; what the seed shows the API
answering must parse into the client's values; the seed's error bodies must reach the
user as typed errors with their code and message. The same holds against the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.emulator import Emulator
from mvsync.errors import ApiError
from mvsync.model import CreatedApp, CreateRequest, RemoteApp

SEED = Path(__file__).resolve().parent / "fixtures" / "seed"
API_KEY = "mvtest_BEARER_CANARY_7f3a9c"  # accepted by the conftest `emulator` (tests/helpers.py)
API_URL = "https://api.minivoice.eu"


def seed(name: str) -> Any:
    return json.loads((SEED / name).read_text(encoding="utf-8"))


def mock_client(status: int, body: Any, sent: list[httpx.Request]) -> MiniVoiceClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, json=body)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return MiniVoiceClient(API_URL, API_KEY, http=http, retry=RetryPolicy(sleep=lambda _: None))


def test_the_seed_list_answer_parses_into_remote_apps() -> None:
    body = seed("list_response.json")
    [app] = mock_client(200, body, []).list_applications()
    assert app == RemoteApp(**body["data"][0])
    assert app.model_dump() == body["data"][0]


def test_the_seed_create_answer_parses_into_a_created_app() -> None:
    body = seed("create_response.json")
    created = mock_client(201, body, []).create_application(
        CreateRequest(**seed("create_request.json"))
    )
    assert created.api_key.get_secret_value() == body["api_key"]
    assert {**created.model_dump(), "api_key": created.api_key.get_secret_value()} == body
    assert CreatedApp.model_fields.keys() == body.keys()


@pytest.mark.parametrize("name", ["create_request.json", "create_request_curl.json"])
def test_the_client_sends_the_seed_request_body(name: str) -> None:
    body = seed(name)
    sent: list[httpx.Request] = []
    client = mock_client(201, seed("create_response.json"), sent)
    client.create_application(CreateRequest(**body))
    [request] = sent
    assert json.loads(request.content) == body
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("name", ["error_name_required.json", "error_answer_url_invalid.json"])
def test_a_seed_error_body_becomes_an_api_error_with_its_code_and_message(name: str) -> None:
    body = seed(name)
    client = mock_client(400, body, [])
    with pytest.raises(ApiError) as caught:
        client.create_application(CreateRequest(**seed("create_request.json")))
    assert (caught.value.status, caught.value.code) == (400, body["error"]["code"])
    assert str(caught.value).endswith(f"400 invalid_request: {body['error']['message']}")


def test_the_seed_request_round_trips_through_the_emulator(emulator: Emulator) -> None:
    request = CreateRequest(**seed("create_request.json"))
    with MiniVoiceClient(emulator.url, API_KEY) as client:
        created = client.create_application(request)
        [listed] = client.list_applications()
    seed_answer = seed("create_response.json")
    assert set(created.model_dump()) == set(seed_answer)
    for field in ("name", "answer_url", "webhook_url"):
        assert getattr(created, field) == seed_answer[field] == getattr(listed, field)
    assert listed.id == created.id
    assert set(emulator.applications(API_KEY)[0]) == set(seed("list_response.json")["data"][0])


def test_the_seed_failure_case_reaches_the_user_from_the_emulator(emulator: Emulator) -> None:
    expected = seed("error_answer_url_invalid.json")["error"]
    with MiniVoiceClient(emulator.url, API_KEY) as client, pytest.raises(ApiError) as caught:
        client.create_application(CreateRequest(name="Support IVR", answer_url="not a url"))
    assert caught.value.code == expected["code"]
    assert expected["message"] in str(caught.value)
