"""``mvsync show FILE...``: saved plans rendered offline, several files as one document.

The Markdown is also rendered to HTML as GitHub does (CommonMark + the GFM extensions,
markdown-it-py with mdit-py-plugins' ``gfm_plugin``) and its structure is checked: the
summary table, every environment, what blocks before what apply creates, the size.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.gfm import gfm_plugin

from helpers import TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.cli import main
from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planfile import write_plan
from mvsync.planner import EnvironmentPlan, Plan, build_plan
from mvsync.render import MARKDOWN_LIMIT, RENDERERS, render_markdown
from mvsync.render.markdown import Provenance

HOOKS = "https://crm.example.com/minivoice/webhooks"
CREATED = datetime(2026, 5, 29, 12, 0, tzinfo=UTC)


def _remote(app_id: str, name: str, answer_url: str) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=HOOKS,
        created_at="2026-05-29T12:00:00Z",
    )


def _env(name: str, apps: list[DesiredApp]) -> DesiredEnvironment:
    return DesiredEnvironment(
        name, "https://api.minivoice.eu", "K", Path(f"/s/{name}.yaml"), tuple(apps)
    )


def staging_plan() -> EnvironmentPlan:
    """Creates (one a likely rename), a drift, an ambiguous name, an unmanaged app."""
    ref = "${MV_WEBHOOK_SECRET}"
    return build_plan(
        _env(
            "staging",
            [
                DesiredApp("Support IVR", "https://example.com/answer", HOOKS, ref),
                DesiredApp("Sales IVR", "https://example.com/sales", HOOKS),
                DesiredApp("Reception", "https://example.com/reception", HOOKS),
                DesiredApp("Night line v2", "https://example.com/night", HOOKS),
                DesiredApp("Billing", "https://example.com/billing", HOOKS),
            ],
        ),
        [
            _remote("app_1", "Sales IVR", "https://old.example.com/sales"),
            _remote("app_2", "Reception", "https://example.com/reception"),
            _remote("app_3", "Reception", "https://example.com/reception"),
            _remote("app_4", "Night line", "https://example.com/night"),
            _remote("app_5", "Billing", "https://example.com/billing"),
        ],
    )


def prod_plan(creates: int = 5000) -> EnvironmentPlan:
    """A big environment: thousands of creates, and one drift that must still show."""
    apps = [
        DesiredApp(f"Customer {i:05d} inbound IVR", f"https://example.com/c/{i}", HOOKS)
        for i in range(creates)
    ]
    apps.append(DesiredApp("Sales IVR", "https://example.com/sales", HOOKS))
    return build_plan(_env("prod", apps), [_remote("app_9", "Sales IVR", "https://x.example/")])


def dev_plan() -> EnvironmentPlan:
    return build_plan(
        _env("dev", [DesiredApp("Support IVR", "https://example.com/answer", HOOKS)]), []
    )


def save(tmp_path: Path, env: EnvironmentPlan) -> Path:
    path = tmp_path / f"plan-{env.name}.json"
    write_plan(Plan((env,)), path, Path("mvsync.yaml"), created_at=CREATED)
    return path


def show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["show", *args])
    out, err = capsys.readouterr()
    assert_no_secrets(out + err)
    code = exit_.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # No variable at all: show needs neither keys nor ${} values nor a manifest.
    for name in ("MV_WEBHOOK_SECRET", "MINIVOICE_API_KEY", "MVSYNC_FILE", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no mvsync.yaml here


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_renders_a_saved_plan_as_plan_rendered_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    plan = Plan((staging_plan(),))
    expected = io.StringIO()
    if fmt == "markdown":  # the comment also says when the plan was made
        render_markdown(plan, expected, about=Provenance(planned_at=(CREATED,)))
    else:
        RENDERERS[fmt](plan, expected)
    code, out, _ = show(capsys, str(save(tmp_path, plan.environments[0])), "--format", fmt)
    assert (code, out) == (0, expected.getvalue())


def test_show_of_several_files_makes_one_document_in_the_order_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(save(tmp_path, env)) for env in (staging_plan(), dev_plan())]
    code, out, _ = show(capsys, *files, "--format", "json")
    assert code == 0
    assert [env["name"] for env in json.loads(out)["environments"]] == ["staging", "dev"]
    code, out, _ = show(capsys, *files)
    assert out.count("Plan for 2 environments") == 1


def test_show_refuses_an_environment_in_two_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = save(tmp_path, dev_plan())
    second = tmp_path / "again.json"
    second.write_bytes(first.read_bytes())
    code, out, err = show(capsys, str(first), str(second))
    assert (code, out) == (1, "")
    assert "environment 'dev' is in more than one saved plan" in err


def test_show_refuses_a_file_that_is_not_a_saved_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "plan-prod.md"
    bad.write_text("### not json\n")
    code, out, err = show(capsys, str(bad))
    assert (code, out) == (1, "")
    assert err.startswith("mvsync: error: ") and "not a saved plan" in err
    assert len(err.strip().splitlines()) == 1


def test_show_needs_at_least_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = show(capsys)
    assert code == 1
    assert "FILE" in err


def test_a_saved_create_with_a_webhook_secret_shows_it_is_set_but_never_the_ref(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = show(capsys, str(save(tmp_path, staging_plan())), "--format", "json")
    [support] = [
        c for c in json.loads(out)["environments"][0]["changes"] if c["name"] == "Support IVR"
    ]
    assert support["desired"]["webhook_secret_set"] is True
    assert "MV_WEBHOOK_SECRET" not in out
    assert TEST_WEBHOOK_SECRET not in out


# -- the pull-request comment, rendered as GitHub renders it ----------------------------


class _Outline(HTMLParser):
    """The document as a list of (tag, text) for headings, table cells and code blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []
        self._open: list[tuple[str, str]] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3", "h4", "th", "td", "code", "table"):
            kind = dict(attrs).get("class") or ""
            self._open.append((tag, kind))
            self._text = []
            if tag == "table":
                self.items.append(("table", ""))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _, kind = self._open.pop()
            if tag != "table":
                label = f"{tag}.{kind}" if kind else tag
                self.items.append((label, "".join(self._text)))

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def _outline(markdown: str) -> list[tuple[str, str]]:
    html = MarkdownIt("commonmark").use(gfm_plugin).render(markdown)
    parser = _Outline()
    parser.feed(html)
    return parser.items


