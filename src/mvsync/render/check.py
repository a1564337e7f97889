"""``mvsync check`` results: one function ``(report, file) -> None`` per format, in
``CHECK_RENDERERS`` (the plan's renderers are in this package's other modules).

Text lists every result, failures first within each environment; Markdown is for the
pull-request comment (alone, or beside the plans in ``mvsync show``) and always stays
under its ``limit``: failures are listed first, then what is not configured, then what
passed, and whatever does not fit is counted. Every name, URL and reason is escaped
(``escape``; in Markdown also made inert, ``inline``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

from mvsync.check.results import CheckReport, CheckResult, EnvironmentResults
from mvsync.escape import escape
from mvsync.planner import Plan
from mvsync.render.json_ import plan_json
from mvsync.render.markdown import MARKDOWN_LIMIT, Provenance, markdown_document
from mvsync.render.markdown_parts import inline
from mvsync.render.text import render_text_auto

_MARKDOWN_BUDGET = MARKDOWN_LIMIT - 535  # what a workflow adds around the comment

_ORDER = {"failed": 0, "not_configured": 1, "passed": 2}
_TEXT_MARK = {"failed": "FAILED", "not_configured": "n/a   ", "passed": "passed"}
_MD_MARK = {"failed": "❌ failed", "not_configured": "➖ not configured", "passed": "✅ passed"}


def _ordered(env: EnvironmentResults) -> list[CheckResult]:
    return sorted(env.results, key=lambda result: _ORDER[result.verdict])


def summary_line(report: CheckReport) -> str:
    counts = report.summary()
    return (
        f"check: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['not_configured']} not configured"
    )


def render_check_text(report: CheckReport, file: TextIO) -> None:
    for env in report.environments:
        file.write(f"environment {escape(env.name)}\n")
        if not env.results:
            file.write("  (no applications)\n")
        for result in _ordered(env):
            url = f"  {result.url}" if result.url else ""
            file.write(
                f"  {_TEXT_MARK[result.verdict]}  {escape(result.application)}"
                f"  {result.check}{url}\n"
                f"          {escape(result.reason)}\n"
            )
    file.write(summary_line(report) + "\n")


def render_check_json(report: CheckReport, file: TextIO) -> None:
    file.write(json.dumps(report.to_json(), indent=2, ensure_ascii=True) + "\n")


def _code(text: str) -> str:
    """A URL as a code span (read as written, never a link), or escaped inline text when
    it holds a backtick that would end the span. A ``|`` is escaped in both: GitHub's
    tables split cells on it even inside a code span."""
    if "`" in text:
        return inline(text)
    return "`" + escape(text).replace("|", "\\|") + "`"


def _row(result: CheckResult) -> str:
    url = _code(result.url) if result.url else ""
    return (
        f"| {_MD_MARK[result.verdict]} | {inline(result.application)} | `{result.check}` "
        f"| {url} | {inline(result.reason)} |\n"
    )


def check_markdown(report: CheckReport, limit: int = _MARKDOWN_BUDGET) -> str:
    """The results as Markdown, shorter than ``limit`` characters."""
    counts = report.summary()
    verdict = "**every check passed**" if report.passed else f"**{counts['failed']} failed**"
    head = (
        "## mvsync check\n"
        f"{verdict} · {counts['passed']} passed · {counts['not_configured']} not configured "
        "(answer_url answers JSON in time; webhook_url takes signed events and refuses "
        "forged ones)\n\n"
    )
    table_head = "| result | application | check | URL | why |\n|---|---|---|---|---|\n"
    skeleton = [f"#### {inline(env.name)}\n\n" for env in report.environments]
    budget = limit - len(head) - sum(len(s) + len(table_head) + 80 for s in skeleton)
    rows = [(i, r, _row(r)) for i, env in enumerate(report.environments) for r in _ordered(env)]
    rows.sort(key=lambda item: _ORDER[item[1].verdict])  # failures first, across environments
    shown: dict[int, list[str]] = {i: [] for i in range(len(report.environments))}
    for index, _result, row in rows:
        if len(row) > budget:
            break
        budget -= len(row)
        shown[index].append(row)
    parts = [head]
    for index, env in enumerate(report.environments):
        parts.append(skeleton[index])
        if shown[index]:
            parts.append(table_head + "".join(shown[index]))
        left = len(env.results) - len(shown[index])
        if left:
            parts.append(f"\n… and {left} more results, not listed to stay within size.\n")
        parts.append("\n")
    document = "".join(parts)
    return document if len(document) < limit else document[: limit - 1]


def render_check_markdown(report: CheckReport, file: TextIO) -> None:
    file.write(check_markdown(report))


CHECK_RENDERERS: dict[str, Callable[[CheckReport, TextIO], None]] = {
    "text": render_check_text,
    "json": render_check_json,
    "markdown": render_check_markdown,
}


def merged(reports: list[CheckReport]) -> CheckReport:
    """Several saved results as one report, in the order given."""
    return CheckReport(tuple(env for report in reports for env in report.environments))


def render_beside_plan(
    output_format: str,
    plan: Plan | None,
    report: CheckReport,
    file: TextIO,
    *,
    about: Provenance | None = None,
) -> None:
    """``mvsync show`` of plans and check results: one document. In Markdown the check
    results take at most a third of the comment's size (failures first), the plans the
    rest; in JSON the results are the plan document's ``check`` member."""
    if plan is None:
        CHECK_RENDERERS[output_format](report, file)
        return
    if output_format == "markdown":
        checks = check_markdown(report, limit=_MARKDOWN_BUDGET // 3)
        file.write(markdown_document(plan, _MARKDOWN_BUDGET - len(checks) - 2, about=about))
        file.write("\n" + checks)
    elif output_format == "json":
        document = {**plan_json(plan), "check": report.to_json()}
        file.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    else:
        render_text_auto(plan, file)
        file.write("\n")
        render_check_text(report, file)
