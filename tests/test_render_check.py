"""The check results' renderers: every outside value escaped, failures first, the
Markdown comment under its limit however many results."""

from __future__ import annotations

import io
import json

from mvsync.check.results import CheckReport, CheckResult, EnvironmentResults, report_of
from mvsync.render.check import check_markdown, render_check_json, render_check_text

HOSTILE = "Evil | <script>x</script> **IVR**\x1b[31m\u202e"


def report(n_failed: int = 1, n_passed: int = 1) -> CheckReport:
    failed = [
        CheckResult(
            f"{HOSTILE} {i}", "answer_url", "https://a.example/x", "failed", "answered 500", 500, 3
        )
        for i in range(n_failed)
    ]
    passed = [
        CheckResult(
            f"Good {i}", "answer_url", "https://b.example/", "passed", "answered 200", 200, 2
        )
        for i in range(n_passed)
    ]
    return CheckReport((EnvironmentResults("prod", tuple(passed + failed)),))


def test_text_lists_failures_first_and_escapes_control_characters() -> None:
    out = io.StringIO()
    render_check_text(report(), out)
    text = out.getvalue()
    assert text.index("FAILED") < text.index("passed  Good 0")
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31m" in text
    assert text.endswith("check: 1 passed, 1 failed, 0 not configured\n")


def test_markdown_makes_names_inert() -> None:
    document = check_markdown(report())
    assert "<script>" not in document
    assert "&lt;script&gt;" in document
    assert "Evil \\| " in document  # a | cannot end the table cell
    assert "\x1b" not in document


def test_markdown_stays_under_its_limit_and_counts_what_it_leaves_out() -> None:
    big = report(n_failed=3000, n_passed=3000)
    document = check_markdown(big)
    assert len(document) < 65_000
    assert "more results, not listed to stay within size" in document
    rows = [line for line in document.splitlines() if line.startswith(("| ❌", "| ✅"))]
    assert rows and all(row.startswith("| ❌") for row in rows)  # failures before passes


def test_json_round_trips_through_the_saved_form() -> None:
    out = io.StringIO()
    original = report()
    render_check_json(original, out)
    assert report_of(json.loads(out.getvalue()), "x.json") == original


def test_markdown_shows_a_url_as_code_with_its_pipe_escaped() -> None:
    result = CheckResult("IVR", "answer_url", "https://a.example/x?a|b", "failed", "answered 500")
    document = check_markdown(CheckReport((EnvironmentResults("prod", (result,)),)))
    assert "| `https://a.example/x?a\\|b` |" in document
