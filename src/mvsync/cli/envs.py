"""``mvsync envs``: the manifest's environment names, for scripts and CI matrices (issue 6)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option, manifest_path


@click.command()
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list on one line, for CI matrices.")
@click.pass_context
def envs(ctx: click.Context, as_json: bool) -> int:
    """List the manifest's environments, in file order, one per line.

    \b
    Offline, like validate: the manifest is checked, no variable is needed.
    In GitHub Actions:  echo "names=$(mvsync envs --json)" >> "$GITHUB_OUTPUT"
    """
    import json

    from mvsync.manifest import environment_names, load_manifest

    names = environment_names(load_manifest(manifest_path(ctx)))
    if as_json:
        click.echo(json.dumps(names, ensure_ascii=False))
    else:
        for name in names:
            click.echo(name)
    return 0
