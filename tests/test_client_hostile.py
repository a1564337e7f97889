"""mvsync.api.client against a hostile server on a loopback port: real sockets, raw bytes.

Each test starts a small fake MiniVoice whose answer is written byte by byte by the
test (drips, endless headers, huge or deep bodies, echoed secrets, hostile ids), so
the client's defences are tried over real HTTP, not a mock transport.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.api.safety import UnsafeApiUrlError
from mvsync.errors import ApiError, ApiResponseError, OutcomeUnknownError, TransportError
from mvsync.model import CreateRequest

API_KEY = "mvtest_BEARER_CANARY_7f3a9c"
ISSUED_KEY = "mv_live_ISSUED_CANARY_5d1e"
# A webhook secret that JSON must escape: an echo of the body shows it as CANARY\"...\\...
HARD_SECRET = 'whsec_CANARY"quote\\slash_2b8e41'

APP = {
    "id": "app_20260529T120000.000000000",
    "customer_id": "cust_123",
    "name": "Support IVR",
    "answer_url": "https://example.com/answer",
    "webhook_url": None,
    "created_at": "2026-05-29T12:00:00Z",
}

Handler = Callable[["Exchange"], None]


class Exchange:
    """One request the fake server read, and the socket to answer it on."""

    def __init__(self, sock: socket.socket, head: bytes, body: bytes, number: int) -> None:
        self.sock = sock
        self.head = head
        self.body = body
        self.number = number  # 1-based, across the server's life
        self.method = head.split(b" ", 1)[0].decode()

    def send(self, status: int, body: bytes | str | Any, *headers: tuple[str, str]) -> None:
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class FakeApi:
    """A threaded TCP server that hands every request to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stopping = threading.Event()
        self.requests: list[Exchange] = []
        fake = self

        class RequestHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    body += sock.recv(65536)
                exchange = Exchange(sock, head, body, len(fake.requests) + 1)
                fake.requests.append(exchange)
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    fake.handler(exchange)

        socketserver.ThreadingTCPServer.daemon_threads = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), RequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def drip(self, exchange: Exchange, first: bytes, each: bytes, *, seconds: float = 3.0) -> None:
        """Send ``first``, then ``each`` every 0.05s: no read ever waits long."""
        exchange.sock.sendall(first)
        ends = time.monotonic() + seconds
        while time.monotonic() < ends and not self.stopping.is_set():
            exchange.sock.sendall(each)
            time.sleep(0.05)

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeApi]]:
    started: list[FakeApi] = []

    def start(handler: Handler) -> FakeApi:
        fake = FakeApi(handler).__enter__()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.__exit__()


def client_for(fake: FakeApi, *, timeout: float = 0.5, **options: Any) -> MiniVoiceClient:
    retry = {key: options.pop(key) for key in ("deadline", "max_attempts") if key in options}
    policy = RetryPolicy(sleep=lambda _: None, initial_backoff=0.0, **retry)
    return MiniVoiceClient(fake.url, API_KEY, timeout=timeout, retry=policy, **options)


def create_request(secret: str | None = HARD_SECRET) -> CreateRequest:
    return CreateRequest.model_validate(
        {
            "name": "Support IVR",
            "answer_url": "https://example.com/answer",
            "webhook_secret": secret,
        }
    )


def every_form(secret: str) -> list[str]:
    forms = [secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)]
    return [*forms, secret[:12], secret[-12:]]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in every_form(secret):
            for cased in (form, form.upper(), form.lower()):  # an echo may change case
                assert cased not in text, "a secret (or a large part of one) is in the text"


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


# --- 1. a whole attempt is bounded, whatever the server does -------------------------


def test_a_body_dripped_a_byte_at_a_time_ends_the_get_at_the_deadline(
    serve: Callable[[Handler], FakeApi],
) -> None:
    # Each byte comes well within the 0.5s read timeout, so only a whole-attempt bound ends it.
    fake = serve(lambda ex: fake.drip(ex, OK_HEAD + b"Content-Length: 100000\r\n\r\n", b" "))
    with (
        client_for(fake, deadline=0.8) as client,
        pytest.raises(TransportError, match="no complete answer within") as caught,
    ):
        client.list_applications()
    assert "gave up after" in str(caught.value)


