"""``mvsync import`` (owner: issue 6)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option
from mvsync.errors import UsageError


@click.command("import")
@manifest_option
@click.option("--env", "env", required=True, help="The environment to read.")
@click.option("-o", "--out", "out_file", type=click.Path(dir_okay=False), help="Write the manifest here instead of stdout.")
@click.pass_context
def import_(ctx: click.Context, env: str, out_file: str | None) -> int:
    """Print a manifest of the applications that exist in an environment."""
    raise UsageError("import is not built yet")
