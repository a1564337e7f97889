"""The plan's fast paths give what the slow, one-by-one paths give (issue 13).

Each fast path checks a whole batch at once and falls back to the careful path when
anything might be wrong; these tests hold the two to the same answers, errors included.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

from mvsync.api import bodies
from mvsync.api.redact import Redactor
from mvsync.api.responses import Call
from mvsync.errors import ApiResponseError


def _old_is_identifier(value: object) -> bool:
    """The definition before the fast path: no character for which str.isspace holds."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 256
        and value.isprintable()
        and not any(char.isspace() for char in value)
    )


def test_is_identifier_agrees_with_isspace_over_all_of_unicode() -> None:
    for code in range(sys.maxunicode + 1):
        text = f"a{chr(code)}b"
        assert bodies.is_identifier(text) == _old_is_identifier(text), hex(code)


def _call() -> Call:
    url = httpx.URL("http://127.0.0.1:1/v1/applications")
    return Call(method="GET", url=url, shown_url=str(url), secrets=Redactor("tok"))


def _app(index: int, **fields: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "id": f"app_{index}",
        "customer_id": "cus_1",
        "name": f"App {index}",
        "answer_url": f"https://example.com/{index}",
        "webhook_url": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    app.update(fields)
    return app


HOSTILE: list[dict[str, Any]] = [
    {"id": ""},
    {"id": "a b"},
    {"id": "a\u2028b"},
    {"id": "x" * 257},
    {"id": "x" * 256},
    {"customer_id": "c\td"},
    {"created_at": "2026\u200f"},
    {"name": "lone \ud800"},
    {"webhook_url": "https://h/\udfff"},
    {"name": "Zürich ☎"},
    {"id": 7},
    {"name": None},
    {"id": "app_0"},
]


@pytest.mark.parametrize("fields", HOSTILE, ids=repr)
@pytest.mark.parametrize("at", [0, 3])
def test_parse_list_fast_and_one_by_one_agree(fields: dict[str, Any], at: int) -> None:
    data = [_app(index) for index in range(5)]
    data[at] = _app(at, **fields)
    payload = {"data": data, "count": len(data)}

    def outcome(parse: Any) -> Any:
        try:
            return ("apps", parse())
        except ApiResponseError as error:
            return ("error", str(error))

    fast = outcome(lambda: bodies.parse_list(payload, _call()))
    slow = outcome(lambda: bodies._checked_one_by_one(data, _call(), 200))
    assert fast == slow


def test_parse_list_of_no_application() -> None:
    assert bodies.parse_list({"data": [], "count": 0}, _call()) == []
