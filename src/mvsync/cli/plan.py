"""``mvsync plan`` (owner: issue 4)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option
from mvsync.errors import UsageError


@click.command()
@manifest_option
@click.option("--env", "envs", multiple=True, help="Plan this environment (repeatable; default all).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("-o", "--out", "out_file", type=click.Path(dir_okay=False), help="Also save the plan (JSON) here.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when any create, drift or ambiguous is present.")
@click.pass_context
def plan(ctx: click.Context, envs: tuple[str, ...], output_format: str, out_file: str | None, detailed_exitcode: bool) -> int:
    """Show what differs between the manifest and the live applications."""
    raise UsageError("plan is not built yet")
