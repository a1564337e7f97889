"""Renderers: golden files for text, JSON and Markdown; colour rules; Markdown size bound.

Regenerate the golden files with ``MVSYNC_UPDATE_GOLDEN=1 pytest tests/test_render.py``
and review them as a diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planner import Plan, build_plan
from mvsync.render import MARKDOWN_LIMIT, RENDERERS, escape, render_markdown, render_text
from mvsync.render.markdown import fair_shares

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MVSYNC_UPDATE_GOLDEN", "") not in ("", "0")

ANSI = re.compile(r"\x1b\[")


def _env(name: str, apps: list[DesiredApp], api_url: str) -> DesiredEnvironment:
    return DesiredEnvironment(
        name, api_url, "MINIVOICE_API_KEY", Path(f"/s/{name}.yaml"), tuple(apps)
    )


def _remote(app_id: str, name: str, answer_url: str, webhook_url: str | None = None) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=webhook_url,
        created_at="2026-05-29T12:00:00Z",
    )


def sample_plan() -> Plan:
    """Two environments holding every kind of change, and names that try to break out."""
    hooks = "https://crm.example.com/minivoice/webhooks"
    # A literal secret where the reference belongs: the worst case must not leak either.
    secret = TEST_WEBHOOK_SECRET
    staging = build_plan(
        _env(
            "staging",
            [
                DesiredApp(
                    "Support IVR (staging)", "https://staging.example.com/answer", hooks, secret
                ),
                DesiredApp("Sales IVR", "https://example.com/sales", hooks, secret),
                DesiredApp("Billing", "https://example.com/billing", hooks),
                DesiredApp("Reception", "https://example.com/reception", hooks),
                DesiredApp("Night line v2", "https://example.com/night"),
            ],
            "https://api.minivoice.eu",
        ),
        [
            _remote(
                "app_20260529T120000.000000001", "Sales IVR", "https://old.example.com/sales", hooks
            ),
            _remote(
                "app_20260529T120000.000000002", "Billing", "https://example.com/billing", hooks
            ),
            _remote(
                "app_20260529T120000.000000003", "Reception", "https://example.com/reception", hooks
            ),
            _remote(
                "app_20260529T120000.000000004", "Reception", "https://example.com/reception", hooks
            ),
            _remote("app_20260529T120000.000000005", "Night line", "https://example.com/night"),
            _remote(
                "app_20260529T120000.000000006",
                "evil\x1b[2J ```</details><b>",
                "https://x.example.com/",
            ),
        ],
    )
    prod = build_plan(
        _env(
            "prod",
            [DesiredApp("Billing", "https://example.com/billing", hooks)],
            "https://api.minivoice.eu",
        ),
        [_remote("app_20260529T120000.000000010", "Billing", "https://example.com/billing", hooks)],
    )
    return Plan((staging, prod))


def _rendered(fmt: str) -> str:
    out = io.StringIO()
    RENDERERS[fmt](sample_plan(), out)
    return out.getvalue()


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (MVSYNC_UPDATE_GOLDEN=1)"


@pytest.mark.parametrize(
    ("fmt", "golden"), [("text", "plan.txt"), ("json", "plan.json"), ("markdown", "plan.md")]
)
def test_render_matches_golden_file(fmt: str, golden: str) -> None:
    _check_golden(golden, _rendered(fmt))


def test_colored_text_matches_golden_file() -> None:
    out = io.StringIO()
    render_text(sample_plan(), out, color=True)
    _check_golden("plan.color.txt", out.getvalue())


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_format_shows_the_webhook_secret(fmt: str) -> None:
    assert_no_secrets(_rendered(fmt))


def test_text_uses_the_spec_markers() -> None:
    heads = [line.strip()[:2] for line in _rendered("text").splitlines() if line.startswith("  ")]
    assert {"+ ", "~ ", "! ", "? "} <= set(heads)


def test_text_counts_unchanged_without_listing_them() -> None:
    text = _rendered("text")
    assert "unchanged" not in text.split("staging:")[0]
    assert "1 unchanged" in text


def test_text_ends_with_a_summary_line() -> None:
    last = _rendered("text").splitlines()[-1]
    assert (
        last
        == "Plan for 2 environments: 2 to create, 1 drifted, 1 ambiguous, 2 unchanged, 2 unmanaged."
    )


def test_drift_says_how_to_resolve_it() -> None:
    assert "change the manifest to match, or fix it in the MiniVoice console" in _rendered("text")


def test_text_escapes_terminal_control_characters_from_remote_names() -> None:
    text = _rendered("text")
    assert "\x1b" not in text
    assert "evil\\x1b[2J" in text


HOSTILE_ID = "app_1\x1b[2J\x1b]0;PWN\x07\n::error::fake\n```\n</details>\n# PWNED <img src=x>"
BIDI_ID = "../../etc/\u202eevil\u2066"


def _hostile_plan() -> Plan:
    """Ids and values as a hostile API could send them: in every kind of change."""
    desired = [
        DesiredApp("Sales", "https://example.com/sales"),
        DesiredApp("Drifted", "https://example.com/drifted", "https://example.com/hooks"),
        DesiredApp("Renamed", "https://x.example/\u202e"),
    ]
    remote = [
        _remote(HOSTILE_ID, "Sales", "https://example.com/sales"),
        _remote(BIDI_ID, "Sales", "https://example.com/sales"),
        _remote(HOSTILE_ID + "d", "Drifted", "https://e/\n```\n</details>", "https://w/\u202e\x9b"),
        _remote(BIDI_ID + "u", "Old name", "https://x.example/\u202e"),
    ]
    return Plan((build_plan(_env("staging", desired, "https://api.minivoice.eu"), remote),))


def _hostile(fmt: str) -> str:
    out = io.StringIO()
    RENDERERS[fmt](_hostile_plan(), out)
    return out.getvalue()


def test_escape_shows_controls_bidi_and_line_separators_as_escapes() -> None:
    assert escape("a\x1b[2J\n\x7f\x9b\u202e\u2066\u2028\u200b\ufeffz") == (
        "a\\x1b[2J\\x0a\\x7f\\x9b\\u202e\\u2066\\u2028\\u200b\\ufeffz"
    )
    assert escape("Support IVR (staging) é ü 日本") == "Support IVR (staging) é ü 日本"


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_ids_and_remote_values_are_escaped(fmt: str) -> None:
    text = _hostile(fmt)
    assert not any(c in text for c in "\x1b\x07\x9b\u202e\u2066"), text
    assert escape(HOSTILE_ID) in text  # drift, ambiguous
    assert escape(BIDI_ID) in text  # ambiguous, unmanaged, rename hint
    for line in text.splitlines():
        assert not line.startswith(("::", "# PWNED", "</details>\x1b", "```\n")), line


def test_markdown_keeps_hostile_ids_inside_its_code_fences() -> None:
    markdown = _hostile("markdown")
    assert "</details>" not in markdown.replace("\\x0a</details>", "")
    assert not re.search(r"^#+ PWNED", markdown, flags=re.MULTILINE)
    blocks = re.findall(r"^(`{3,})diff\n(.*?)^\1$", markdown, flags=re.MULTILINE | re.DOTALL)
    fenced = "".join(body for _, body in blocks)
    assert "<img" in fenced  # inside the fence: shown, not rendered
    assert markdown.count("<img") == fenced.count("<img")


def test_json_escapes_bidi_and_c1_characters_and_keeps_the_values() -> None:
    text = _hostile("json")
    assert not any(c in text for c in "\x1b\x9b\u202e\u2066")
    assert "\\u202e" in text
    changes = json.loads(text)["environments"][0]["changes"]
    ambiguous = next(c for c in changes if c["action"] == "ambiguous")
    assert sorted(ambiguous["ids"]) == sorted([HOSTILE_ID, BIDI_ID])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_is_coloured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _Terminal()
    RENDERERS["text"](sample_plan(), out)
    assert ANSI.search(out.getvalue())


def test_text_is_not_coloured_with_no_color_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = _Terminal()
    RENDERERS["text"](sample_plan(), out)
    assert not ANSI.search(out.getvalue())


def test_text_is_not_coloured_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not ANSI.search(_rendered("text"))


def test_json_has_the_spec_shape() -> None:
    document = json.loads(_rendered("json"))
    assert document["format_version"] == 1
    assert [env["name"] for env in document["environments"]] == ["staging", "prod"]
    staging = document["environments"][0]
    assert set(staging) == {"name", "summary", "changes"}
    assert staging["summary"] == {
        "create": 2,
        "drift": 1,
        "unchanged": 1,
        "unmanaged": 2,
        "ambiguous": 1,
    }
    drift = next(c for c in staging["changes"] if c["action"] == "drift")
    assert drift["fields"] == {
        "answer_url": {
            "remote": "https://old.example.com/sales",
            "desired": "https://example.com/sales",
        }
    }


def test_json_marks_a_likely_rename() -> None:
    staging = json.loads(_rendered("json"))["environments"][0]
    create = next(c for c in staging["changes"] if c["name"] == "Night line v2")
    assert create["rename_of"] == ["app_20260529T120000.000000005"]


def test_markdown_opens_with_one_summary_table_of_every_environment() -> None:
    markdown = _rendered("markdown")
    table = re.findall(r"^\| .*\|$", markdown, flags=re.MULTILINE)
    assert table[0] == "| environment | create | drift | ambiguous | unmanaged | unchanged |"
    assert table[1:] == [
        "| staging | **2** | **1** | **1** | 2 | 1 |",
        "| prod | 0 | 0 | 0 | 0 | 1 |",
    ]
    assert markdown.index("| environment |") < markdown.index("### staging")


def test_markdown_has_one_heading_and_one_section_per_environment_with_something_to_say() -> None:
    markdown = _rendered("markdown")
    assert re.findall(r"^#+ .*$", markdown, flags=re.MULTILINE) == [
        "## mvsync plan",
        "### staging",
        "#### How to resolve",
    ]  # prod has nothing but 1 unchanged: its table row says it all


def test_markdown_lists_what_blocks_before_what_apply_creates() -> None:
    markdown = _rendered("markdown")
    assert markdown.index("~ drift ") < markdown.index("! ambiguous ") < markdown.index("+ create ")


def test_markdown_marks_each_line_for_githubs_diff_colours() -> None:
    # GitHub's diff grammar: + green, - red, ! orange; anything else is plain. The
    # symbols are the text plan's: + create, ~ drift, ! ambiguous; never -.
    markdown = _rendered("markdown")
    blocks = re.findall(r"^```diff\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    assert lines
    assert all(line[0] in "+~!" for line in lines)
    assert all(not line.startswith(("---", "+++")) for line in lines)  # not file headers
    assert '~     answer_url, remote:   "https://old.example.com/sales"' in markdown


def test_markdown_rename_hint_names_the_unmanaged_application() -> None:
    assert (
        '"Night line v2" is likely a rename of unmanaged "Night line" '
        "(app\\_20260529T120000\\.000000005)"
    ) in _rendered("markdown")


def test_markdown_keeps_a_hostile_name_inside_its_code_fence() -> None:
    markdown = _rendered("markdown")
    # The name holds ``` and </details>: the fence is longer, so neither closes anything.
    fenced = re.search(r"^````\n(.*?)^````$", markdown, flags=re.MULTILINE | re.DOTALL)
    assert fenced is not None
    assert "```</details><b>" in fenced.group(1)


def test_markdown_never_points_to_a_text_plan() -> None:
    assert "text plan" not in _rendered("markdown")


def _big_plan(creates: int, unchanged: int, environments: int = 1) -> Plan:
    envs = []
    for e in range(environments):
        apps = [
            DesiredApp(
                f"Customer {i:05d} inbound IVR with a long descriptive name", f"https://e.com/{i}"
            )
            for i in range(creates + unchanged)
        ]
        remote = [
            _remote(f"app_{i:05d}", apps[i].name, apps[i].answer_url)
            for i in range(creates, creates + unchanged)
        ]
        envs.append(build_plan(_env(f"env{e}", apps, "https://api.minivoice.eu"), remote))
    return Plan(tuple(envs))


def test_markdown_of_20000_creates_stays_under_githubs_limit_and_says_how_many_more() -> None:
    out = io.StringIO()
    render_markdown(_big_plan(creates=20_000, unchanged=0), out)
    markdown = out.getvalue()
    assert len(markdown) < MARKDOWN_LIMIT
    listed = markdown.count("\n+ create ")
    assert listed > 100
    assert f"… and {20_000 - listed} more creates not listed" in markdown


def test_markdown_of_20000_unchanged_in_two_environments_counts_them_and_lists_every_create() -> (
    None
):
    out = io.StringIO()
    render_markdown(_big_plan(creates=5, unchanged=10_000, environments=2), out)
    markdown = out.getvalue()
    assert len(markdown) < MARKDOWN_LIMIT
    assert markdown.count("\n+ create ") == 10
    assert markdown.count("10000 unchanged (counted, not listed)") == 2


def test_markdown_counts_unchanged_even_when_everything_fits() -> None:
    out = io.StringIO()
    render_markdown(_big_plan(creates=1, unchanged=3), out)
    assert 'unchanged "' not in out.getvalue()
    assert "3 unchanged (counted, not listed)." in out.getvalue()


def test_one_huge_environment_leaves_room_for_every_small_one() -> None:
    big = _big_plan(creates=20_000, unchanged=0).environments[0]
    small = [
        replace(env, name=f"small{i}") for i, env in enumerate(_big_plan(3, 1, 2).environments)
    ]
    out = io.StringIO()
    render_markdown(Plan((big, *small)), out)
    markdown = out.getvalue()
    assert len(markdown) < MARKDOWN_LIMIT
    for name in ("small0", "small1"):
        section = markdown.split(f"### {name}\n")[1].split("\n### ")[0]
        assert section.count("\n+ create ") == 3, section
    assert markdown.count("\n+ create ") > 100
    assert "more creates not listed" in markdown.split("### small0")[0]


def test_fair_shares_meet_small_demands_first_and_split_the_rest() -> None:
    assert fair_shares([10, 1000, 20], 330) == [10, 300, 20]
    assert fair_shares([10, 20], 1000) == [10, 20]
    assert fair_shares([500, 500], 100) == [50, 50]
    assert fair_shares([], 100) == []


def test_markdown_with_one_create_too_long_to_fit_still_counts_it() -> None:
    huge = DesiredApp("x" * 100_000, "https://e.com/")
    out = io.StringIO()
    render_markdown(Plan((build_plan(_env("dev", [huge], "https://api.minivoice.eu"), []),)), out)
    markdown = out.getvalue()
    assert len(markdown) < MARKDOWN_LIMIT
    assert "… and 1 more creates not listed" in markdown
