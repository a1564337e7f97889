"""The list answer is read straight from its bytes into models (``bodies.read_list``),
over real HTTP on a loopback port: the same applications as the JSON-then-check path,
and for every body that path refuses, the same error in the same words.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mvsync.api import bodies
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.api.redact import Redactor
from mvsync.api.responses import Call, Reply
from mvsync.errors import ApiResponseError

API_KEY = "mvtest_BEARER_CANARY_list_bytes"


class _Server:
    """Answers every GET with ``self.body`` (200, JSON content type)."""

    def __init__(self) -> None:
        self.body = b""
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, *args: Any) -> None:
                pass  # quiet: the test output shows failures only

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.close()


def _listed(server: _Server, body: bytes) -> tuple[str, Any]:
    server.body = body
    client = MiniVoiceClient(server.url, API_KEY, retry=RetryPolicy(deadline=5, max_attempts=1))
    try:
        with client:
            apps = client.list_applications()
    except ApiResponseError as error:
        return ("error", str(error).replace(f"{server.url}/v1/applications", "URL"))
    return ("apps", [(app.model_dump(), app.model_fields_set) for app in apps])


def _as_before(body: bytes) -> tuple[str, Any]:
    """What the list gave before it was read from bytes: JSON first, then ``parse_list``."""
    url = httpx.URL("http://127.0.0.1:1/v1/applications")
    call = Call("GET", url, str(url), Redactor(API_KEY), status=200)
    try:
        apps = bodies.parse_list(bodies.json_body(call, Reply(200, httpx.Headers(), body)), call)
    except ApiResponseError as error:
        return ("error", str(error).replace(str(url), "URL"))
    return ("apps", [(app.model_dump(), app.model_fields_set) for app in apps])


def _app(index: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"app_{index}",
        "customer_id": "cus_1",
        "name": f"App {index}",
        "answer_url": f"https://example.com/{index}",
        "created_at": "2026-01-01T00:00:00Z",
        **fields,
    }


def _body(*apps: dict[str, Any], count: int | None = None, extra: str = "") -> bytes:
    data = ", ".join(json.dumps(app) for app in apps)
    number = len(apps) if count is None else count
    return f'{{"data": [{data}], "count": {number}{extra}}}'.encode()


CLEAN = _body(_app(0), _app(1, webhook_url=None), _app(2, webhook_url="https://h/w", x=[1]))

# Bodies the bytes reader must not decide alone: refused by the JSON path, or read by it
# though pydantic-core's parser refuses them.
UNUSUAL = {
    "lone surrogate in a name": _body(_app(0, name="a\ud800")),
    "lone surrogate in an ignored field": _body(_app(0), extra=', "x": "\\udfff"'),
    "surrogate pair": _body(_app(0, name="\U0001f600")),
    "BOM": b"\xef\xbb\xbf" + CLEAN,
    "UTF-16": CLEAN.decode().encode("utf-16"),
    "not UTF-8": _body(_app(0)).replace(b"App 0", b"App \xff"),
    "an integer of 4301 digits": _body(_app(0), extra=', "x": ' + "1" * 4301),
    "a float of 4301 digits": _body(_app(0), extra=', "x": ' + "1" * 4301 + ".5"),
    "nested 300 deep": _body(_app(0), extra=', "x": ' + "[" * 300 + "]" * 300),
    "nested 5000 deep": _body(_app(0), extra=', "x": ' + "[" * 5000 + "]" * 5000),
    "NaN": _body(_app(0), extra=', "x": NaN'),
    "count too high": _body(_app(0), count=2),
    "count a bool": _body(_app(0)).replace(b'"count": 1', b'"count": true'),
    "count a float": _body(_app(0)).replace(b'"count": 1', b'"count": 1.0'),
    "count twice": _body(_app(0), extra=', "count": 2'),
    "the same id twice": _body(_app(0), _app(0)),
    "an id with a space": _body(_app(0, id="a b")),
    "an empty customer_id": _body(_app(0, customer_id="")),
    "a control character in created_at": _body(_app(0, created_at="2026\u0085")),
    "a number for a name": _body(_app(0, name=7)),
    "an item that is no object": b'{"data": [1], "count": 1}',
    "data not a list": b'{"data": {}, "count": 0}',
    "no count": b'{"data": []}',
    "a list, not an object": b"[]",
    "garbage after the object": CLEAN + b" x",
    "not JSON": b"{'data': [], 'count': 0}",
    "empty": b"",
}


def test_a_clean_list_is_read_straight_from_its_bytes(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _as_before(CLEAN)

    def no_json_tree(call: Call, reply: Reply) -> Any:
        raise AssertionError("the whole body was parsed into Python objects")

    monkeypatch.setattr(bodies, "json_body", no_json_tree)
    assert _listed(server, CLEAN) == before
    assert before[0] == "apps" and len(before[1]) == 3


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_an_unusual_list_body_gives_what_it_gave_before(server: _Server, name: str) -> None:
    body = UNUSUAL[name]
    outcome = _listed(server, body)
    assert outcome == _as_before(body)
    assert API_KEY not in str(outcome)


def test_a_lower_integer_limit_of_python_is_kept(server: _Server) -> None:
    """``PYTHONINTMAXSTRDIGITS=640``: json.loads refuses integers that pydantic-core reads."""
    body = _body(_app(0), extra=', "x": ' + "1" * 1000)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        outcome = _listed(server, body)
        assert outcome == _as_before(body)
    finally:
        sys.set_int_max_str_digits(limit)
    assert outcome[0] == "error" and "a number too long to read" in outcome[1]
