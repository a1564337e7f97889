"""The bodies of the two answers mvsync reads: the list and the create, checked field by
field (ids that a terminal or a file could misread, lone surrogates, a reused id)."""

from __future__ import annotations

import re
import sys
from typing import Any

import pydantic

from mvsync.api.exchange import Reply
from mvsync.api.responses import MAX_ID_CHARS, Call, _validation_summary, json_body, malformed
from mvsync.model import CreatedApp, RemoteApp

_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("id", "customer_id", "name", "answer_url", "webhook_url", "created_at")

# The fields that identify an application and are shown, stored and compared verbatim.
_IDENTIFIERS = ("id", "customer_id", "created_at")


def is_identifier(value: object) -> bool:
    """True for a string an id may be: 1 to 256 characters, no space, control or format
    character (``str.isprintable`` refuses C0, C1, DEL, bidi controls, line separators).

    Every ``str.isspace`` character but the ASCII space is also one that ``isprintable``
    refuses (a control or a separator: checked over all of Unicode in the tests), so the
    space is the one left to look for: no loop over the characters in Python."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isprintable()
        and " " not in value
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
        # ASCII text holds no surrogate: the regex only for the rest.
        if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            return f"{name}: not valid Unicode (a lone surrogate escape)"
    return None


def _status(call: Call) -> int:
    return call.status or 200


class _Listing(pydantic.BaseModel):
    """The list's body as ``parse_list`` accepts it: "count" a JSON integer, not a bool."""

    data: list[RemoteApp]
    count: pydantic.StrictInt


_LISTING = pydantic.TypeAdapter(_Listing)
# The longest integer pydantic-core's JSON parser reads (Python's own default limit).
_JSON_INT_DIGITS = 4300


def read_list(call: Call, reply: Reply) -> list[RemoteApp]:
    """The list answer's applications, read straight from its bytes into models when the
    whole body is clean: no tree of Python dicts of the whole body (the memory of a large
    list), one pass in pydantic-core. Anything else, hostile or merely unusual (a BOM,
    UTF-16, a lone surrogate, nesting pydantic-core refuses), is read again as before
    (``json_body``, then ``parse_list``), which decides and words the error."""
    if not reply.too_large:
        apps = _straight_from_bytes(reply.content)
        if apps is not None:
            return apps
    return parse_list(json_body(call, reply), call)


def _straight_from_bytes(content: bytes) -> list[RemoteApp] | None:
    """The applications when ``parse_list(json.loads(content))`` would return them, the
    same ones; ``None`` when it might refuse them (or might not)."""
    limit = sys.get_int_max_str_digits()
    if 0 < limit < _JSON_INT_DIGITS:
        return None  # json.loads would refuse integers that pydantic-core reads
    try:
        listing = _LISTING.validate_json(content)
    except pydantic.ValidationError:
        return None
    apps = listing.data
    if listing.count != len(apps):
        return None
    # No surrogate check: pydantic-core refuses a lone surrogate escape, and the text it
    # makes is UTF-8 through and through.
    columns = {name: [getattr(app, name) for app in apps] for name in _IDENTIFIERS}
    if not _identifiers_clean(columns) or len(set(columns["id"])) != len(apps):
        return None
    return apps


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
    apps = _clean_list(data)
    if apps is not None:
        return apps
    return _checked_one_by_one(data, call, status)


# The whole list validated in one call (pydantic's loop, not ours): the same models as
# RemoteApp.model_validate of each item, but its errors are not ours; on any, the list is
# checked again one by one (``_checked_one_by_one``) for the first problem's own words.
_REMOTE_APPS = pydantic.TypeAdapter(list[RemoteApp])


def _clean_list(data: list[Any]) -> list[RemoteApp] | None:
    """The list's applications when every check passes, found with a few passes over
    all of them at once; ``None`` when any check would fail (or might)."""
    try:
        apps = _REMOTE_APPS.validate_python(data)
    except pydantic.ValidationError:
        return None
    try:
        clean = _all_clean(data) and len({app.id for app in apps}) == len(apps)
    except (KeyError, TypeError):  # an item that is no dict: its own words, one by one
        return None
    return apps if clean else None


def _all_clean(data: list[Any]) -> bool:
    # Validated: the identifiers are strings, the other text fields strings or None
    # (anything else makes a join raise TypeError: then one by one). All are identifiers
    # when their concatenation is printable with no space and every length is in range.
    columns = {name: [item.get(name) for item in data] for name in _TEXT_FIELDS}
    if not _identifiers_clean(columns):
        return False
    texts = "".join("".join(filter(None, column)) for column in columns.values())
    return texts.isascii() or not _SURROGATE.search(texts)


def _identifiers_clean(columns: dict[str, list[Any]]) -> bool:
    for name in _IDENTIFIERS:
        values = columns[name]
        joined = "".join(values)
        if values and not (
            min(map(len, values)) > 0
            and max(map(len, values)) <= MAX_ID_CHARS
            and joined.isprintable()
            and " " not in joined
        ):
            return False
    return True


def _checked_one_by_one(data: list[Any], call: Call, status: int) -> list[RemoteApp]:
    """The list checked item by item: the first problem, in the order of the items."""
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
