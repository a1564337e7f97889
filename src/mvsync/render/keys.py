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
from mvsync.planner import KEY_MISSING, KEY_UNDELIVERED, Change, EnvironmentPlan

KEY_ADVICE = (
    "the key ledger holds no key for these (created outside mvsync, entry lost, or key "
    "never captured); issue a new key in MiniVoice if one is needed"
)
MARKDOWN_KEYS_LISTED = 10

_STATE = {"missing": "missing", "not_captured": "not captured"}


def key_missing_text(summary: Mapping[str, int]) -> str:
    """``, N key missing`` (and ``, N key undelivered``) for a summary line; nothing where
    no ledger was read, nor where every key is held (``0 key missing`` says nothing)."""
    text = f", {summary[KEY_MISSING]} key missing" if summary.get(KEY_MISSING) else ""
    if summary.get(KEY_UNDELIVERED):
        text += f", {summary[KEY_UNDELIVERED]} key undelivered"
    return text


def undelivered_advice(environment: str) -> str:
    return (
        "stored, not yet handed to the key sink; mvsync keys deliver --env "
        f"{escape(environment)} hands them on"
    )


def _undelivered_line(name: str, app_id: str) -> str:
    return f'undelivered   "{escape(name)}" ({escape(app_id)})'


def sink_lines(env: EnvironmentPlan) -> list[str]:
    """The text plan's lines on the key sink: where new keys go (a reviewer sees a changed
    ``key_sink``), and each stored key it has not taken."""
    if env.key_sink is None:
        return []
    lines = [f"key sink: new keys go to {escape(env.key_sink)}"]
    if env.undelivered:
        lines.append(f"key not delivered: {undelivered_advice(env.name)}")
        lines.extend(f"    {_undelivered_line(n, i)}" for n, i in env.undelivered)
    return lines


def sink_markdown(env: EnvironmentPlan) -> str:
    """The Markdown plan's part on the key sink (bounded like ``key_markdown``)."""
    if env.key_sink is None or not (env.undelivered or env.creates):
        return ""
    program = escape(env.key_sink)
    ticks = max((len(run) for run in re.findall(r"`+", program)), default=0)
    quote = "`" * (ticks + 1)
    text = f"**Key sink**: new keys go to {quote} {program} {quote}\n"
    if env.undelivered:
        listed = [_undelivered_line(n, i) for n, i in env.undelivered[:MARKDOWN_KEYS_LISTED]]
        ticks = max((len(run) for line in listed for run in re.findall(r"`+", line)), default=0)
        fence = "`" * max(3, ticks + 1)
        text += f"\n**Key not delivered** ({len(env.undelivered)}):\n\n"
        text += f"{fence}\n" + "".join(f"{line}\n" for line in listed) + f"{fence}\n"
        if len(env.undelivered) > len(listed):
            more = len(env.undelivered) - len(listed)
            text += f"\n… and {more} more (the text plan lists them all)\n"
    return text


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
