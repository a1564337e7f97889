"""The Markdown plan: one pull-request comment for every environment at once.

Layout, for a reviewer reading it on GitHub::

    ### mvsync plan
    <one line: how many environments have changes, what the markers mean>
    | environment | create | drift | ambiguous | unmanaged | unchanged | [key missing] |
    #### <env>                      only for an environment with something to say
    > [!WARNING] variables ...      what apply will need and is not set (if any)
    what blocks: ```diff  ! drift  - ambiguous   (orange and red in GitHub's diff colours)
    creates:     ```diff  + create  ! hint       (green; a likely rename in orange)
    unmanaged:   ``` ? name (id)                 (plain: information only)
    N unchanged (counted, not listed)

GitHub colours a ``diff`` block by the first character of each line (TextMate's diff
grammar): ``+`` green, ``-`` red, ``!`` orange; ``~`` and ``?`` stay plain. So drift is
written ``!`` here, ambiguous ``-`` (the text plan keeps the SPEC's ``~`` and ``!``).

Size: the document always stays under ``limit`` (GitHub refuses a comment over 65,536
characters). What every environment always shows (its table row, heading, warnings and
notes) is paid first; then the budget is shared tier by tier — what blocks, then
creates, then unmanaged — between the environments max-min fairly: an environment
that needs little gets all it needs, and the big one gets the rest, so one 5,000-app
environment can never crowd out the others. What does not fit is counted in an
"… and N more" line. Unchanged applications are always counted, never listed.

Every value from the API or the manifest is escaped: inside a fence longer than any
run of backticks in it, or, outside fences, with each Markdown punctuation character
backslash-escaped and ``<>&`` as entities.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TextIO

from mvsync.escape import escape
from mvsync.planner import Action, Change, EnvironmentPlan, Plan
from mvsync.render.keys import key_markdown
from mvsync.render.text import clean, create_lines, quoted, unmanaged_names

# GitHub refuses a comment longer than 65,536 characters; keep a margin below it for
# what a workflow adds around the document (a marker, a link to the run).
MARKDOWN_LIMIT = 65_535
_MARKDOWN_BUDGET = MARKDOWN_LIMIT - 535

# What each environment's fixed part may cost beyond its measured text: the
# "… and N more" notes and the fences whose length depends on what is listed.
_RESERVE_PER_ENV = 600

_RESOLVE = {
    Action.DRIFT: (
        "Drift: the MiniVoice API cannot update an application; change the manifest to "
        "match, or fix the application in the MiniVoice console."
    ),
    Action.AMBIGUOUS: (
        "Ambiguous: delete or rename all but one application of that name in MiniVoice."
    ),
}
_LEGEND = (
    "`+` apply creates it · `!` drift apply cannot fix · `-` ambiguous name apply will "
    "not touch · `?` unmanaged (not in the manifest, left alone)"
)

# More creates than this in one environment are folded in a <details> block.
_FOLD_CREATES = 20

_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")


def inline(text: str) -> str:
    """A value shown outside a fence: escaped, then inert as Markdown and HTML."""
    shown = escape(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCTUATION.sub(r"\\\1", shown)


def _fence_for(lines: Sequence[str]) -> str:
    # A fence longer than any run of backticks inside, so a name cannot close it.
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _block(lines: Sequence[str], language: str) -> str:
    fence = _fence_for(lines)
    return f"{fence}{language}\n" + "".join(f"{line}\n" for line in lines) + f"{fence}\n"


# -- the lines of one change, marked for GitHub's diff colours -------------------------


def _blocking_lines(change: Change) -> list[str]:
    if change.action is Action.DRIFT:
        lines = [f"! drift {quoted(change.name)} ({clean(change.id)})"]
        lines.extend(
            f"!     {d.field}: remote {quoted(d.remote)}, manifest {quoted(d.desired)}"
            for d in change.drift
        )
        return lines
    ids = ", ".join(escape(i) for i in change.ids)
    return [
        f"- ambiguous {quoted(change.name)}: {len(change.ids)} applications have this name "
        f"({ids}); apply will not touch it"
    ]


def _create_lines(change: Change, names: Mapping[str, str]) -> list[str]:
    return create_lines(change, names, detail="+     ", hint="!     ")


def _unmanaged_lines(change: Change) -> list[str]:
    return [f"? {quoted(change.name)} ({clean(change.id)})"]


# -- the shared budget ------------------------------------------------------------------

_TIERS: tuple[tuple[str, frozenset[Action]], ...] = (
    ("blocks", frozenset({Action.DRIFT, Action.AMBIGUOUS})),
    ("creates", frozenset({Action.CREATE})),
    ("unmanaged", frozenset({Action.UNMANAGED})),
)


def _entries(env: EnvironmentPlan, tier: str) -> list[list[str]]:
    if tier == "blocks":
        # Drift first, then ambiguous: the plan's own order within each.
        drift = [c for c in env.changes if c.action is Action.DRIFT]
        ambiguous = [c for c in env.changes if c.action is Action.AMBIGUOUS]
        return [_blocking_lines(c) for c in (*drift, *ambiguous)]
    if tier == "creates":
        names = unmanaged_names(env)
        return [_create_lines(c, names) for c in env.changes if c.action is Action.CREATE]
    return [_unmanaged_lines(c) for c in env.changes if c.action is Action.UNMANAGED]


def _cost(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def fair_shares(demands: Sequence[int], budget: int) -> list[int]:
    """Split ``budget`` max-min fairly: the smallest demands are met in full first, then
    what is left is split evenly between the others."""
    grants = [0] * len(demands)
    left = max(budget, 0)
    waiting = len(demands)
    for index in sorted(range(len(demands)), key=lambda i: demands[i]):
        grants[index] = min(demands[index], left // waiting)
        left -= grants[index]
        waiting -= 1
    return grants


def _choose(plan: Plan, budget: int) -> dict[tuple[int, str], list[list[str]]]:
    """The entries listed per (environment index, tier), within ``budget`` characters."""
    chosen: dict[tuple[int, str], list[list[str]]] = {}
    for tier, _actions in _TIERS:
        entries = [_entries(env, tier) for env in plan.environments]
        demands = [sum(_cost(e) for e in env_entries) for env_entries in entries]
        grants = fair_shares(demands, budget)
        for index, env_entries in enumerate(entries):
            spent, listed = 0, []
            for entry in env_entries:
                cost = _cost(entry)
                if spent + cost > grants[index]:
                    break
                spent += cost
                listed.append(entry)
            chosen[(index, tier)] = listed
            budget -= spent
    return chosen


# -- the document -------------------------------------------------------------------------

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("create", "create"),
    ("drift", "drift"),
    ("ambiguous", "ambiguous"),
    ("unmanaged", "unmanaged"),
    ("unchanged", "unchanged"),
)


# Counts shown in bold when not zero: what a reviewer must look at.
_BLOCKING_COLUMNS = frozenset({"create", "drift", "ambiguous", "key_missing"})


def _table(plan: Plan) -> str:
    with_keys = any("key_missing" in env.summary for env in plan.environments)
    columns = [*_COLUMNS, ("key_missing", "key missing")] if with_keys else list(_COLUMNS)
    head = "| environment | " + " | ".join(title for _, title in columns) + " |\n"
    rule = "|:--|" + "--:|" * len(columns) + "\n"
    rows = []
    for env in plan.environments:
        cells = []
        for key, _ in columns:
            count = env.summary.get(key)
            strong = count and key in _BLOCKING_COLUMNS
            cells.append("–" if count is None else f"**{count}**" if strong else str(count))
        rows.append(f"| {inline(env.name)} | " + " | ".join(cells) + " |\n")
    return head + rule + "".join(rows)


def _headline(plan: Plan) -> str:
    total = len(plan.environments)
    changed = sum(1 for env in plan.environments if env.has_changes)
    noun = "environment" if total == 1 else "environments"
    if not total:
        return "No environments were planned."
    if not changed:
        return f"No changes in {total} {noun}."
    return f"Changes in {changed} of {total} {noun}. {_LEGEND}."


def _warnings(env: EnvironmentPlan) -> str:
    if not env.warnings:
        return ""
    lines = "".join(f"> {inline(w)}\n>\n" for w in env.warnings)
    return "> [!WARNING]\n" + lines.removesuffix(">\n") + "\n"


def _more(count: int, noun: str) -> str:
    return (
        f"… and {count} more {noun} not listed here (`mvsync show` of the saved plan "
        "lists them all)\n"
    )


def _env_section(env: EnvironmentPlan, chosen: Mapping[str, list[list[str]]]) -> str:
    summary = env.summary
    parts: list[str] = []
    warnings = _warnings(env)
    if warnings:
        parts.append(warnings)
    blocks = chosen["blocks"]
    blocking = summary["drift"] + summary["ambiguous"]
    if blocking:
        text = "**What blocks** (apply cannot fix it):\n\n"
        if blocks:
            text += _block([line for entry in blocks for line in entry], "diff")
        if len(blocks) < blocking:
            text += "\n" + _more(blocking - len(blocks), "drifted or ambiguous names")
        text += "\n" + " ".join(_RESOLVE[a] for a in _RESOLVE if summary[a.value]) + "\n"
        parts.append(text)
    creates = chosen["creates"]
    if summary["create"]:
        noun = "application" if summary["create"] == 1 else "applications"
        # A long list folds, so that the next environment stays in sight.
        folded = summary["create"] > _FOLD_CREATES
        title = f"Apply creates {summary['create']} {noun}"
        text = (
            f"<details><summary><b>{title}</b> (click to list)</summary>\n\n"
            if folded
            else f"**{title}:**\n\n"
        )
        if creates:
            text += _block([line for entry in creates for line in entry], "diff")
        if len(creates) < summary["create"]:
            text += "\n" + _more(summary["create"] - len(creates), "creates")
        if folded:
            text += "\n</details>\n"
        parts.append(text)
    unmanaged = chosen["unmanaged"]
    if summary["unmanaged"]:
        text = "**Not in the manifest** (unmanaged: apply leaves them alone):\n\n"
        if unmanaged:
            text += _block([line for entry in unmanaged for line in entry], "")
        if len(unmanaged) < summary["unmanaged"]:
            text += "\n" + _more(summary["unmanaged"] - len(unmanaged), "unmanaged applications")
        parts.append(text)
    keys = key_markdown(env)
    if keys:
        parts.append(keys)
    if summary["unchanged"]:
        parts.append(f"{summary['unchanged']} unchanged (counted, not listed).\n")
    if not parts:
        return ""
    return f"#### {inline(env.name)}\n\n" + "\n".join(parts) + "\n"


def _has_something_to_say(env: EnvironmentPlan) -> bool:
    summary = env.summary
    return bool(env.has_changes or summary["unmanaged"] or env.warnings or env.keys_not_held)


def render_markdown(plan: Plan, file: TextIO, limit: int = _MARKDOWN_BUDGET) -> None:
    """One pull-request comment for every environment, always shorter than ``limit``."""
    file.write(markdown_document(plan, limit))


def markdown_document(plan: Plan, limit: int = _MARKDOWN_BUDGET) -> str:
    """The comment as one string, shorter than ``limit`` characters."""
    head = f"### mvsync plan\n\n{_headline(plan)}\n\n{_table(plan)}\n"
    empty: dict[str, list[list[str]]] = {tier: [] for tier, _ in _TIERS}
    saying = [_has_something_to_say(env) for env in plan.environments]
    skeletons = [
        _env_section(env, empty) if says else ""
        for env, says in zip(plan.environments, saying, strict=True)
    ]
    budget = limit - len(head) - sum(len(s) + _RESERVE_PER_ENV for s in skeletons if s)
    # The reserve covers notes and fences; a name full of backticks lengthens its
    # fences beyond it, so measure, and list less until the document fits.
    for _ in range(4):
        chosen = _choose(plan, budget)
        document = head + "".join(
            _env_section(env, {tier: chosen[(index, tier)] for tier, _ in _TIERS})
            for index, env in enumerate(plan.environments)
            if saying[index]
        )
        if len(document) < limit:
            return document
        budget -= len(document) - limit + _RESERVE_PER_ENV
    document = head + "".join(skeletons)
    if len(document) < limit:
        return document
    # So many environments that even their headings do not fit: the table alone, cut.
    note = "\n… the plan is too large to show here: run `mvsync show` on the saved plans.\n"
    return head[: max(limit - len(note) - 1, 0)] + note
