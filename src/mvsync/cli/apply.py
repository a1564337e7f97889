"""``mvsync apply`` (owner: issue 5)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option
from mvsync.errors import UsageError


@click.command()
@manifest_option
@click.option("--env", "env", required=True, help="The environment to apply.")
@click.option("--yes", is_flag=True, help="Do not ask before creating.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), help="Apply exactly this saved plan.")
@click.option("--max-creates", type=click.IntRange(min=0), default=None, help="Refuse a plan with more creates.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=4, show_default=True)
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Seconds to wait for another apply's lock.")
@click.pass_context
def apply(ctx: click.Context, env: str, yes: bool, plan_file: str | None, max_creates: int | None, concurrency: int, lock_timeout: float) -> int:
    """Create what the manifest wants and the environment lacks, exactly once."""
    raise UsageError("apply is not built yet")
