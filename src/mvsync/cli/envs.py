"""``mvsync envs``: the manifest's environment names, for scripts and CI matrices (issue 6)."""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option, manifest_path


@click.command()
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list on one line, for CI matrices.")
@click.option(
    "--exclude-loopback",
    is_flag=True,
    help="Leave out environments whose api_url is a loopback host (the local emulator), "
    "which a CI runner cannot reach.",
)
@click.pass_context
def envs(ctx: click.Context, as_json: bool, exclude_loopback: bool) -> int:
    """List the manifest's environments, in file order, one per line.

    \b
    Offline, like validate: the manifest is checked, no variable is needed.
    With --exclude-loopback an api_url is expanded with the variables that are set
    (a ${VAR:-default} takes its default otherwise); one whose variables are not
    all set is kept. In GitHub Actions:
      echo "names=$(mvsync envs --json --exclude-loopback)" >> "$GITHUB_OUTPUT"
    """
    import json
    import os

    from mvsync.manifest import environment_names, is_loopback_environment, load_manifest

    manifest = load_manifest(manifest_path(ctx))
    names = environment_names(manifest)
    if exclude_loopback:
        names = [n for n in names if not is_loopback_environment(manifest, n, os.environ.get)]
    if as_json:
        click.echo(json.dumps(names, ensure_ascii=False))
    else:
        for name in names:
            click.echo(name)
    return 0
