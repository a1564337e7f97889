"""The Markdown comment: the text plan's symbols, HTML escaped, GitHub's size limit.

Rendered to HTML as GitHub does (CommonMark with raw HTML allowed, plus the GFM
extensions: markdown-it-py with mdit-py-plugins' ``gfm_plugin``), then read back with
``html.parser``: what a reviewer's browser would get.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.gfm import gfm_plugin

from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planner import Action, Change, EnvironmentPlan, Plan, build_plan
from mvsync.render import MARKDOWN_LIMIT, MARKERS, render_markdown, render_text
from mvsync.render.markdown import markdown_document

# Everything the comment may hold, as GitHub renders it; an <img> or a stray
# </details> is a value that broke out.
ALLOWED_TAGS = {
    "h2", "h3", "h4", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "code",
    "pre", "ul", "li", "details", "summary", "b", "blockquote", "br", "em", "div",
}  # fmt: skip

# Names built to be escaped as much as possible: each of ``& < >`` becomes an entity
# outside a fence, each bidi control a 6-character escape, plus Markdown punctuation
# and runs of backticks that would close a fence.
BREAKOUT = "</details><img src=x onerror=alert(1)>&amp;<script>"
HEAVY = "&<>\u202e`*_[]|" * 6


def _env(name: str, apps: list[DesiredApp]) -> DesiredEnvironment:
    return DesiredEnvironment(
        name, "https://api.minivoice.eu", "K", Path(f"/s/{name}.yaml"), tuple(apps)
    )


def _remote(app_id: str, name: str, answer_url: str) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=None,
        created_at="2026-05-29T12:00:00Z",
    )


def every_kind(name: str = "staging") -> EnvironmentPlan:
    """A create, a likely rename, a drift, an ambiguous name and an unmanaged app."""
    return build_plan(
        _env(
            name,
            [
                DesiredApp("Support IVR", "https://example.com/answer"),
                DesiredApp("Night line v2", "https://example.com/night"),
                DesiredApp("Sales IVR", "https://example.com/sales"),
                DesiredApp("Reception", "https://example.com/reception"),
            ],
        ),
        [
            _remote("app_1", "Sales IVR", "https://old.example.com/sales"),
            _remote("app_2", "Reception", "https://example.com/reception"),
            _remote("app_3", "Reception", "https://example.com/reception"),
            _remote("app_4", "Night line", "https://example.com/night"),
        ],
    )


def renames(env_name: str, count: int, name: str) -> EnvironmentPlan:
    """``count`` creates, each a likely rename of an unmanaged app: both named ``name``-ish,
    so that the escaped prose of the rename hints is as long as it gets."""
    desired = [DesiredApp(f"{name}{i}", f"https://e.com/{i}") for i in range(count)]
    remote = [_remote(f"app_{i}", f"{name}~{i}", f"https://e.com/{i}") for i in range(count)]
    return build_plan(_env(env_name, desired), remote)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.code: list[tuple[str, str]] = []
        self._code_class: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "code":
            self._code_class = dict(attrs).get("class") or ""
            self.code.append((self._code_class, ""))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(f"/{tag}")
        if tag == "code":
            self._code_class = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._code_class is not None:
            kind, body = self.code[-1]
            self.code[-1] = (kind, body + data)


def as_github_renders(markdown: str) -> _Tags:
    parser = _Tags()
    parser.feed(MarkdownIt("commonmark").use(gfm_plugin).render(markdown))
    parser.close()
    return parser


def _markdown(plan: Plan) -> str:
    out = io.StringIO()
    render_markdown(plan, out)
    return out.getvalue()


# -- one set of symbols ---------------------------------------------------------------------


def test_markdown_marks_each_kind_of_change_with_the_text_plans_symbol() -> None:
    plan = Plan((every_kind(),))
    text = io.StringIO()
    render_text(plan, text)
    diff = [
        line
        for kind, body in as_github_renders(_markdown(plan)).code
        if kind == "language-diff"
        for line in body.splitlines()
    ]
    plain = [body for kind, body in as_github_renders(_markdown(plan)).code if not kind]
    shown = {
        Action.CREATE: [line for line in diff if line.startswith('+ create "Support IVR"')],
        Action.DRIFT: [line for line in diff if line.startswith('~ drift "Sales IVR"')],
        Action.AMBIGUOUS: [line for line in diff if line.startswith('! ambiguous "Reception"')],
        Action.UNMANAGED: [b for b in plain if b.startswith('? "Night line" (app_4)')],
    }
    assert all(shown.values()), shown
    for action, lines in shown.items():
        marker = MARKERS[action]
        assert lines[0][0] == marker
        # The text plan marks the same change with the same symbol.
        assert re.search(rf"^  {re.escape(marker)} {action.value} ", text.getvalue(), re.M)
    # Every line under a change carries its change's symbol (GitHub colours by it).
    assert {line[0] for line in diff} == {"+", "~", "!"}


def test_an_ambiguous_name_is_never_a_red_line() -> None:
    # GitHub colours a diff line starting with "-" red: every reviewer reads a delete.
    markdown = _markdown(Plan((every_kind(),)))
    for kind, body in as_github_renders(markdown).code:
        assert not [line for line in body.splitlines() if line.startswith("-")], (kind, body)
    assert "! ambiguous" in markdown
    assert "`!` ambiguous name apply will not touch" in markdown  # the legend says so


# -- HTML escaping ----------------------------------------------------------------------------


def hostile_plan() -> Plan:
    """The breakout in every place a value can reach: environment name, create,
    rename hint, unmanaged name, warning, drift value."""
    env = build_plan(
        _env(
            BREAKOUT,
            [
                DesiredApp(f"{BREAKOUT} v2", "https://e.com/night"),
                DesiredApp("Sales", f"https://e.com/{BREAKOUT}"),
            ],
        ),
        [
            _remote("app_1", BREAKOUT, "https://e.com/night"),
            _remote(f"app_2{BREAKOUT}", "Sales", "https://e.com/old"),
        ],
    )
    env = EnvironmentPlan(
        env.name,
        env.api_url,
        env.changes,
        env.manifest_fingerprint,
        env.remote_fingerprint,
        warnings=(f"apply will need {BREAKOUT}",),
    )
    return Plan((env,))


def test_html_in_any_value_is_shown_never_rendered() -> None:
    markdown = _markdown(hostile_plan())
    # Raw only inside fences (GitHub shows a fence's content as text).
    assert markdown.count("<img") == _in_fences(markdown, "<img")
    rendered = as_github_renders(markdown)
    opened = [tag for tag in rendered.tags if not tag.startswith("/")]
    assert set(opened) <= ALLOWED_TAGS, set(opened) - ALLOWED_TAGS
    assert "img" not in opened and "script" not in opened
    assert rendered.tags.count("details") == rendered.tags.count("/details")
    # Shown to the reviewer as it is: in the heading, the warning and the rename hint.
    text = "".join(rendered.text)
    assert text.count(BREAKOUT) >= 5, text


def _in_fences(markdown: str, needle: str) -> int:
    blocks = re.findall(r"^(`{3,})[a-z]*\n(.*?)^\1$", markdown, flags=re.MULTILINE | re.DOTALL)
    return sum(body.count(needle) for _, body in blocks)


def test_a_name_of_backticks_cannot_close_its_fence() -> None:
    ticks = "`" * 40 + BREAKOUT
    env = build_plan(_env("dev", [DesiredApp(ticks, "https://e.com/a")]), [])
    env2 = build_plan(_env("prod", []), [_remote("app_9", ticks, "https://e.com/b")])
    markdown = _markdown(Plan((env, env2)))
    rendered = as_github_renders(markdown)
    assert "img" not in rendered.tags
    # Each of the two blocks is fenced with one backtick more than the name's run.
    assert (
        re.findall(r"^`{41}(?:diff)?$", markdown, flags=re.MULTILINE)
        == ["`" * 41 + "diff"] + ["`" * 41] * 3
    )
    assert [body for _, body in rendered.code if ticks in body]


# -- GitHub's limit, measured after escaping ------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        # Rename hints: prose, where each & < > becomes an entity (up to 5 characters).
        Plan((renames("staging", 3000, HEAVY), renames("prod", 20, HEAVY))),
        # Three environments whose names escape heavily, each with thousands of hints.
        Plan(tuple(renames(f"{HEAVY}{n}", 1500, HEAVY + BREAKOUT) for n in range(3))),
    ],
    ids=["hints", "hostile-environments"],
)
def test_a_comment_of_names_built_to_escape_stays_under_githubs_limit(plan: Plan) -> None:
    markdown = _markdown(plan)
    assert len(markdown) < MARKDOWN_LIMIT
    assert "more creates not listed" in markdown
    assert "img" not in as_github_renders(markdown).tags


def test_fences_longer_than_the_reserve_are_measured_again_until_the_comment_fits() -> None:
    # Each listed name with 3,000 backticks makes its block's two fences 3,001 each:
    # far beyond what the first estimate reserves, so only measuring the document again
    # (after escaping) and listing less keeps it under the limit.
    ticks = "`" * 3000
    envs = []
    for n in range(3):
        env = renames(f"env{n}", 2000, HEAVY)
        extra = build_plan(
            _env(f"env{n}", [DesiredApp(f"{ticks}{n}", "https://e.com/x")]),
            [_remote(f"app_x{n}", f"{ticks}unmanaged", "https://e.com/y")],
        )
        envs.append(
            EnvironmentPlan(
                env.name,
                env.api_url,
                extra.changes + env.changes,
                env.manifest_fingerprint,
                env.remote_fingerprint,
            )
        )
    document = markdown_document(Plan(tuple(envs)))
    assert len(document) < MARKDOWN_LIMIT - 535
    assert document.count("`" * 3001) >= 2  # a long fence was listed, and the rest fit
    assert "img" not in as_github_renders(document).tags


# -- the comment as a reviewer reads it -----------------------------------------------------


def test_one_legend_and_each_identical_warning_once_per_comment() -> None:
    warning = "apply will need webhook secret variable not set here: MV_WEBHOOK_SECRET"
    envs = [
        EnvironmentPlan(e.name, e.api_url, e.changes, "0" * 64, "0" * 64, warnings=(warning,))
        for e in (every_kind("staging"), every_kind("prod"))
    ]
    markdown = _markdown(Plan(tuple(envs)))
    assert markdown.count("MV\\_WEBHOOK\\_SECRET") == 1
    assert markdown.count("apply creates it") == 1
    assert markdown.count("the MiniVoice API cannot update an application") == 1
    assert markdown.count("[!WARNING]") == 1
    # A warning of one environment only names it.
    only_prod = [envs[0], EnvironmentPlan(*_fields(envs[1]), warnings=("prod only",))]
    assert "> prod only (prod)" in _markdown(Plan(tuple(only_prod)))


def _fields(env: EnvironmentPlan) -> tuple[str, str, tuple[Change, ...], str, str]:
    return (env.name, env.api_url, env.changes, env.manifest_fingerprint, env.remote_fingerprint)


def test_environments_are_headings_and_long_hints_are_prose_that_wraps() -> None:
    rendered = as_github_renders(_markdown(Plan((every_kind("staging"), every_kind("prod")))))
    assert rendered.tags.count("h3") == 2  # staging, prod
    # The rename hint is not in a code block (which scrolls sideways): it is list text.
    assert not [body for _, body in rendered.code if "is likely a rename" in body]
    assert any("is likely a rename of unmanaged" in t for t in rendered.text)


def test_a_column_that_is_zero_everywhere_is_left_out() -> None:
    only_creates = build_plan(_env("dev", [DesiredApp("A", "https://e.com/a")]), [])
    keyed = EnvironmentPlan(*_fields(only_creates), keys_known=True)
    table = [
        line for line in _markdown(Plan((keyed,))).splitlines() if line.startswith("| environment")
    ]
    assert table == ["| environment | create |"]


def test_the_comment_says_at_which_commit_when_and_what_merging_does() -> None:
    from datetime import UTC, datetime

    from mvsync.render.markdown import Provenance

    about = Provenance(
        commits=("0123456789abcdef0123456789abcdef01234567",),
        planned_at=(datetime(2026, 5, 29, 12, 0, tzinfo=UTC),),
        on_merge=True,
    )
    plan = Plan((every_kind("staging"), renames("prod", 1, "X")))
    markdown = markdown_document(plan, about=about)
    assert "Planned at commit `0123456789ab` on 2026-05-29 12:00 UTC." in markdown
    assert "**Merging applies staging, then prod: 3 creates (2 in staging, 1 in prod)**" in markdown
    assert "Merging" not in markdown_document(plan)  # not said unless the recipe says so


def test_zero_keys_missing_is_not_repeated_on_every_summary_line() -> None:
    held = EnvironmentPlan(*_fields(every_kind("staging")), keys_known=True)
    text = io.StringIO()
    render_text(Plan((held, EnvironmentPlan(*_fields(every_kind("prod")), keys_known=True))), text)
    assert "key missing" not in text.getvalue()
    assert "| key missing |" not in _markdown(Plan((held,)))
