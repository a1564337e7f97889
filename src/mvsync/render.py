"""Plan renderers: one function ``(plan, file) -> None`` per format, in ``RENDERERS``.

    text      for people at a terminal: SPEC markers ``+`` create, ``~`` drift,
              ``!`` ambiguous, ``?`` unmanaged; unchanged applications are only counted;
              colour only on a terminal and never with ``NO_COLOR``; a summary line last
    json      one document, ``format_version`` 1 (docs/plan-format.md)
    markdown  a pull-request comment: one ``<details>`` block per environment, always
              under GitHub's 65,535-character limit

Names and URLs come from the API and the manifest, so control characters are escaped
before they reach a terminal, and Markdown puts them inside code fences.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TextIO

from mvsync.escape import UNSAFE, escape
from mvsync.planner import RESOLVE_DRIFT, Action, Change, EnvironmentPlan, Plan

MARKERS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.DRIFT: "~",
    Action.AMBIGUOUS: "!",
    Action.UNMANAGED: "?",
    Action.UNCHANGED: " ",
}

_COLORS: dict[Action, str] = {
    Action.CREATE: "\x1b[32m",  # green
    Action.DRIFT: "\x1b[33m",  # yellow
    Action.AMBIGUOUS: "\x1b[31m",  # red
    Action.UNMANAGED: "\x1b[2m",  # dim
    Action.UNCHANGED: "",
}
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"

# GitHub refuses a comment longer than 65,536 characters; keep a margin below it.
MARKDOWN_LIMIT = 65_535
_MARKDOWN_BUDGET = MARKDOWN_LIMIT - 535


def _clean(value: str | None) -> str:
    return "(unset)" if value is None else escape(value)


def _quoted(value: str | None) -> str:
    return "(unset)" if value is None else f'"{_clean(value)}"'


def summary_text(summary: dict[str, int]) -> str:
    return (
        f"{summary['create']} to create, {summary['drift']} drifted, "
        f"{summary['ambiguous']} ambiguous, {summary['unchanged']} unchanged, "
        f"{summary['unmanaged']} unmanaged"
    )


def change_lines(change: Change) -> list[str]:
    """The plain lines of one change: a marked headline, then indented details."""
    marker = MARKERS[change.action]
    name = _quoted(change.name)
    if change.action is Action.CREATE:
        lines = [f"{marker} create {name}"]
        if change.desired is not None:
            lines.append(f"    answer_url:  {_clean(change.desired.answer_url)}")
            if change.desired.webhook_url:
                lines.append(f"    webhook_url: {_clean(change.desired.webhook_url)}")
        if change.rename_of:
            ids = ", ".join(escape(i) for i in change.rename_of)
            lines.append(
                f"    hint: likely a rename of unmanaged {ids} (same answer_url); the API "
                "cannot rename, so apply would make a second application"
            )
        return lines
    if change.action is Action.DRIFT:
        lines = [f"{marker} drift {name} ({_clean(change.id)})"]
        lines.extend(
            f"    {d.field}: remote {_quoted(d.remote)}, manifest {_quoted(d.desired)}"
            for d in change.drift
        )
        lines.append(f"    resolve: {RESOLVE_DRIFT}")
        return lines
    if change.action is Action.AMBIGUOUS:
        return [
            f"{marker} ambiguous {name}: {len(change.ids)} applications have this name "
            f"({', '.join(escape(i) for i in change.ids)}); apply will not touch it"
        ]
    if change.action is Action.UNMANAGED:
        return [f"{marker} unmanaged {name} ({_clean(change.id)})"]
    return [f"{marker} unchanged {name} ({_clean(change.id)})"]


def _plan_summary_line(plan: Plan) -> str:
    count = len(plan.environments)
    where = f"{count} environment" + ("" if count == 1 else "s")
    if not plan.has_changes:
        return f"No changes in {where}: {summary_text(plan.summary)}."
    return f"Plan for {where}: {summary_text(plan.summary)}."


def render_text(plan: Plan, file: TextIO, color: bool = False) -> None:
    """The plan for people; unchanged applications are counted, not listed."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color and code else text

    for env in plan.environments:
        file.write(paint(f"Environment {_quoted(env.name)} ({_clean(env.api_url)})", _BOLD))
        file.write("\n")
        listed = [c for c in env.changes if c.action is not Action.UNCHANGED]
        if not listed and not env.changes:
            file.write("  no applications in the manifest or the account\n")
        for change in listed:
            head, *details = change_lines(change)
            file.write(f"  {paint(head, _COLORS[change.action])}\n")
            for line in details:
                file.write(f"  {line}\n")
        file.write(f"  {_clean(env.name)}: {summary_text(env.summary)}\n\n")
    file.write(paint(_plan_summary_line(plan), _BOLD))
    file.write("\n")


