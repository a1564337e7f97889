"""Screenshots of the pull-request comment as GitHub shows it, into docs/images/.

    python docs/images/screenshots.py [--css PATH] [--chromium PATH]

The comment is made by mvsync's own Markdown renderer from sample plans (every kind of
change, a likely rename, a warning shared by two environments, 1,000 creates folded),
rendered to HTML as GitHub renders a comment (CommonMark + the GFM extensions, line
breaks kept, ``diff`` fences coloured by their first character as GitHub's highlighter
does) and styled with GitHub's own CSS (the npm package ``github-markdown-css``:
``npm pack github-markdown-css`` and give ``--css package/github-markdown-light.css``,
or set ``GITHUB_MARKDOWN_CSS``), then photographed by headless Chromium
(``apt-get install chromium``) with no network.

Without Chromium or the CSS it says what is missing and exits 0 having written nothing:
the images in the repository stay as they are.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from markdown_it import MarkdownIt
from mdit_py_plugins.gfm import gfm_plugin

from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planner import EnvironmentPlan, Plan, build_plan
from mvsync.render.markdown import Provenance, markdown_document

HERE = Path(__file__).resolve().parent
HOOKS = "https://crm.example.com/minivoice/webhooks"
WARNING = (
    "apply will need webhook secret variable not set here: MV_WEBHOOK_SECRET (needed by "
    "'Support IVR')"
)
# GitHub's highlighter (TextMate's diff grammar) marks a line by its first character.
DIFF_CLASSES = {"+": "pl-mi1", "-": "pl-md", "!": "pl-mc"}


def _env(name: str, apps: list[DesiredApp]) -> DesiredEnvironment:
    return DesiredEnvironment(name, "https://api.minivoice.eu", "K", Path("/s"), tuple(apps))


def _remote(app_id: str, name: str, answer_url: str) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=HOOKS,
        created_at="2026-05-29T12:00:00Z",
    )


def _warned(env: EnvironmentPlan) -> EnvironmentPlan:
    return EnvironmentPlan(
        env.name,
        env.api_url,
        env.changes,
        env.manifest_fingerprint,
        env.remote_fingerprint,
        warnings=(WARNING,),
    )


def sample_plan(creates_in_prod: int = 1) -> Plan:
    ref = "${MV_WEBHOOK_SECRET}"
    staging = build_plan(
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
    prod_apps = [DesiredApp("Support IVR", "https://example.com/answer", HOOKS, ref)]
    prod_apps += [
        DesiredApp(f"Customer {i:04d} inbound", f"https://example.com/c/{i}", HOOKS)
        for i in range(creates_in_prod - 1)
    ]
    prod = build_plan(_env("prod", prod_apps), [])
    return Plan((_warned(staging), _warned(prod)))


ABOUT = Provenance(
    commits=("3f2a9c1d0e4b5a6978f1c2d3e4f5a6b7c8d9e0f1",),
    planned_at=(datetime(2026, 5, 29, 12, 0, tzinfo=UTC),),
    on_merge=True,
)


def as_github_html(markdown: str) -> str:
    """The comment's HTML as GitHub makes it: a soft line break is a <br>."""
    body = MarkdownIt("commonmark", {"breaks": True}).use(gfm_plugin).render(markdown)

    def colour(match: re.Match[str]) -> str:
        lines = match.group(2).split("\n")
        marked = [
            f'<span class="{DIFF_CLASSES[line[0]]}">{line}</span>'
            if line and line[0] in DIFF_CLASSES
            else line
            for line in lines
        ]
        return match.group(1) + "\n".join(marked) + match.group(3)

    return re.sub(r'(<code class="language-diff">)(.*?)(</code>)', colour, body, flags=re.DOTALL)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>{css}
body {{ margin: 0; background: #fff; }}
.markdown-body {{ box-sizing: border-box; max-width: 980px; margin: 0 auto; padding: 24px; }}
@media (max-width: 767px) {{ .markdown-body {{ padding: 15px; }} }}
</style></head>
<body><article class="markdown-body">{body}</article>
<script>document.title = String(document.documentElement.scrollHeight);</script>
</body></html>
"""


def _chromium(binary: str, *args: str) -> str:
    # The page is a local file and needs nothing from outside. Chromium would still
    # reach out on its own (component updates, safe browsing): as root it runs in a
    # network namespace of its own, with no network at all; else every request goes to
    # a loopback proxy that does not exist.
    isolate = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []
    done = subprocess.run(
        [*isolate, binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-pings", "--proxy-server=127.0.0.1:9",
         "--proxy-bypass-list=<-loopback>", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    return done.stdout


def screenshot(binary: str, page: Path, out: Path, width: int) -> None:
    # First the height the page takes at this width (the script puts it in the title),
    # then the picture at exactly that size.
    dom = _chromium(binary, f"--window-size={width},800", "--dump-dom", page.as_uri())
    found = re.search(r"<title>(\d+)</title>", dom)
    height = min(int(found.group(1)) if found else 2000, 16_000)
    _chromium(binary, f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri())


def _find_css(given: str | None) -> Path | None:
    candidates = [given, os.environ.get("GITHUB_MARKDOWN_CSS")]
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False)
        candidates.append(f"{root.stdout.strip()}/github-markdown-css/github-markdown-light.css")
    candidates.append("node_modules/github-markdown-css/github-markdown-light.css")
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--css", help="github-markdown-light.css of github-markdown-css")
    parser.add_argument("--chromium", help="the Chromium binary")
    parser.add_argument("--out", default=str(HERE), help="where the PNG files go")
    args = parser.parse_args()
    binary = args.chromium or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    css = _find_css(args.css)
    if binary is None or css is None:
        missing = "Chromium (apt-get install chromium)" if binary is None else ""
        if css is None:
            missing += (" and " if missing else "") + "GitHub's CSS (--css, see --help)"
        print(f"screenshots skipped: no {missing}; nothing written", file=sys.stderr)
        return 0
    shots = {
        "plan-comment.png": (sample_plan(), 980),
        "plan-comment-narrow.png": (sample_plan(), 420),
        "plan-comment-folded.png": (sample_plan(creates_in_prod=1000), 980),
    }
    out_dir = Path(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        for name, (plan, width) in shots.items():
            markdown = markdown_document(plan, about=ABOUT)
            page = Path(scratch) / f"{name}.html"
            body = as_github_html(markdown)
            page.write_text(PAGE.format(css=css.read_text(), body=body), encoding="utf-8")
            (out_dir / name.replace(".png", ".md")).write_text(markdown, encoding="utf-8")
            screenshot(binary, page, out_dir / name, width)
            print(f"wrote {out_dir / name} ({width} px wide)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
