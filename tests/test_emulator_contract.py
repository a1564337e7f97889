"""The emulator answers as the seed page documents (SPEC section 1): shapes, codes, messages.

Real HTTP on loopback; the expected bodies are the seed's own examples in tests/fixtures/seed/.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import FIXTURES, TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.model import CreatedApp, RemoteApp

SEED = FIXTURES / "seed"
APPS = "/v1/applications"
ID_FORMAT = re.compile(r"^app_\d{8}T\d{6}\.\d{9}$")
CREATED_AT_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def seed(name: str) -> Any:
    return json.loads((SEED / name).read_text(encoding="utf-8"))


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}
    ) as http:
        yield http


def create(client: httpx.Client, **overrides: Any) -> httpx.Response:
    body = {**seed("create_request.json"), **overrides}
    return client.post(APPS, json=body)


def test_seed_fixtures_are_copied_from_the_seed_page(shared_dir: Path) -> None:
    page = re.sub(r"\s+", "", (shared_dir / "seeds" / "000_1febb6517e36ce1a.txt").read_text())
    for fixture in sorted(SEED.glob("*.json")):
        assert re.sub(r"\s+", "", fixture.read_text()) in page, fixture.name


def test_create_answers_201_with_exactly_the_seed_response_keys(client: httpx.Client) -> None:
    response = create(client)
    assert response.status_code == 201
    assert list(response.json()) == list(seed("create_response.json"))


def test_create_answer_values_have_the_seed_types(client: httpx.Client) -> None:
    answer = create(client).json()
    expected = seed("create_response.json")
    assert {key: type(value) for key, value in answer.items()} == {
        key: type(value) for key, value in expected.items()
    }


def test_create_echoes_the_request_fields(client: httpx.Client) -> None:
    answer = create(client).json()
    request = seed("create_request.json")
    assert (answer["name"], answer["answer_url"], answer["webhook_url"]) == (
        request["name"],
        request["answer_url"],
        request["webhook_url"],
    )


def test_create_never_echoes_the_webhook_secret(client: httpx.Client) -> None:
    response = create(client, webhook_secret=TEST_WEBHOOK_SECRET)
    assert "webhook_secret" not in response.json()
    assert_no_secrets(response.text)


def test_the_seed_curl_body_without_webhook_secret_is_created(client: httpx.Client) -> None:
    response = client.post(APPS, json=seed("create_request_curl.json"))
    assert response.status_code == 201


def test_create_without_webhook_url_answers_webhook_url_null(client: httpx.Client) -> None:
    response = client.post(APPS, json={"name": "Bare", "answer_url": "https://example.com/a"})
    assert response.json()["webhook_url"] is None


def test_id_has_the_seed_format(client: httpx.Client) -> None:
    assert ID_FORMAT.match(create(client).json()["id"])


def test_created_at_is_rfc3339_utc_to_the_second(client: httpx.Client) -> None:
    assert CREATED_AT_FORMAT.match(create(client).json()["created_at"])


def test_customer_id_is_a_cust_id(client: httpx.Client) -> None:
    assert create(client).json()["customer_id"].startswith("cust_")


def test_issued_key_is_an_mv_live_key(client: httpx.Client) -> None:
    api_key = create(client).json()["api_key"]
    assert api_key.startswith("mv_live_") and len(api_key) > len("mv_live_") + 16


def test_each_create_issues_a_different_key(client: httpx.Client) -> None:
    keys = {create(client).json()["api_key"] for _ in range(5)}
    assert len(keys) == 5


def test_ids_are_unique_and_increasing(client: httpx.Client) -> None:
    ids = [create(client, name=f"App {n}").json()["id"] for n in range(50)]
    assert ids == sorted(set(ids))


def test_list_has_exactly_the_seed_list_keys(client: httpx.Client) -> None:
    create(client)
    listed = client.get(APPS).json()
    expected = seed("list_response.json")
    assert set(listed) == set(expected)
    assert set(listed["data"][0]) == set(expected["data"][0])


def test_list_counts_its_data(client: httpx.Client) -> None:
    for n in range(3):
        create(client, name=f"App {n}")
    listed = client.get(APPS).json()
    assert listed["count"] == len(listed["data"]) == 3


def test_list_of_a_new_customer_is_empty(client: httpx.Client) -> None:
    response = client.get(APPS)
    assert (response.status_code, response.json()) == (200, {"data": [], "count": 0})


def test_list_shows_the_created_application_as_created(client: httpx.Client) -> None:
    created = create(client).json()
    (listed,) = client.get(APPS).json()["data"]
    assert listed == {key: value for key, value in created.items() if key != "api_key"}


def test_list_never_shows_the_key_or_the_webhook_secret(client: httpx.Client) -> None:
    issued_key = create(client, webhook_secret=TEST_WEBHOOK_SECRET).json()["api_key"]
    response = client.get(APPS)
    assert "api_key" not in response.json()["data"][0]
    assert "webhook_secret" not in response.json()["data"][0]
    assert_no_secrets(response.text, extra=[issued_key])


def test_duplicate_names_are_allowed(client: httpx.Client) -> None:
    first, second = create(client), create(client)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert [app["name"] for app in client.get(APPS).json()["data"]] == ["Support IVR"] * 2


def test_missing_name_answers_the_seed_error_byte_for_byte(client: httpx.Client) -> None:
    body = seed("create_request.json")
    del body["name"]
    response = client.post(APPS, json=body)
    assert response.status_code == 400
    assert response.json() == seed("error_name_required.json")


def test_empty_name_is_name_is_required(client: httpx.Client) -> None:
    response = create(client, name="")
    assert response.json() == seed("error_name_required.json")


def test_invalid_answer_url_answers_the_seed_error_byte_for_byte(client: httpx.Client) -> None:
    response = create(client, answer_url="not a url")
    assert response.status_code == 400
    assert response.json() == seed("error_answer_url_invalid.json")


@pytest.mark.parametrize(
    "answer_url", ["ftp://example.com/a", "/relative/path", "https://", "", 42, None]
)
def test_answer_url_must_be_an_absolute_http_url(client: httpx.Client, answer_url: Any) -> None:
    response = create(client, answer_url=answer_url)
    assert response.json() == seed("error_answer_url_invalid.json")


def test_invalid_webhook_url_is_invalid_request(client: httpx.Client) -> None:
    response = create(client, webhook_url="mailto:x@example.com")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_malformed_json_is_400_invalid_json(client: httpx.Client) -> None:
    response = client.post(
        APPS, content=b'{"name": "Support IVR",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_json_array_body_is_invalid_request(client: httpx.Client) -> None:
    response = client.post(APPS, json=[seed("create_request.json")])
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")


def test_a_rejected_create_creates_nothing(client: httpx.Client, emulator: Emulator) -> None:
    create(client, name="")
    create(client, answer_url="nope")
    client.post(APPS, content=b"{")
    assert emulator.applications(TEST_API_KEY) == []


def test_error_bodies_have_exactly_the_seed_error_shape(client: httpx.Client) -> None:
    error = create(client, name="").json()
    expected = seed("error_name_required.json")
    assert set(error) == set(expected)
    assert set(error["error"]) == set(expected["error"])


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic abc", "Bearer"])
def test_list_without_a_valid_bearer_is_401_unauthorized(
    emulator: Emulator, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.get(emulator.url + APPS, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")


def test_create_without_a_valid_bearer_is_401_and_creates_nothing(emulator: Emulator) -> None:
    response = httpx.post(
        emulator.url + APPS,
        json=seed("create_request.json"),
        headers={"Authorization": "Bearer wrong-key"},
    )
    assert response.status_code == 401
    assert emulator.applications(TEST_API_KEY) == []


def test_unauthorized_answer_does_not_echo_the_key(emulator: Emulator) -> None:
    response = httpx.get(
        emulator.url + APPS, headers={"Authorization": "Bearer mvtest_BEARER_CANARY_7f3a9cX"}
    )
    assert_no_secrets(response.text)


def test_issued_key_authenticates_as_its_customer(client: httpx.Client, emulator: Emulator) -> None:
    issued_key = create(client).json()["api_key"]
    response = httpx.get(emulator.url + APPS, headers={"Authorization": f"Bearer {issued_key}"})
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_customers_do_not_see_each_others_applications(make_emulator: Any) -> None:
    server = make_emulator(["key-a", "key-b"])
    httpx.post(
        server.url + APPS,
        json=seed("create_request.json"),
        headers={"Authorization": "Bearer key-a"},
    )
    listed_b = httpx.get(server.url + APPS, headers={"Authorization": "Bearer key-b"}).json()
    assert listed_b == {"data": [], "count": 0}


def test_unknown_path_is_404_not_found_in_the_error_shape(client: httpx.Client) -> None:
    response = client.get("/v1/applications/app_1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_in_the_error_shape(client: httpx.Client, method: str) -> None:
    response = client.request(method, APPS)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, POST"


def test_answers_are_json(client: httpx.Client) -> None:
    assert client.get(APPS).headers["Content-Type"] == "application/json"


def test_the_client_models_parse_the_create_answer(client: httpx.Client) -> None:
    created = CreatedApp.model_validate(create(client).json())
    assert created.api_key.get_secret_value().startswith("mv_live_")


def test_the_client_models_parse_the_list(client: httpx.Client) -> None:
    create(client)
    apps = [RemoteApp.model_validate(item) for item in client.get(APPS).json()["data"]]
    assert [app.name for app in apps] == ["Support IVR"]


def test_the_client_models_parse_the_seed_examples() -> None:
    created = CreatedApp.model_validate(seed("create_response.json"))
    listed = RemoteApp.model_validate(seed("list_response.json")["data"][0])
    assert (created.id, listed.id) == ("app_20260529T120000.000000000", "app_123")


def test_keep_alive_serves_many_requests_on_one_connection(client: httpx.Client) -> None:
    for _ in range(20):
        create(client)
    assert client.get(APPS).json()["count"] == 20


def test_concurrent_creates_get_unique_ids_and_all_are_listed(emulator: Emulator) -> None:
    def create_ten(worker: int) -> list[str]:
        with httpx.Client(
            base_url=emulator.url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}
        ) as http:
            return [create(http, name=f"W{worker}-{n}").json()["id"] for n in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [app_id for batch in pool.map(create_ten, range(8)) for app_id in batch]
    assert len(set(ids)) == 80
    assert sorted(app["id"] for app in emulator.applications(TEST_API_KEY)) == sorted(ids)


def test_webhook_secret_of_returns_what_the_create_sent(
    client: httpx.Client, emulator: Emulator
) -> None:
    app_id = create(client, webhook_secret=TEST_WEBHOOK_SECRET).json()["id"]
    assert emulator.webhook_secret_of(app_id) == TEST_WEBHOOK_SECRET


def test_stop_joins_every_request_thread_with_idle_connections_open(make_emulator: Any) -> None:
    before = set(threading.enumerate())
    server = make_emulator()
    clients = [httpx.Client(headers={"Authorization": f"Bearer {TEST_API_KEY}"}) for _ in range(5)]
    for http in clients:
        http.get(server.url + APPS)  # each leaves a keep-alive connection and its thread
    server.stop()
    for http in clients:
        http.close()
    assert [thread for thread in threading.enumerate() if thread not in before] == []