@pytest.fixture
def comment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    files = [str(save(tmp_path, env)) for env in (staging_plan(), prod_plan(), dev_plan())]
    code, out, _ = show(capsys, *files, "--format", "markdown")
    assert code == 0
    return out


def test_the_comment_of_three_plans_one_of_5000_apps_fits_githubs_limit(comment: str) -> None:
    assert len(comment) < MARKDOWN_LIMIT
    assert "… and " in comment and "more creates not listed" in comment


def test_the_comment_opens_with_one_summary_table_of_every_environment(comment: str) -> None:
    items = _outline(comment)
    assert items[0] == ("h2", "mvsync plan")
    assert [tag for tag, _ in items].count("table") == 1
    table_at = items.index(("table", ""))
    assert all(tag != "h3" for tag, _ in items[:table_at])  # the table comes first
    header = [text for tag, text in items if tag == "th"]
    assert header == ["environment", "create", "drift", "ambiguous", "unmanaged", "unchanged"]
    cells = [text for tag, text in items if tag == "td"]
    rows = [cells[i : i + len(header)] for i in range(0, len(cells), len(header))]
    assert rows == [
        ["staging", "2", "1", "1", "1", "1"],
        ["prod", "5000", "1", "0", "0", "0"],
        ["dev", "1", "0", "0", "0", "0"],
    ]


def test_the_comment_has_every_environment_and_drift_before_creates_in_each(
    comment: str,
) -> None:
    items = _outline(comment)
    headings = [text for tag, text in items if tag == "h3"]
    assert headings == ["staging", "prod", "dev"]
    for index, name in enumerate(headings):
        start = items.index(("h3", name))
        end = items.index(("h3", headings[index + 1])) if index + 1 < len(headings) else None
        blocks = [text for tag, text in items[start:end] if tag == "code.language-diff"]
        creates = [i for i, text in enumerate(blocks) if text.startswith("+ create ")]
        assert creates, name
        drifts = [i for i, text in enumerate(blocks) if text.startswith("~ drift ")]
        if name != "dev":
            assert drifts and drifts[0] < creates[0], name
    # The small environments were listed in full next to the big one.
    staging_dev = [text for tag, text in items if tag == "code.language-diff"]
    assert any('+ create "Support IVR"' in text for text in staging_dev[-1:])
    assert sum(text.count("+ create ") for text in staging_dev) > 100


def test_the_comment_names_the_rename_and_the_ambiguous_ids(comment: str) -> None:
    assert 'is likely a rename of unmanaged "Night line" (app\\_4)' in comment
    assert '! ambiguous "Reception": 2 applications (app_2, app_3)' in comment
    assert '? "Night line" (app_4)' in comment


def test_a_long_list_of_creates_is_folded_and_a_short_one_is_not(comment: str) -> None:
    prod = comment.split("### prod")[1].split("### dev")[0]
    dev = comment.split("### dev")[1]
    assert "<details><summary><b>Apply creates 5000 applications</b>" in prod
    assert prod.count("</details>") == 1
    assert "<details>" not in dev and "**Apply creates 1 application:**" in dev
