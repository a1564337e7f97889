"""``mvsync envs`` (owner: issue 6)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option
from mvsync.errors import UsageError


@click.command()
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for CI matrices.")
@click.pass_context
def envs(ctx: click.Context, as_json: bool) -> int:
    """List the manifest's environments."""
    raise UsageError("envs is not built yet")
