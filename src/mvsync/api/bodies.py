"""The bodies of the two answers mvsync reads: the list and the create, checked field by
field (ids that a terminal or a file could misread, lone surrogates, a reused id)."""

from __future__ import annotations

import re
from typing import Any

import pydantic

from mvsync.api.responses import MAX_ID_CHARS, Call, _validation_summary, malformed
from mvsync.model import CreatedApp, RemoteApp

_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("id", "customer_id", "name", "answer_url", "webhook_url", "created_at")

# The fields that identify an application and are shown, stored and compared verbatim.
_IDENTIFIERS = ("id", "customer_id", "created_at")


def is_identifier(value: object) -> bool:
    """True for a string an id may be: 1 to 256 characters, no space, control or format
    character (``str.isprintable`` refuses C0, C1, DEL, bidi controls, line separators)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isprintable()
        and not any(char.isspace() for char in value)
    )


def _identifier_problem(item: dict[str, Any]) -> str | None:
    # The value is never quoted: it is what makes the answer hostile.
    for name in _IDENTIFIERS:
        value = item.get(name)
        if isinstance(value, str) and not is_identifier(value):
            return (
                f"{name}: not an identifier (empty, longer than {MAX_ID_CHARS} characters,"
                " or holding a space, control or format character)"
            )
    return None


def _text_problem(item: dict[str, Any]) -> str | None:
    """A string field holding a lone surrogate (JSON's ``"\\ud800"``): not Unicode text,
    so it can be neither printed, nor saved, nor written to a manifest or a journal."""
    for name in _TEXT_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and _SURROGATE.search(value):
            return f"{name}: not valid Unicode (a lone surrogate escape)"
    return None


def _status(call: Call) -> int:
    return call.status or 200


def parse_list(payload: Any, call: Call) -> list[RemoteApp]:
    status = _status(call)
    if not isinstance(payload, dict):
        raise malformed(call, status, f"expected an object, got {type(payload).__name__}")
    data = payload.get("data")
    count = payload.get("count")
    if not isinstance(data, list):
        raise malformed(call, status, '"data" is missing or not a list')
    if not isinstance(count, int) or isinstance(count, bool):
        raise malformed(call, status, '"count" is missing or not an integer')
    if count != len(data):
        raise malformed(
            call, status, f'"count" is {count} but "data" holds {len(data)} applications'
        )
    apps: list[RemoteApp] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        try:
            app = RemoteApp.model_validate(item)
        except pydantic.ValidationError as exc:
            raise malformed(call, status, f"data[{index}]: {_validation_summary(exc)}") from None
        problem = _identifier_problem(item) or _text_problem(item)
        if problem is not None:
            raise malformed(call, status, f"data[{index}].{problem}")
        if app.id in seen:
            # One id is one application: listed twice, which one is it?
            raise malformed(call, status, f"data[{index}].id: the id of data[{seen[app.id]}] again")
        seen[app.id] = index
        apps.append(app)
    return apps


def parse_created(payload: Any, call: Call) -> CreatedApp:
    status = _status(call)
    if not isinstance(payload, dict):
        raise malformed(call, status, f"expected an object, got {type(payload).__name__}")
    key = payload.get("api_key")
    if not isinstance(key, str) or not key:
        raise malformed(call, status, "no api_key in the create answer")
    # From here on the answer carries a key the API issued: whatever else is wrong
    # with it, the key goes with the error so that apply stores it rather than lose it.
    raw_id = payload.get("id")
    app_id = raw_id if is_identifier(raw_id) else None
    try:
        created = CreatedApp.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise malformed(
            call, status, _validation_summary(exc), issued_key=key, app_id=app_id
        ) from None
    problem = _identifier_problem(payload) or _text_problem(payload)
    if problem is not None:
        raise malformed(call, status, problem, issued_key=key, app_id=app_id)
    return created
