"""The pieces of the Markdown comment: escaping, fences, and the lines of each change.

Symbols are the text plan's (``render.text.MARKERS``): ``+`` create, ``~`` drift, ``!``
ambiguous, ``?`` unmanaged; never ``-``, which every reviewer reads as a delete. In a
``diff`` block GitHub colours a line by its first character: ``+`` green, ``!`` orange,
``~`` and ``?`` plain.

Two kinds of text, escaped two ways:

- inside a fence (the lines of a change): control characters escaped (``escape``), and
  a fence longer than any run of backticks in it, so a name cannot close it; GitHub
  shows what is inside a fence as text, ``<`` and all;
- outside a fence (rename hints, warnings, environment names): ``<``, ``>``, ``&`` as
  entities and every Markdown punctuation character backslash-escaped (``inline``), so
  that ``</details><img src=x>`` is shown, never rendered. These lines are prose, so
  that GitHub wraps them instead of hiding their end behind a horizontal scroll.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mvsync.escape import escape
from mvsync.planner import Action, Change
from mvsync.render.text import MARKERS, clean, quoted

_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")


def inline(text: str) -> str:
    """A value shown outside a fence: escaped, then inert as HTML and as Markdown.

    Entities first (``&`` before the others), then the backslashes: ``&lt;`` holds no
    Markdown punctuation, and a backslash before ``&`` would show the entity as text."""
    shown = escape(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCTUATION.sub(r"\\\1", shown)


def inline_quoted(value: str | None) -> str:
    return "(unset)" if value is None else f'"{inline(value)}"'


def fence_for(lines: Sequence[str]) -> str:
    # A fence longer than any run of backticks inside, so a name cannot close it.
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def block(lines: Sequence[str], language: str = "") -> str:
    fence = fence_for(lines)
    return f"{fence}{language}\n" + "".join(f"{line}\n" for line in lines) + f"{fence}\n"


@dataclass(frozen=True)
class Entry:
    """One change as listed: its lines in the fenced block, and the prose notes under
    the block that belong to it (a rename hint), already escaped."""

    lines: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def cost(self) -> int:
        return sum(len(line) + 1 for line in (*self.lines, *self.notes))


def drift_entry(change: Change) -> Entry:
    marker = MARKERS[Action.DRIFT]
    lines = [f"{marker} drift {quoted(change.name)} ({clean(change.id)})"]
    for d in change.drift:
        # remote and manifest on lines of their own: a URL each, short enough to read.
        lines.append(f"{marker}     {d.field}, remote:   {quoted(d.remote)}")
        lines.append(f"{marker}     {d.field}, manifest: {quoted(d.desired)}")
    return Entry(tuple(lines))


def ambiguous_entry(change: Change) -> Entry:
    ids = ", ".join(escape(i) for i in change.ids)
    marker = MARKERS[Action.AMBIGUOUS]
    return Entry(
        (f"{marker} ambiguous {quoted(change.name)}: {len(change.ids)} applications ({ids})",)
    )


def create_entry(change: Change, names: Mapping[str, str]) -> Entry:
    marker = MARKERS[Action.CREATE]
    lines = [f"{marker} create {quoted(change.name)}"]
    if change.desired is not None:
        lines.append(f"{marker}     answer_url:  {clean(change.desired.answer_url)}")
        if change.desired.webhook_url:
            lines.append(f"{marker}     webhook_url: {clean(change.desired.webhook_url)}")
    notes: tuple[str, ...] = ()
    if change.rename_of:
        shown = ", ".join(
            f"{inline_quoted(names[i])} ({inline(i)})" if i in names else inline(i)
            for i in change.rename_of
        )
        notes = (f"- {inline_quoted(change.name)} is likely a rename of unmanaged {shown}",)
        lines.append(f"{marker}     likely a rename: see below")
    return Entry(tuple(lines), notes)


def unmanaged_entry(change: Change) -> Entry:
    return Entry((f"{MARKERS[Action.UNMANAGED]} {quoted(change.name)} ({clean(change.id)})",))


RENAME_NOTE = (
    "**Likely renames** (same answer\\_url as an unmanaged application; the API cannot "
    "rename, so apply would make a second application beside it):"
)


def listed(entries: Sequence[Entry], language: str) -> str:
    """The fenced block of ``entries``, then their notes as a list (text that wraps)."""
    if not entries:
        return ""
    text = block([line for entry in entries for line in entry.lines], language)
    notes = [note for entry in entries for note in entry.notes]
    if notes:
        text += f"\n{RENAME_NOTE}\n\n" + "".join(f"{note}\n" for note in notes)
    return text
