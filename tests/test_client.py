"""mvsync.api.client against httpx.MockTransport: parsing, refusals, errors, secrets.

The retry and fault cases against the real emulator live in test_client_retry.py.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from mvsync import __version__
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.api.responses import parse_retry_after
from mvsync.api.safety import UnsafeApiUrlError
from mvsync.errors import (
    ApiError,
    ApiResponseError,
    MvsyncError,
    OutcomeUnknownError,
    TransportError,
    UsageError,
)
from mvsync.model import CreateRequest
from mvsync.urls import is_loopback_host

# The same canaries as tests/helpers.py: they must never show up anywhere.
API_KEY = "mvtest_BEARER_CANARY_7f3a9c"
WEBHOOK_SECRET = "whsec_CANARY_2b8e41"
API_URL = "https://api.minivoice.test"
APPS_URL = f"{API_URL}/v1/applications"

SEED_LIST = {
    "data": [
        {
            "id": "app_123",
            "name": "Support IVR",
            "customer_id": "cust_123",
            "answer_url": "https://example.com/answer",
            "webhook_url": "https://example.com/webhooks",
            "created_at": "2026-05-29T12:00:00Z",
        }
    ],
    "count": 1,
}
SEED_CREATED = {
    "id": "app_20260529T120000.000000000",
    "customer_id": "cust_123",
    "name": "Support IVR",
    "answer_url": "https://example.com/minivoice/answer",
    "webhook_url": "https://example.com/minivoice/webhooks",
    "api_key": "mv_live_xxx",
    "created_at": "2026-05-29T12:00:00Z",
}

Answer = httpx.Response | Exception


class Script:
    """A MockTransport handler that plays answers in order and records every request."""

    def __init__(self, *answers: Answer | Callable[[httpx.Request], Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response | Exception):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer


def error_response(status: int, code: str, message: str = "x", **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


def make_client(
    script: Script, *, url: str = API_URL, key: str = API_KEY, **retry: Any
) -> tuple[MiniVoiceClient, list[float]]:
    waits: list[float] = []
    policy = RetryPolicy(sleep=waits.append, **retry)
    http = httpx.Client(transport=httpx.MockTransport(script))
    return MiniVoiceClient(url, key, http=http, retry=policy), waits


def create_request(secret: str | None = WEBHOOK_SECRET) -> CreateRequest:
    return CreateRequest.model_validate(
        {
            "name": "Support IVR",
            "answer_url": "https://example.com/minivoice/answer",
            "webhook_url": "https://example.com/minivoice/webhooks",
            "webhook_secret": secret,
        }
    )


def assert_clean(text: str) -> None:
    for secret in (API_KEY, WEBHOOK_SECRET, "mv_live_"):  # as sent, upper, lower
        for form in (secret, secret.upper(), secret.lower()):
            assert form not in text


# --- success and the seed's bodies -------------------------------------------------


def test_list_parses_the_seed_list_example() -> None:
    client, _ = make_client(Script(httpx.Response(200, json=SEED_LIST)))
    [app] = client.list_applications()
    assert (app.id, app.name, app.customer_id) == ("app_123", "Support IVR", "cust_123")
    assert app.compared() == {
        "answer_url": "https://example.com/answer",
        "webhook_url": "https://example.com/webhooks",
    }


def test_create_parses_the_seed_create_example_with_the_key_masked() -> None:
    client, _ = make_client(Script(httpx.Response(201, json=SEED_CREATED)))
    created = client.create_application(create_request())
    assert created.id == "app_20260529T120000.000000000"
    assert created.api_key.get_secret_value() == "mv_live_xxx"
    assert "mv_live_xxx" not in repr(created)


def test_create_posts_the_documented_body_including_the_webhook_secret() -> None:
    script = Script(httpx.Response(201, json=SEED_CREATED))
    client, _ = make_client(script)
    client.create_application(create_request())
    [request] = script.requests
    assert (request.method, str(request.url)) == ("POST", APPS_URL)
    assert json.loads(request.content) == {
        "name": "Support IVR",
        "answer_url": "https://example.com/minivoice/answer",
        "webhook_url": "https://example.com/minivoice/webhooks",
        "webhook_secret": WEBHOOK_SECRET,
    }


def test_requests_carry_the_bearer_token_and_the_mvsync_user_agent() -> None:
    script = Script(httpx.Response(200, json={"data": [], "count": 0}))
    client, _ = make_client(script)
    assert client.list_applications() == []
    [request] = script.requests
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"] == f"mvsync/{__version__}"


def test_api_url_with_a_path_prefix_keeps_it() -> None:
    script = Script(httpx.Response(200, json={"data": [], "count": 0}))
    client, _ = make_client(script, url="https://gw.example.com/minivoice/")
    client.list_applications()
    assert str(script.requests[0].url) == "https://gw.example.com/minivoice/v1/applications"


# --- refusals before any request ---------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused_before_any_request() -> None:
    script = Script(httpx.Response(200, json={"data": [], "count": 0}))
    with pytest.raises(UnsafeApiUrlError, match=r"plain http to api\.minivoice\.eu") as caught:
        make_client(script, url="http://api.minivoice.eu")
    assert isinstance(caught.value, MvsyncError)
    assert script.requests == []
    assert_clean(str(caught.value))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://127.9.8.7", "http://[::1]:8787", "http://localhost"]
)
def test_plain_http_to_a_loopback_host_is_allowed(url: str) -> None:
    script = Script(httpx.Response(200, json={"data": [], "count": 0}))
    client, _ = make_client(script, url=url)
    assert client.list_applications() == []


@pytest.mark.parametrize("host", ["128.0.0.1", "10.0.0.1", "::2", "localhost.example.com"])
def test_non_loopback_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize("url", ["ftp://api.minivoice.eu", "api.minivoice.eu", "https://"])
def test_an_api_url_that_is_not_absolute_http_is_refused(url: str) -> None:
    with pytest.raises(UnsafeApiUrlError, match="not"):
        MiniVoiceClient(url, API_KEY, http=httpx.Client())


def test_an_api_key_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    bad_key = API_KEY + "\n"
    with pytest.raises(UnsafeApiUrlError, match="API key") as caught:
        MiniVoiceClient(API_URL, bad_key, http=httpx.Client())
    assert_clean(str(caught.value))


def test_client_repr_masks_the_token() -> None:
    client, _ = make_client(Script(httpx.Response(200, json={"data": [], "count": 0})))
    assert_clean(repr(client))
    assert_clean(repr(vars(client)))


# --- non-2xx answers -----------------------------------------------------------------


def test_redirect_is_refused_and_not_followed() -> None:
    script = Script(
        httpx.Response(302, headers={"Location": "https://evil.example.net/v1/applications"})
    )
    client, _ = make_client(script)
    with pytest.raises(ApiError, match="does not follow redirects") as caught:
        client.list_applications()
    assert caught.value.status == 302
    assert [str(r.url) for r in script.requests] == [APPS_URL]


def test_401_names_the_url_that_refused_the_key_and_not_the_token() -> None:
    client, _ = make_client(Script(error_response(401, "unauthorized", "invalid API key")))
    with pytest.raises(ApiError) as caught:
        client.list_applications()
    error = caught.value
    assert f"the API at {APPS_URL} refused the API key" in str(error)
    assert (error.method, error.url, error.status, error.code) == (
        "GET",
        APPS_URL,
        401,
        "unauthorized",
    )
    assert_clean(str(error))
    assert_clean(repr(error))


def test_400_carries_method_url_status_code_and_the_api_message() -> None:
    client, _ = make_client(Script(error_response(400, "invalid_request", "name is required")))
    with pytest.raises(ApiError) as caught:
        client.create_application(create_request())
    error = caught.value
    assert type(error) is ApiError
    assert str(error) == f"POST {APPS_URL} answered 400 invalid_request: name is required"
    assert (error.method, error.status, error.code) == ("POST", 400, "invalid_request")


def test_an_api_message_echoing_secrets_is_scrubbed() -> None:
    echo = f"bad secret {WEBHOOK_SECRET} for Bearer {API_KEY}"
    client, _ = make_client(Script(error_response(400, "invalid_request", echo)))
    with pytest.raises(ApiError) as caught:
        client.create_application(create_request())
    assert "bad secret *** for Bearer ***" in str(caught.value)
    assert_clean(str(caught.value))


def test_a_4xx_is_not_retried() -> None:
    script = Script(error_response(400, "invalid_json", "invalid JSON"))
    client, waits = make_client(script)
    with pytest.raises(ApiError):
        client.create_application(create_request())
    assert (len(script.requests), waits) == (1, [])


def test_an_error_without_a_json_body_still_gives_the_status() -> None:
    client, _ = make_client(Script(httpx.Response(418, text="<html>teapot</html>")))
    with pytest.raises(ApiError, match=r"answered 418$") as caught:
        client.list_applications()
    assert caught.value.code is None


# --- malformed 2xx bodies ------------------------------------------------------------

APP = SEED_LIST["data"][0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b"[]", "expected an object, got list"),
        (b'{"count": 0}', '"data" is missing'),
        (b'{"data": {}, "count": 0}', '"data" is missing or not a list'),
        (b'{"data": []}', '"count" is missing'),
        (b'{"data": [], "count": "0"}', '"count" is missing or not an integer'),
        (json.dumps({"data": [APP], "count": 2}).encode(), '"count" is 2 but "data" holds 1'),
        (
            json.dumps({"data": [{"id": "app_1"}], "count": 1}).encode(),
            "data[0]: customer_id: Field required",
        ),
        (json.dumps({"data": [7], "count": 1}).encode(), "data[0]: body: Input should be"),
    ],
)
def test_a_malformed_list_body_is_an_api_response_error(body: bytes, reason: str) -> None:
    client, _ = make_client(Script(httpx.Response(200, content=body)))
    with pytest.raises(ApiResponseError) as caught:
        client.list_applications()
    assert reason in str(caught.value)


def test_a_create_answer_without_api_key_is_an_api_response_error() -> None:
    body = {k: v for k, v in SEED_CREATED.items() if k != "api_key"}
    client, _ = make_client(Script(httpx.Response(201, json=body)))
    with pytest.raises(ApiResponseError, match="no api_key") as caught:
        client.create_application(create_request())
    assert "probably created" in str(caught.value)


def test_a_malformed_create_answer_never_quotes_the_issued_key() -> None:
    body = {"api_key": "mv_live_SHOULD_NOT_SHOW", "name": 5}
    client, _ = make_client(Script(httpx.Response(201, json=body)))
    with pytest.raises(ApiResponseError, match="id: Field required") as caught:
        client.create_application(create_request())
    assert_clean(str(caught.value))


def test_a_create_answer_that_is_not_json_is_an_api_response_error() -> None:
    client, _ = make_client(Script(httpx.Response(201, content=b'{"api_key": "mv_live_1"')))
    with pytest.raises(ApiResponseError, match="not JSON") as caught:
        client.create_application(create_request())
    assert_clean(str(caught.value))


# --- Retry-After and backoff ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"), [("2", 2.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0)]
)
def test_retry_after_seconds_are_read(header: str, seconds: float) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date_is_read_relative_to_now() -> None:
    now = datetime(2026, 5, 29, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == 7.0


def test_retry_after_http_date_in_the_past_means_now() -> None:
    now = datetime(2026, 5, 29, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 29 May 2026 11:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "Fri, 99 Foo 2026"])
def test_unreadable_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_backoff_is_full_jitter_capped_at_max_backoff() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=2.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 2.0)]:
        samples = [policy.backoff(attempt) for _ in range(300)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # it does grow up to the cap, it is not fixed low


def test_get_waits_exactly_the_retry_after_seconds() -> None:
    script = Script(
        error_response(429, "rate_limited", **{"Retry-After": "3"}),
        httpx.Response(200, json={"data": [], "count": 0}),
    )
    client, waits = make_client(script)
    assert client.list_applications() == []
    assert waits == [3.0]


def test_a_retry_after_past_the_deadline_ends_the_call_without_waiting() -> None:
    script = Script(error_response(429, "rate_limited", **{"Retry-After": "120"}))
    client, waits = make_client(script, deadline=10.0)
    with pytest.raises(ApiError, match="asked to wait 120s") as caught:
        client.list_applications()
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert (len(script.requests), waits) == (1, [])


def test_waits_never_add_up_past_the_deadline() -> None:
    script = Script(error_response(429, "rate_limited"))
    client, waits = make_client(
        script, deadline=5.0, max_attempts=1000, initial_backoff=1.0, max_backoff=4.0
    )
    with pytest.raises(ApiError, match="gave up after"):
        client.list_applications()
    assert sum(waits) < 5.0
    assert len(script.requests) == len(waits) + 1
    assert all(w <= 4.0 for w in waits)


def test_max_attempts_bounds_the_attempts() -> None:
    script = Script(error_response(503, "unavailable", **{"Retry-After": "0"}))
    client, waits = make_client(script, max_attempts=3)
    with pytest.raises(ApiError, match="gave up after 3 attempts"):
        client.create_application(create_request())
    assert (len(script.requests), waits) == (3, [0.0, 0.0])


# --- which failures are retried --------------------------------------------------------

OK_LIST = httpx.Response(200, json={"data": [], "count": 0})


@pytest.mark.parametrize(
    "failure",
    [
        error_response(500, "internal_error"),
        error_response(502, "bad_gateway"),
        error_response(503, "unavailable"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        httpx.ConnectError("Connection refused"),
    ],
)
def test_get_is_retried_after_a_failure(failure: Answer) -> None:
    script = Script(failure, OK_LIST)
    client, waits = make_client(script)
    assert client.list_applications() == []
    assert len(script.requests) == 2
    assert len(waits) == 1


@pytest.mark.parametrize(
    "failure",
    [
        error_response(429, "rate_limited"),
        error_response(503, "unavailable", **{"Retry-After": "1"}),
        httpx.ConnectError("Connection refused"),
        httpx.ConnectTimeout("timed out"),
    ],
)
def test_post_is_retried_when_known_not_processed(failure: Answer) -> None:
    script = Script(failure, httpx.Response(201, json=SEED_CREATED))
    client, _ = make_client(script)
    assert client.create_application(create_request()).id == SEED_CREATED["id"]
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        error_response(500, "internal_error"),
        error_response(502, "bad_gateway"),
        error_response(504, "gateway_timeout"),
        error_response(503, "unavailable"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        httpx.WriteError("Broken pipe"),
    ],
)
def test_post_that_may_have_committed_is_outcome_unknown_and_not_retried(failure: Answer) -> None:
    script = Script(failure, httpx.Response(201, json=SEED_CREATED))
    client, waits = make_client(script)
    with pytest.raises(OutcomeUnknownError, match="list before retrying") as caught:
        client.create_application(create_request())
    assert (len(script.requests), waits) == (1, [])
    assert caught.value.method == "POST"


def test_a_tls_failure_is_not_retried() -> None:
    failure = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    failure.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    script = Script(failure, OK_LIST)
    client, waits = make_client(script)
    with pytest.raises(TransportError, match="TLS failed"):
        client.list_applications()
    assert (len(script.requests), waits) == (1, [])


@pytest.mark.parametrize(
    "policy",
    [{"deadline": 0}, {"deadline": -1.0}, {"max_attempts": 0}, {"initial_backoff": -0.1}],
)
def test_a_retry_policy_that_cannot_work_is_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        RetryPolicy(**policy)


def test_transport_failures_exhausted_are_a_transport_error() -> None:
    script = Script(httpx.ConnectError("Connection refused"))
    client, waits = make_client(script, max_attempts=4)
    with pytest.raises(TransportError, match="could not connect"):
        client.list_applications()
    assert (len(script.requests), len(waits)) == (4, 3)


def test_an_exception_text_holding_the_token_is_scrubbed() -> None:
    script = Script(httpx.LocalProtocolError(f"Illegal header value b'Bearer {API_KEY}'"))
    client, _ = make_client(script)
    with pytest.raises(TransportError) as caught:
        client.create_application(create_request())
    assert_clean(str(caught.value))
    assert caught.value.__suppress_context__
    assert caught.value.__cause__ is None


# --- logging -------------------------------------------------------------------------


def test_debug_log_shows_attempts_and_waits_with_the_token_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(error_response(429, "rate_limited", **{"Retry-After": "2"}), OK_LIST)
    client, _ = make_client(script)
    with caplog.at_level(logging.DEBUG):
        client.list_applications()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "mvsync.api.client")
    assert f"GET {APPS_URL} attempt 1" in text
    assert "Authorization: Bearer ***" in text
    assert "attempt 1 answered 429" in text
    assert "waiting 2.000s before attempt 2" in text
    assert "attempt 2 answered 200" in text
    assert_clean(caplog.text)
