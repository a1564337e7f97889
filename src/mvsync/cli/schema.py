"""``mvsync schema``: print the manifest's JSON Schema (owner: issue 3)."""

from __future__ import annotations

import click

from mvsync.errors import UsageError


@click.command()
def schema() -> int:
    """Print the manifest's JSON Schema (draft 2020-12)."""
    raise UsageError("schema is not built yet")
