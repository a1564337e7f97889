"""The text plan, for people at a terminal, and the escaping helpers every renderer uses.

SPEC markers ``+`` create, ``~`` drift, ``!`` ambiguous, ``?`` unmanaged; unchanged
applications are only counted; colour only on a terminal and never with ``NO_COLOR``;
a summary line last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from mvsync.escape import escape
from mvsync.planner import RESOLVE_DRIFT, Action, Change, EnvironmentPlan, Plan
from mvsync.render.keys import key_lines, key_missing_text, sink_lines

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
_WARNING_COLOR = "\x1b[33m"


def text_of(text: str) -> str:
    """Any text from the API or the manifest (an error message, say), safe to print."""
    return escape(text)


def name_of(name: str) -> str:
    """A name safe to print: quoted, control and bidi characters escaped (no terminal tricks)."""
    return f'"{text_of(name)}"'


def id_of(app_id: str) -> str:
    """An application id as the API gave it, safe to print."""
    return text_of(app_id)


def clean(value: str | None) -> str:
    return "(unset)" if value is None else escape(value)


def quoted(value: str | None) -> str:
    return "(unset)" if value is None else f'"{clean(value)}"'


def summary_text(summary: Mapping[str, int]) -> str:
    return (
        f"{summary['create']} to create, {summary['drift']} drifted, "
        f"{summary['ambiguous']} ambiguous, {summary['unchanged']} unchanged, "
        f"{summary['unmanaged']} unmanaged{key_missing_text(summary)}"
    )


def unmanaged_names(env: EnvironmentPlan) -> dict[str, str]:
    """id → name of the environment's unmanaged applications (for rename hints)."""
    return {c.id: c.name for c in env.changes if c.action is Action.UNMANAGED and c.id}


def rename_hint(change: Change, names: Mapping[str, str]) -> str:
    """The likely-rename hint of a create, naming each unmanaged application."""
    shown = ", ".join(
        f"{quoted(names[i])} ({escape(i)})" if i in names else escape(i) for i in change.rename_of
    )
    return (
        f"hint: likely a rename of unmanaged {shown}: same answer_url; the API cannot "
        "rename, so apply would make a second application"
    )


def change_lines(change: Change, names: Mapping[str, str] | None = None) -> list[str]:
    """The plain lines of one change: a marked headline, then indented details.

    ``names`` (id → name of the unmanaged applications) lets a rename hint name them.
    """
    marker = MARKERS[change.action]
    name = quoted(change.name)
    if change.action is Action.CREATE:
        return create_lines(change, names or {})
    if change.action is Action.DRIFT:
        lines = [f"{marker} drift {name} ({clean(change.id)})"]
        lines.extend(
            f"    {d.field}: remote {quoted(d.remote)}, manifest {quoted(d.desired)}"
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
        return [f"{marker} unmanaged {name} ({clean(change.id)})"]
    return [f"{marker} unchanged {name} ({clean(change.id)})"]


def plan_summary_line(plan: Plan) -> str:
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
        file.write(paint(f"Environment {quoted(env.name)} ({clean(env.api_url)})", _BOLD))
        file.write("\n")
        listed = [c for c in env.changes if c.action is not Action.UNCHANGED]
        if not listed and not env.changes:
            file.write("  no applications in the manifest or the account\n")
        names = unmanaged_names(env)
        for change in listed:
            head, *details = change_lines(change, names)
            file.write(f"  {paint(head, _COLORS[change.action])}\n")
            for line in details:
                file.write(f"  {line}\n")
        for line in key_lines(env):
            file.write(f"  {line}\n")
        for line in sink_lines(env):
            file.write(f"  {line}\n")
        for warning in env.warnings:
            file.write(f"  {paint('warning: ' + text_of(warning), _WARNING_COLOR)}\n")
        file.write(f"  {clean(env.name)}: {summary_text(env.summary)}\n\n")
    file.write(paint(plan_summary_line(plan), _BOLD))
    file.write("\n")


def use_color(file: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())


def render_text_auto(plan: Plan, file: TextIO) -> None:
    render_text(plan, file, color=use_color(file))


def create_lines(
    change: Change, names: Mapping[str, str], *, detail: str = "    ", hint: str = "    "
) -> list[str]:
    """A create and its fields; ``detail`` and ``hint`` start the lines under it (the
    Markdown comment starts them with diff markers so that GitHub colours them)."""
    lines = [f"{MARKERS[Action.CREATE]} create {quoted(change.name)}"]
    if change.desired is not None:
        lines.append(f"{detail}answer_url:  {clean(change.desired.answer_url)}")
        if change.desired.webhook_url:
            lines.append(f"{detail}webhook_url: {clean(change.desired.webhook_url)}")
    if change.rename_of:
        lines.append(f"{hint}{rename_hint(change, names)}")
    return lines
