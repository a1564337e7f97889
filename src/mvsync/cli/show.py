"""``mvsync show FILE...`` (SPEC section 4): render saved plans, with no network and no
variable.

Each matrix job of a CI run saves its plan (``mvsync plan --env E -o plan-E.json``); the
comment job renders all of them at once: ``mvsync show plan-*.json --format markdown``
is ONE pull-request comment for every environment, within GitHub's limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mvsync.cli.options import format_option


@click.command()
@click.argument(
    "plan_files", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="FILE..."
)
@format_option
@click.option(
    "--on-merge",
    is_flag=True,
    help="Markdown: say that merging the pull request applies these plans, in this order "
    "(as the CI recipe's apply job does).",
)
def show(plan_files: tuple[str, ...], output_format: str, on_merge: bool) -> int:
    """Render saved plans (plan -o FILE) as one document, offline.

    \b
    Saved check results (check -o FILE) may be given too: they are rendered after
    the plans, in the same one document.

    \b
    No network and no variable is needed: the plans hold everything shown. Several
    files make one document, in the order given; with --format markdown, one
    pull-request comment for every environment, under GitHub's 65,535 characters.
    An environment in two files is refused. The Markdown says at which commit and when
    the plans were made.
    """
    from mvsync.errors import PlanFileError
    from mvsync.planfile import read_plan
    from mvsync.planfile_show import plan_of
    from mvsync.render import RENDERERS, render_markdown
    from mvsync.render.markdown import Provenance

    saved, checks = [], []
    for name in plan_files:
        try:
            saved.append(read_plan(Path(name)))
        except PlanFileError:
            from mvsync.check.results import read_report

            report = read_report(Path(name))  # a saved check result, or None
            if report is None:
                raise
            checks.append(report)
    about = Provenance(
        commits=tuple(s.commit for s in saved if s.commit),
        planned_at=tuple(s.created_at for s in saved),
        on_merge=on_merge,
    )
    if checks:
        from mvsync.render.check import merged, render_beside_plan

        plan = plan_of(saved) if saved else None
        render_beside_plan(output_format, plan, merged(checks), sys.stdout, about=about)
    elif output_format == "markdown":
        render_markdown(plan_of(saved), sys.stdout, about=about)
    else:
        RENDERERS[output_format](plan_of(saved), sys.stdout)
    sys.stdout.flush()
    return 0
