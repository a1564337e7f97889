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
        document["changes"] = [change.to_json() for change in env.changes]
        environments.append(document)
    return {"format_version": 1, "environments": environments}


# JSON escapes C0 itself; the rest of the unsafe set it would write raw, though a
# terminal may act on them: they are written as \u escapes (the same values).
_JSON_UNSAFE = UNSAFE


def render_json(plan: Plan, file: TextIO) -> None:
    """One JSON document, one change per line: readable, diffable, and written by the
    C encoder (``indent=`` would fall back to the pure-Python one, ~10x slower)."""
    json_encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per dumps()

    def encode(value: object) -> str:
        # The same value, written with JSON escapes.
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_encode(value))

    document = plan_json(plan)
    environments = document.pop("environments")
    assert isinstance(environments, list)
    head = encode(document)[:-1]
    file.write(f'{head}, "environments": [')
    for index, env in enumerate(environments):
        changes = env.pop("changes")
        env_head = encode(env)[:-1]
        file.write(("," if index else "") + f'\n  {env_head}, "changes": [')
        file.write(",".join(f"\n    {encode(change)}" for change in changes))
        file.write("\n  ]}" if changes else "]}")
    file.write("\n]}\n" if environments else "]}\n")