def use_color(file: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())


def render_text_auto(plan: Plan, file: TextIO) -> None:
    render_text(plan, file, color=use_color(file))


def plan_json(plan: Plan) -> dict[str, object]:
    """The ``--format json`` document (SPEC section 4)."""
    return {
        "format_version": 1,
        "environments": [
            {
                "name": env.name,
                "summary": env.summary,
                "changes": [change.to_json() for change in env.changes],
            }
            for env in plan.environments
        ],
    }


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


def _fence_for(lines: list[str]) -> str:
    # A fence longer than any run of backticks inside, so a name cannot close it.
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Markdown: what is listed first when space runs out. Unchanged applications are
# listed only when every other line fits; otherwise they are counted.
_TIERS: tuple[tuple[Action, ...], ...] = (
    (Action.AMBIGUOUS, Action.DRIFT),
    (Action.CREATE,),
    (Action.UNMANAGED,),
    (Action.UNCHANGED,),
)
_NOUN = {
    Action.CREATE: "creates",
    Action.DRIFT: "drifted applications",
    Action.AMBIGUOUS: "ambiguous names",
    Action.UNMANAGED: "unmanaged applications",
    Action.UNCHANGED: "unchanged",
}


def render_markdown(plan: Plan, file: TextIO, limit: int = _MARKDOWN_BUDGET) -> None:
    """A pull-request comment, always shorter than ``limit`` characters."""
    header = f"### mvsync plan\n\n**{_html(_plan_summary_line(plan))}**\n\n"
    # What each environment always shows, and a generous reserve for its
    # "... and N more" notes, are paid for before any change is listed.
    reserve_per_env = 4 * 80
    used = len(header)
    for env in plan.environments:
        used += len(_env_open(env)) + len(_ENV_CLOSE) + 2 * 12 + reserve_per_env

    chosen: dict[str, dict[Action, list[list[str]]]] = {env.name: {} for env in plan.environments}
    for tier in _TIERS:
        tier_changes = [
            (env, change)
            for env in plan.environments
            for change in env.changes
            if change.action in tier
        ]
        if tier == (Action.UNCHANGED,):
            cost = sum(sum(len(line) + 1 for line in change_lines(c)) for _, c in tier_changes)
            if used + cost > limit:
                continue
        for env, change in tier_changes:
            lines = change_lines(change)
            cost = sum(len(line) + 1 for line in lines)
            if used + cost > limit:
                break
            used += cost
            chosen[env.name].setdefault(change.action, []).append(lines)

    file.write(header)
    for env in plan.environments:
        file.write(_env_open(env))
        body: list[str] = []
        notes: list[str] = []
        for action in (Action.CREATE, Action.DRIFT, Action.AMBIGUOUS, Action.UNMANAGED):
            shown = chosen[env.name].get(action, [])
            for lines in shown:
                body.extend(lines)
            missing = env.summary[action.value] - len(shown)
            if missing:
                notes.append(f"… and {missing} more {_NOUN[action]} not listed (see the text plan)")
        unchanged = env.summary["unchanged"]
        shown_unchanged = chosen[env.name].get(Action.UNCHANGED, [])
        for lines in shown_unchanged:
            body.extend(lines)
        if unchanged and not shown_unchanged:
            notes.append(f"{unchanged} unchanged (counted, not listed)")
        if body:
            fence = _fence_for(body)
            file.write(f"{fence}diff\n")
            file.write("".join(f"{line}\n" for line in body))
            file.write(f"{fence}\n")
        elif not notes:
            file.write("No applications in the manifest or the account.\n")
        if notes:
            file.write("\n" + "".join(f"{note}\n" for note in notes))
        file.write(_ENV_CLOSE)


_ENV_CLOSE = "\n</details>\n\n"


def _env_open(env: EnvironmentPlan) -> str:
    state = "changes" if env.has_changes else "no changes"
    return (
        f"<details><summary><b>{_html(_clean(env.name))}</b> ({state}): "
        f"{summary_text(env.summary)}</summary>\n\n"
    )


RENDERERS: dict[str, Callable[[Plan, TextIO], None]] = {
    "text": render_text_auto,
    "json": render_json,
    "markdown": render_markdown,
}
