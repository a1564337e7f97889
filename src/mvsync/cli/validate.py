"""``mvsync validate``: check the manifest offline (owner: manifest work, issue 3)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option, manifest_path
from mvsync.errors import UsageError


@click.command()
@manifest_option
@click.pass_context
def validate(ctx: click.Context) -> int:
    """Check the manifest: no network, no variables needed."""
    raise UsageError(f"validate is not built yet ({manifest_path(ctx)})")
