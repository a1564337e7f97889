"""The Markdown plan: one pull-request comment for every environment at once.

Layout, for a reviewer reading it on GitHub::

    ## mvsync plan
    Planned at commit abc1234 on 2026-05-29 12:00 UTC.
    **Merging applies staging, then prod: 3 creates** (2 in staging, 1 in prod).
    | environment | create | drift | ... |   a column that is 0 everywhere is left out
    `+` create · `~` drift · `!` ambiguous · `?` unmanaged      the legend, once
    > [!WARNING] ...                        each distinct warning once, naming its environments
    ### <env>                               only for an environment with something to say
    what blocks: ```diff  ~ drift  ! ambiguous     (plain and orange in GitHub's colours)
    creates:     ```diff  + create                 (green), then likely renames as prose
    unmanaged:   ``` ? name (id)                   (plain: information only)
    key not held, N unchanged (counted, not listed)
    **How to resolve**: drift, ambiguous, keys not held: once, for the kinds present

The symbols are the text plan's (``markdown_parts``); what a reviewer reads as prose
(hints, warnings, advice) is outside the fences, so GitHub wraps it.

Size: the document always stays under ``limit`` (GitHub refuses a comment over 65,536
characters). What every environment always shows (its table row, heading, warnings and
notes) is paid first; then the budget is shared tier by tier — what blocks, then
creates, then unmanaged — between the environments max-min fairly: an environment
that needs little gets all it needs, and the big one gets the rest, so one 5,000-app
environment can never crowd out the others. What does not fit is counted in an
"… and N more" line. Unchanged applications are always counted, never listed. The
document is measured after escaping and, while too long, made again with less listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from mvsync.planner import Action, EnvironmentPlan, Plan
from mvsync.render.keys import KEY_ADVICE, key_markdown, sink_markdown
from mvsync.render.markdown_parts import (
    Entry,
    ambiguous_entry,
    create_entry,
    drift_entry,
    inline,
    listed,
    unmanaged_entry,
)
from mvsync.render.text import unmanaged_names

# GitHub refuses a comment longer than 65,536 characters; keep a margin below it for
# what a workflow adds around the document (a marker, a link to the run).
MARKDOWN_LIMIT = 65_535
_MARKDOWN_BUDGET = MARKDOWN_LIMIT - 535

# What each environment's fixed part may cost beyond its measured text: the
# "… and N more" notes and the fences whose length depends on what is listed.
_RESERVE_PER_ENV = 600

_LEGEND = (
    "`+` apply creates it · `~` drift apply cannot fix · `!` ambiguous name apply will "
    "not touch · `?` unmanaged (not in the manifest, left alone)"
)
_RESOLVE = {
    "drift": (
        "**Drift** (`~`): the MiniVoice API cannot update an application; change the "
        "manifest to match, or fix the application in the MiniVoice console."
    ),
    "ambiguous": (
        "**Ambiguous** (`!`): delete or rename all but one application of that name in "
        "MiniVoice; until then apply will not touch the name."
    ),
    "key_missing": f"**Key not held**: {KEY_ADVICE}.",
    "key_undelivered": (
        "**Key not delivered**: the key is stored but the key sink has not taken it; "
        "`mvsync keys deliver --env ENV` hands it on (the sink runs again: it must be "
        "idempotent)."
    ),
}

# More creates than this in one environment are folded in a <details> block.
_FOLD_CREATES = 20


@dataclass(frozen=True)
class Provenance:
    """What the comment says about where the plan came from and what merging does.

    ``commits``: the commits planned (abbreviated when shown); ``planned_at``: when the
    plans were made (earliest, latest); ``on_merge``: merging the pull request applies
    these environments in this order (the CI recipe's apply job)."""

    commits: tuple[str, ...] = ()
    planned_at: tuple[datetime, ...] = ()
    on_merge: bool = False


# -- the shared budget ------------------------------------------------------------------

_TIERS = ("blocks", "creates", "unmanaged")


def _entries(env: EnvironmentPlan, tier: str) -> list[Entry]:
    if tier == "blocks":
        # Drift first, then ambiguous: the plan's own order within each.
        drift = [drift_entry(c) for c in env.changes if c.action is Action.DRIFT]
        return drift + [ambiguous_entry(c) for c in env.changes if c.action is Action.AMBIGUOUS]
    if tier == "creates":
        names = unmanaged_names(env)
        return [create_entry(c, names) for c in env.changes if c.action is Action.CREATE]
    return [unmanaged_entry(c) for c in env.changes if c.action is Action.UNMANAGED]


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


def _choose(plan: Plan, budget: int) -> dict[tuple[int, str], list[Entry]]:
    """The entries listed per (environment index, tier), within ``budget`` characters."""
    chosen: dict[tuple[int, str], list[Entry]] = {}
    for tier in _TIERS:
        entries = [_entries(env, tier) for env in plan.environments]
        grants = fair_shares([sum(e.cost for e in env_entries) for env_entries in entries], budget)
        for index, env_entries in enumerate(entries):
            spent, taken = 0, []
            for entry in env_entries:
                if spent + entry.cost > grants[index]:
                    break
                spent += entry.cost
                taken.append(entry)
            chosen[(index, tier)] = taken
            budget -= spent
    return chosen


# -- the document -------------------------------------------------------------------------

_COLUMNS = (
    ("create", "create"),
    ("drift", "drift"),
    ("ambiguous", "ambiguous"),
    ("unmanaged", "unmanaged"),
    ("unchanged", "unchanged"),
    ("key_missing", "key missing"),
    ("key_undelivered", "key undelivered"),
)
# Counts shown in bold when not zero: what a reviewer must look at.
_BLOCKING_COLUMNS = frozenset({"create", "drift", "ambiguous", "key_missing", "key_undelivered"})


def _table(plan: Plan) -> str:
    # A column that is 0 (or unknown) in every environment says nothing: left out.
    columns = [
        (key, title)
        for key, title in _COLUMNS
        if any(env.summary.get(key) for env in plan.environments)
    ] or [("unchanged", "unchanged")]
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _when(moments: Sequence[datetime]) -> str:
    shown = sorted({m.strftime("%Y-%m-%d %H:%M UTC") for m in moments})
    return shown[0] if len(shown) == 1 else f"between {shown[0]} and {shown[-1]}"


def _origin(about: Provenance) -> str:
    distinct = list(dict.fromkeys(about.commits))
    commits = ", ".join(f"`{inline(c[:12])}`" for c in distinct)
    where = f"at commit {commits}" if len(distinct) == 1 else f"at commits {commits}"
    parts = [where] if distinct else []
    if about.planned_at:
        parts.append(f"on {_when(about.planned_at)}")
    return f"Planned {' '.join(parts)}." if parts else ""


def _merge_line(plan: Plan, about: Provenance) -> str:
    envs = plan.environments
    creates = [(env.name, env.summary["create"]) for env in envs if env.summary["create"]]
    total = sum(count for _, count in creates)
    what = f"{_plural(total, 'create')}" if total else "nothing to create"
    if len(creates) > 1:
        what += " (" + ", ".join(f"{n} in {inline(name)}" for name, n in creates) + ")"
    elif creates and len(envs) > 1:
        what += f" in {inline(creates[0][0])}"
    blocking = plan.summary["drift"] + plan.summary["ambiguous"]
    stays = ""
    if blocking:
        stays = f"; {_plural(blocking, 'drifted or ambiguous name')} stay as they are"
    if about.on_merge:
        order = ", then ".join(inline(env.name) for env in envs)
        return f"**Merging applies {order}: {what}**{stays}."
    return f"**Applying these plans: {what}**{stays}."


def _headline(plan: Plan, about: Provenance) -> str:
    total = len(plan.environments)
    if not total:
        return "No environments were planned.\n"
    origin = _origin(about)
    lines = [origin] if origin else []
    if not plan.has_changes:
        lines.append(f"No changes in {_plural(total, 'environment')}.")
    else:
        lines.append(_merge_line(plan, about))
    return "\n".join(lines) + "\n"


def _warnings(plan: Plan) -> str:
    """Each distinct warning once, naming the environments it is about."""
    where: dict[str, list[str]] = {}
    for env in plan.environments:
        for warning in env.warnings:
            where.setdefault(warning, []).append(env.name)
    if not where:
        return ""
    every = len(plan.environments)
    lines = [
        f"> {inline(w)}" + ("" if len(names) == every else f" ({', '.join(map(inline, names))})")
        for w, names in where.items()
    ]
    return "> [!WARNING]\n" + "\n>\n".join(lines) + "\n"


def _more(count: int, noun: str) -> str:
    return (
        f"… and {count} more {noun} not listed here (`mvsync show` of the saved plan "
        "lists them all)\n"
    )


def _env_section(env: EnvironmentPlan, chosen: Mapping[str, list[Entry]]) -> str:
    summary = env.summary
    parts: list[str] = []
    blocks, blocking = chosen["blocks"], summary["drift"] + summary["ambiguous"]
    if blocking:
        text = "**What blocks** (apply cannot fix it):\n\n" + listed(blocks, "diff")
        if len(blocks) < blocking:
            text += "\n" + _more(blocking - len(blocks), "drifted or ambiguous names")
        parts.append(text)
    creates = chosen["creates"]
    if summary["create"]:
        # A long list folds, so that the next environment stays in sight.
        folded = summary["create"] > _FOLD_CREATES
        title = f"Apply creates {_plural(summary['create'], 'application')}"
        text = (
            f"<details><summary><b>{title}</b> (click to list)</summary>\n\n"
            if folded
            else f"**{title}:**\n\n"
        )
        text += listed(creates, "diff")
        if len(creates) < summary["create"]:
            text += "\n" + _more(summary["create"] - len(creates), "creates")
        if folded:
            text += "\n</details>\n"
        parts.append(text)
    unmanaged = chosen["unmanaged"]
    if summary["unmanaged"]:
        text = "**Not in the manifest** (unmanaged: apply leaves them alone):\n\n"
        text += listed(unmanaged, "")
        if len(unmanaged) < summary["unmanaged"]:
            text += "\n" + _more(summary["unmanaged"] - len(unmanaged), "unmanaged applications")
        parts.append(text)
    keys = key_markdown(env)
    if keys:
        parts.append(keys)
    sink = sink_markdown(env)
    if sink:
        parts.append(sink)
    if summary["unchanged"]:
        parts.append(f"{summary['unchanged']} unchanged (counted, not listed).\n")
    if not parts:
        return ""
    return f"### {inline(env.name)}\n\n" + "\n".join(parts) + "\n"


def _has_something_to_say(env: EnvironmentPlan) -> bool:
    return bool(env.has_changes or env.summary["unmanaged"] or env.keys_not_held or env.undelivered)


def _resolve(plan: Plan) -> str:
    present = [text for key, text in _RESOLVE.items() if plan.summary.get(key)]
    return "#### How to resolve\n\n" + "".join(f"- {t}\n" for t in present) if present else ""


def render_markdown(
    plan: Plan, file: TextIO, limit: int = _MARKDOWN_BUDGET, *, about: Provenance | None = None
) -> None:
    """One pull-request comment for every environment, always shorter than ``limit``."""
    file.write(markdown_document(plan, limit, about=about))


def markdown_document(
    plan: Plan, limit: int = _MARKDOWN_BUDGET, *, about: Provenance | None = None
) -> str:
    """The comment as one string, shorter than ``limit`` characters."""
    about = about or Provenance()
    head = f"## mvsync plan\n\n{_headline(plan, about)}\n{_table(plan)}\n"
    if plan.has_changes or any(env.summary["unmanaged"] for env in plan.environments):
        head += f"{_LEGEND}\n\n"
    warnings = _warnings(plan)
    head += f"{warnings}\n" if warnings else ""
    tail = _resolve(plan)
    empty: dict[str, list[Entry]] = {tier: [] for tier in _TIERS}
    saying = [_has_something_to_say(env) for env in plan.environments]
    skeletons = [
        _env_section(env, empty) if says else ""
        for env, says in zip(plan.environments, saying, strict=True)
    ]
    fixed = len(head) + len(tail)
    budget = limit - fixed - sum(len(s) + _RESERVE_PER_ENV for s in skeletons if s)
    # The reserve covers notes and fences; a name full of backticks lengthens its
    # fences beyond it, so measure the document as escaped, and list less until it fits.
    for _ in range(4):
        chosen = _choose(plan, budget)
        document = (
            head
            + "".join(
                _env_section(env, {tier: chosen[(index, tier)] for tier in _TIERS})
                for index, env in enumerate(plan.environments)
                if saying[index]
            )
            + tail
        )
        if len(document) < limit:
            return document
        budget -= len(document) - limit + _RESERVE_PER_ENV
    document = head + "".join(skeletons) + tail
    if len(document) < limit:
        return document
    # So many environments that even their headings do not fit: the table alone, cut.
    note = "\n… the plan is too large to show here: run `mvsync show` on the saved plans.\n"
    return head[: max(limit - len(note) - 1, 0)] + note