def test_header_lines_that_never_end_end_the_get_at_the_deadline(
    serve: Callable[[Handler], FakeApi],
) -> None:
    fake = serve(lambda ex: fake.drip(ex, b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n"))
    with (
        client_for(fake, deadline=0.8) as client,
        pytest.raises(TransportError, match="no complete answer within"),
    ):
        client.list_applications()


def test_a_dripped_create_answer_is_outcome_unknown_and_not_retried(
    serve: Callable[[Handler], FakeApi],
) -> None:
    fake = serve(lambda ex: fake.drip(ex, OK_HEAD + b"Content-Length: 100000\r\n\r\n", b" "))
    with (
        client_for(fake, deadline=5.0) as client,
        pytest.raises(OutcomeUnknownError, match=r"no complete answer within 0\.5s") as caught,
    ):
        client.create_application(create_request())
    assert "list before retrying" in str(caught.value)
    assert len(fake.requests) == 1


def test_a_get_stuck_on_one_connection_is_retried_on_a_new_one(
    serve: Callable[[Handler], FakeApi],
) -> None:
    def handler(exchange: Exchange) -> None:
        if exchange.number == 1:
            fake.drip(exchange, OK_HEAD + b"Content-Length: 100000\r\n\r\n", b" ")
        else:
            exchange.send(200, {"data": [APP], "count": 1})

    fake = serve(handler)
    with client_for(fake, timeout=0.4, deadline=2.0) as client:
        assert [app.id for app in client.list_applications()] == [APP["id"]]
    assert len(fake.requests) == 2


# --- 2. bodies are capped ----------------------------------------------------------------


def test_an_endless_chunked_body_is_cut_at_the_cap(serve: Callable[[Handler], FakeApi]) -> None:
    def handler(exchange: Exchange) -> None:
        exchange.sock.sendall(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 65536
        for _ in range(1024):  # 64 MiB at most: the client must hang up long before
            exchange.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    fake = serve(handler)
    with (
        client_for(fake, timeout=2.0, max_body_bytes=1024 * 1024) as client,
        pytest.raises(ApiResponseError, match="larger than 1,048,576 bytes"),
    ):
        client.list_applications()


def test_a_declared_length_over_the_cap_is_refused_unread(
    serve: Callable[[Handler], FakeApi],
) -> None:
    # 2 GB announced, nothing sent: the default cap refuses it from the header alone.
    fake = serve(lambda ex: ex.sock.sendall(OK_HEAD + b"Content-Length: 2147483648\r\n\r\n"))
    with client_for(fake) as client, pytest.raises(ApiResponseError, match="larger than"):
        client.list_applications()


# --- 3. bodies that break the JSON parser --------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"data": [], "count": ' + "9" * 5000 + "}", "number too long"),
        (b'{"data": [], "count": 0, "x": "\xff"}', "not UTF-8"),
    ],
)
def test_a_body_the_parser_refuses_is_one_api_response_error(
    serve: Callable[[Handler], FakeApi], body: str | bytes, reason: str
) -> None:
    fake = serve(lambda ex: ex.send(200, body))
    with client_for(fake) as client, pytest.raises(ApiResponseError, match=reason):
        client.list_applications()


# --- 4, 5, 6. what an error answer may show -----------------------------------------------


def echo(exchange: Exchange) -> None:
    """A 400 whose message quotes the token in three cases, then the body (JSON-escaped),
    also URL-encoded. The token comes first: the client cuts a long message, and what
    is cut off is never checked."""
    sent = exchange.body.decode()
    token = API_KEY
    message = f"auth {token} {token.upper()} {token.lower()}; "
    message += f"could not parse {sent}; url {quote(sent, safe='')}; form {quote_plus(sent)}"
    exchange.send(400, {"error": {"code": "invalid_json", "message": message}})


def test_an_echoed_webhook_secret_is_masked_in_every_form(
    serve: Callable[[Handler], FakeApi],
) -> None:
    fake = serve(echo)
    with client_for(fake) as client, pytest.raises(ApiError, match="invalid_json") as caught:
        client.create_application(create_request())
    assert_no_secret(str(caught.value), HARD_SECRET, API_KEY)
    assert "auth *** *** ***; could not parse" in str(caught.value)


def test_a_long_error_message_is_masked_before_it_is_cut(
    serve: Callable[[Handler], FakeApi],
) -> None:
    # The token starts at character 289: a cut at 300 before masking kept 11 characters.
    message = "x" * 282 + " token=" + API_KEY
    fake = serve(lambda ex: ex.send(400, {"error": {"code": "bad", "message": message}}))
    with client_for(fake) as client, pytest.raises(ApiError) as caught:
        client.list_applications()
    assert "token=***" in str(caught.value)
    assert API_KEY[:8] not in str(caught.value)


def test_control_and_bidi_characters_of_an_api_error_are_escaped(
    serve: Callable[[Handler], FakeApi],
) -> None:
    error = {"code": "invalid\x1b[31m", "message": "title \x1b]0;PWN\x07 csi \x9b2J rtl \u202eabc"}
    fake = serve(lambda ex: ex.send(400, {"error": error}))
    with client_for(fake) as client, pytest.raises(ApiError) as caught:
        client.list_applications()
    text = str(caught.value)
    assert not [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]
    assert "invalid\\x1b[31m" in text
    assert "\\x1b]0;PWN\\x07" in text
    assert "\\u202eabc" in text


# --- 7, 8. hostile ids, and a create answer that is malformed but carries a key -------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "app_1\x1b[2J\x1b]0;PWN\x07"),
        ("id", "app_1\n::error::fake"),
        ("id", "app 1"),
        ("id", "../../etc/\u202eevil"),
        ("id", "a" * 257),
        ("id", ""),
        ("customer_id", "cust\r1"),
        ("created_at", "2026\nx: 1"),
    ],
)
def test_a_listed_application_with_a_hostile_identifier_is_malformed(
    serve: Callable[[Handler], FakeApi], field: str, value: str
) -> None:
    fake = serve(lambda ex: ex.send(200, {"data": [APP | {field: value}], "count": 1}))
    with client_for(fake) as client, pytest.raises(ApiResponseError, match=f"{field}: not an id"):
        client.list_applications()


