"""Key status in plans (SPEC section 4): the applications whose key the ledger does not hold.

Only where a ledger was read (``EnvironmentPlan.keys_known``). A key not held is not a
change, so it is said after the changes, as information. The text plan names every one;
the Markdown plan names the first ``MARKDOWN_KEYS_LISTED`` and counts the rest, so that
the comment stays within its size budget however many there are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mvsync.escape import escape
from mvsync.planner import KEY_MISSING, Change, EnvironmentPlan

KEY_ADVICE = (
    "the key ledger holds no key for these (created outside mvsync, entry lost, or key "
    "never captured); issue a new key in MiniVoice if one is needed"
)
MARKDOWN_KEYS_LISTED = 10

_STATE = {"missing": "missing", "not_captured": "not captured"}


def key_missing_text(summary: Mapping[str, int]) -> str:
    """``, N key missing`` for a summary line; nothing where no ledger was read, nor
    where every key is held (``0 key missing`` on every line says nothing)."""
    return f", {summary[KEY_MISSING]} key missing" if summary.get(KEY_MISSING) else ""


def _line(change: Change) -> str:
    state = _STATE.get(change.key or "", "missing")
    return f'{state:<12}  "{escape(change.name)}" ({escape(change.id or "")})'


def key_lines(env: EnvironmentPlan) -> list[str]:
    """The text plan's lines naming each application whose key is not held."""
    not_held = env.keys_not_held
    if not not_held:
        return []
    return [f"key not held: {KEY_ADVICE}", *(f"    {_line(c)}" for c in not_held)]


def key_markdown(env: EnvironmentPlan) -> str:
    """The Markdown plan's part naming the applications whose key is not held (bounded)."""
    not_held = env.keys_not_held
    if not not_held:
        return ""
    listed = [_line(c) for c in not_held[:MARKDOWN_KEYS_LISTED]]
    # A fence longer than any run of backticks inside, so a name cannot close it.
    ticks = max((len(run) for line in listed for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, ticks + 1)
    # The advice is said once per comment, under "How to resolve" (render.markdown).
    text = f"**Key not held** ({len(not_held)}):\n\n"
    text += f"{fence}\n" + "".join(f"{line}\n" for line in listed) + f"{fence}\n"
    if len(not_held) > len(listed):
        text += f"\n… and {len(not_held) - len(listed)} more (the text plan lists them all)\n"
    return text
