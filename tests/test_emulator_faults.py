"""Injected faults, latency and request counts: Python API and /_emulator HTTP controls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator, EmulatorError, Fault

APPS = "/v1/applications"
BODY = {"name": "Support IVR", "answer_url": "https://example.com/minivoice/answer"}


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=5.0
    ) as http:
        yield http


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("429", 429, "rate_limited"), ("500", 500, "internal_error"), ("503", 503, "unavailable")],
)
def test_status_fault_answers_its_status_and_error_code(
    emulator: Emulator, client: httpx.Client, kind: Any, status: int, code: str
) -> None:
    emulator.add_fault(Fault(kind, method="POST"))
    response = client.post(APPS, json=BODY)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_status_fault_commits_nothing(emulator: Emulator, client: httpx.Client, kind: Any) -> None:
    emulator.add_fault(Fault(kind, method="POST"))
    client.post(APPS, json=BODY)
    assert emulator.applications(TEST_API_KEY) == []


def test_429_sends_retry_after_in_seconds(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("429", retry_after="2"))
    assert client.get(APPS).headers["Retry-After"] == "2"


def test_503_sends_retry_after_as_an_http_date(emulator: Emulator, client: httpx.Client) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    emulator.add_fault(Fault("503", retry_after=date))
    assert client.get(APPS).headers["Retry-After"] == date


def test_429_without_retry_after_sends_no_header(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("429"))
    response = client.get(APPS)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_a_fault_is_spent_after_its_times(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("500", times=2))
    statuses = [client.get(APPS).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_a_fault_for_post_leaves_get_alone(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("500", method="POST"))
    assert client.get(APPS).status_code == 200
    assert client.post(APPS, json=BODY).status_code == 500


def test_faults_are_used_in_the_order_added(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("429"))
    emulator.add_fault(Fault("503"))
    assert [client.get(APPS).status_code for _ in range(3)] == [429, 503, 200]


def test_clear_faults_removes_pending_faults(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("500", times=5))
    emulator.clear_faults()
    assert client.get(APPS).status_code == 200


def test_add_fault_leaves_the_callers_fault_unchanged(
    emulator: Emulator, client: httpx.Client
) -> None:
    fault = Fault("500", times=2)
    emulator.add_fault(fault)
    client.get(APPS)
    assert fault.times == 2


def test_drop_before_commit_closes_without_answer(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="POST"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(APPS, json=BODY)


def test_drop_before_commit_creates_nothing(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="POST"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(APPS, json=BODY)
    assert emulator.applications(TEST_API_KEY) == []


def test_drop_after_commit_closes_without_answer_but_creates(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(APPS, json=BODY)
    assert [app["name"] for app in emulator.applications(TEST_API_KEY)] == ["Support IVR"]


def test_drop_on_get_closes_without_answer(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="GET"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(APPS)


def test_the_next_request_after_a_drop_is_answered(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.add_fault(Fault("drop_before_commit"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(APPS)
    assert client.get(APPS).status_code == 200


def test_slow_post_times_the_client_out_but_commits(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.add_fault(Fault("slow", method="POST", delay=30.0))
    with pytest.raises(httpx.ReadTimeout):
        client.post(APPS, json=BODY, timeout=0.2)
    assert len(emulator.applications(TEST_API_KEY)) == 1


def test_slow_get_times_the_client_out(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("slow", method="GET", delay=30.0))
    with pytest.raises(httpx.ReadTimeout):
        client.get(APPS, timeout=0.2)


def test_slow_answer_arrives_after_its_delay(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("slow", method="POST", delay=0.05))
    assert client.post(APPS, json=BODY).status_code == 201


def test_stop_does_not_wait_for_a_slow_answer(make_emulator: Any) -> None:
    server = make_emulator()
    server.add_fault(Fault("slow", delay=3600.0))
    with pytest.raises(httpx.HTTPError):
        httpx.get(
            server.url + APPS, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=0.2
        )
    server.stop()  # would hang for an hour if the wait were not woken
    assert not server.running


def test_latency_still_answers(emulator: Emulator, client: httpx.Client) -> None:
    emulator.set_latency(0.01)
    assert client.get(APPS).status_code == 200


def test_latency_past_the_read_timeout_times_the_client_out(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.set_latency(30.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get(APPS, timeout=0.2)


def test_negative_latency_is_refused(emulator: Emulator) -> None:
    with pytest.raises(EmulatorError, match="latency"):
        emulator.set_latency(-1)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "418"},
        {"kind": "429", "method": "PUT"},
        {"kind": "429", "times": 0},
        {"kind": "slow", "delay": -1},
    ],
)
def test_invalid_faults_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(EmulatorError):
        Fault(**bad)


def test_request_count_counts_by_method_and_path(emulator: Emulator, client: httpx.Client) -> None:
    client.get(APPS)
    client.post(APPS, json=BODY)
    client.post(APPS, json=BODY)
    assert (emulator.request_count("GET", APPS), emulator.request_count("POST", APPS)) == (1, 2)


def test_request_count_includes_faulted_requests(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("drop_before_commit", method="POST"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(APPS, json=BODY)
    assert emulator.request_count("POST") == 1


def test_request_count_without_filters_counts_everything(
    emulator: Emulator, client: httpx.Client
) -> None:
    client.get(APPS)
    client.get("/nowhere")
    assert emulator.request_count() == 2


# --- the same controls over HTTP ------------------------------------------------------


def test_http_control_adds_a_fault(emulator: Emulator, client: httpx.Client) -> None:
    added = httpx.post(emulator.url + "/_emulator/faults", json={"kind": "429", "retry_after": "1"})
    assert added.status_code == 200
    response = client.get(APPS)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")


def test_http_control_adds_a_list_of_faults(emulator: Emulator, client: httpx.Client) -> None:
    httpx.post(
        emulator.url + "/_emulator/faults",
        json=[{"kind": "500", "method": "GET"}, {"kind": "503", "method": "GET", "times": 2}],
    )
    assert [client.get(APPS).status_code for _ in range(4)] == [500, 503, 503, 200]


def test_http_control_clears_faults(emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_fault(Fault("500", times=3))
    assert httpx.delete(emulator.url + "/_emulator/faults").status_code == 200
    assert client.get(APPS).status_code == 200


def test_http_control_refuses_an_invalid_fault(emulator: Emulator) -> None:
    response = httpx.post(emulator.url + "/_emulator/faults", json={"kind": "teapot"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
    assert emulator.faults() == []


def test_http_control_sets_latency(emulator: Emulator) -> None:
    response = httpx.put(emulator.url + "/_emulator/latency", json={"seconds": 0.02})
    assert response.json() == {"seconds": 0.02}
    assert emulator.latency == 0.02


def test_http_control_refuses_negative_latency(emulator: Emulator) -> None:
    response = httpx.put(emulator.url + "/_emulator/latency", json={"seconds": -1})
    assert response.status_code == 400


def test_http_control_reports_request_counts(emulator: Emulator, client: httpx.Client) -> None:
    client.get(APPS)
    client.post(APPS, json=BODY)
    counts = httpx.get(emulator.url + "/_emulator/requests").json()
    assert counts == {"counts": {"GET /v1/applications": 1, "POST /v1/applications": 1}}


def test_http_controls_are_not_counted_as_api_requests(emulator: Emulator) -> None:
    httpx.get(emulator.url + "/_emulator/requests")
    httpx.delete(emulator.url + "/_emulator/faults")
    assert emulator.request_count() == 0


def test_unknown_control_is_404(emulator: Emulator) -> None:
    assert httpx.get(emulator.url + "/_emulator/nothing").status_code == 404


# --- the CLI's fault syntax -----------------------------------------------------------


def test_fault_spec_with_every_part() -> None:
    assert Fault.parse("429:POST:3:2") == Fault("429", method="POST", times=3, retry_after="2")


def test_fault_spec_keeps_colons_of_an_http_date() -> None:
    fault = Fault.parse("503:*:1:Wed, 21 Oct 2026 07:28:00 GMT")
    assert (fault.method, fault.retry_after) == (None, "Wed, 21 Oct 2026 07:28:00 GMT")


def test_fault_spec_slow_takes_a_delay() -> None:
    assert Fault.parse("slow:get::12.5") == Fault("slow", method="GET", times=1, delay=12.5)


@pytest.mark.parametrize("spec", ["nope", "429:POST:x", "500:GET:1:5", "slow:GET:1:soon"])
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(EmulatorError, match="--fault"):
        Fault.parse(spec)