def test_names_and_urls_may_hold_anything_the_api_allows(
    serve: Callable[[Handler], FakeApi],
) -> None:
    hostile = APP | {"name": "Evil\x1b[31m\nRED \u202e", "answer_url": "https://e.com/\x07"}
    fake = serve(lambda ex: ex.send(200, {"data": [hostile], "count": 1}))
    with client_for(fake) as client:
        assert [app.name for app in client.list_applications()] == [hostile["name"]]


def created(**changes: Any) -> dict[str, Any]:
    return APP | {"api_key": ISSUED_KEY} | changes


@pytest.mark.parametrize(
    ("answer", "app_id"),
    [
        (created(id=12345), None),
        (created(id="app_x\n::error::pwned\x1b]0;T\x07"), None),
        (created(customer_id=5), APP["id"]),
        (created(created_at="2026 05 29"), APP["id"]),
    ],
)
def test_a_malformed_create_answer_hands_over_the_issued_key(
    serve: Callable[[Handler], FakeApi], answer: dict[str, Any], app_id: str | None
) -> None:
    fake = serve(lambda ex: ex.send(201, answer))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.create_application(create_request())
    error = caught.value
    assert error.issued_key is not None
    assert error.issued_key.get_secret_value() == ISSUED_KEY
    assert error.app_id == app_id
    assert_no_secret(str(error), ISSUED_KEY, HARD_SECRET, API_KEY)
    assert ISSUED_KEY not in repr(error.issued_key)


@pytest.mark.parametrize("tail", ["garbage", "}", ' {"more": 1}', "\x00\xff"])
def test_a_create_answer_followed_by_garbage_still_hands_over_its_key(
    serve: Callable[[Handler], FakeApi], tail: str
) -> None:
    body = json.dumps(created()).encode() + tail.encode("latin-1")
    fake = serve(lambda ex: ex.send(201, body))
    with client_for(fake) as client, pytest.raises(ApiResponseError) as caught:
        client.create_application(create_request())
    error = caught.value
    assert "one JSON value followed by" in str(error)
    assert error.issued_key is not None
    assert error.issued_key.get_secret_value() == ISSUED_KEY
    assert error.app_id == APP["id"]
    assert_no_secret(str(error), ISSUED_KEY, HARD_SECRET, API_KEY)


def test_a_create_answer_without_a_key_hands_over_nothing(
    serve: Callable[[Handler], FakeApi],
) -> None:
    fake = serve(lambda ex: ex.send(201, APP | {"id": 5}))
    with client_for(fake) as client, pytest.raises(ApiResponseError, match="no api_key") as caught:
        client.create_application(create_request())
    assert (caught.value.issued_key, caught.value.app_id) == (None, None)


# --- 9. credentials in api_url ---------------------------------------------------------


@pytest.mark.parametrize("userinfo", ["user:hunter2secret@", "user@", ":hunter2secret@"])
def test_an_api_url_with_credentials_is_refused_before_any_request(
    serve: Callable[[Handler], FakeApi], userinfo: str
) -> None:
    fake = serve(lambda ex: ex.send(200, {"data": [], "count": 0}))
    url = fake.url.replace("http://", f"http://{userinfo}")
    with pytest.raises(UnsafeApiUrlError, match="user name or password") as caught:
        MiniVoiceClient(url, API_KEY)
    assert "hunter2secret" not in str(caught.value)
    assert fake.requests == []


def test_an_invalid_api_url_is_shown_without_its_credentials() -> None:
    with pytest.raises(UnsafeApiUrlError, match="not a valid URL") as caught:
        MiniVoiceClient("https://user:hunter2secret@[::zz]/", API_KEY)
    assert "hunter2secret" not in str(caught.value)
