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

    Each environment's changes are encoded in one call, as a list, and then put one per
    line: between two changes the encoder writes ``}, {"action": `` and nowhere else (in
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
    parts = [encode(document)[:-1], ', "environments": [']
    for index, env in enumerate(environments):
        changes = env.pop("changes")
        parts.append(("," if index else "") + f"\n  {encode(env)[:-1]}, " + '"changes": [')
        if changes:
            listed = encode(changes)[1:-1].replace(_BETWEEN, _BETWEEN_LINES)
            parts.append(f"\n    {listed}\n  ]}}")
        else:
            parts.append("]}")
    parts.append("\n]}\n" if environments else "]}\n")
    file.write("".join(parts))


_BETWEEN = '}, {"action": '
_BETWEEN_LINES = '},\n    {"action": '
