"""``mvsync schema``: print the manifest's JSON Schema (owner: issue 3)."""

from __future__ import annotations

import click


@click.command()
def schema() -> int:
    """Print the manifest's JSON Schema (draft 2020-12), for editors and CI."""
    import json

    from mvsync.manifest import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0
