"""The ``--format json`` plan: one document, ``format_version`` 1 (docs/plan-format.md)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from mvsync.escape import UNSAFE
from mvsync.planner import Plan


def plan_json(plan: Plan) -> dict[str, object]:
    """The ``--format json`` document (SPEC section 4); ``warnings`` only where there are."""
    environments: list[dict[str, Any]] = []
    for env in plan.environments:
        document: dict[str, Any] = {"name": env.name, "summary": env.summary}
        if env.warnings:
            document["warnings"] = list(env.warnings)
        if env.key_sink is not None:
            document["key_sink"] = env.key_sink
            document["undelivered"] = [{"name": n, "id": i} for n, i in env.undelivered]
        document["changes"] = [change.to_json() for change in env.changes]
        environments.append(document)
    return {"format_version": 1, "environments": environments}


# JSON escapes C0 itself; the rest of the unsafe set it would write raw, though a
# terminal may act on them: they are written as \u escapes (the same values).
_JSON_UNSAFE = UNSAFE


def render_json(plan: Plan, file: TextIO) -> None:
    """One JSON document, one change per line: readable, diffable, and written by the
    C encoder (``indent=`` would fall back to the pure-Python one, ~10x slower).

    Each environment's changes are encoded a few thousand at a time, as a list, and then
    put one per line: between two changes the encoder writes ``}, {"action": `` and nowhere else (in
    a string every ``"`` is escaped, and no object inside a change has an ``action`` key).
    """
    json_encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per dumps()

    def encode(value: object) -> str:
        text = json_encode(value)
        if text.isascii() and "\x7f" not in text:  # nothing unsafe (C0 is JSON-escaped)
            return text
        # The same value, written with JSON escapes.
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

    document = plan_json(plan)
    environments = document.pop("environments")
    assert isinstance(environments, list)
    file.write(encode(document)[:-1] + ', "environments": [')
    for index, env in enumerate(environments):
        changes = env.pop("changes")
        file.write(("," if index else "") + f"\n  {encode(env)[:-1]}, " + '"changes": [')
        # The text of a large plan is never held whole (nor twice, once with the line
        # breaks put in): chunks are written one after the other, joined as changes are.
        for start in range(0, len(changes), _CHANGES_PER_WRITE):
            chunk = changes[start : start + _CHANGES_PER_WRITE]
            listed = encode(chunk)[1:-1].replace(_BETWEEN, _BETWEEN_LINES)
            file.write(("," if start else "") + f"\n    {listed}")
        file.write("\n  ]}" if changes else "]}")
    file.write("\n]}\n" if environments else "]}\n")


_BETWEEN = '}, {"action": '
_BETWEEN_LINES = '},\n    {"action": '
_CHANGES_PER_WRITE = 2000
