"""``mvsync validate``: check the manifest offline (owner: manifest work, issue 3).

No network and no variables. A ``ManifestError`` is reported by the CLI's boundary
(``mvsync.cli.report_manifest_error``): every problem as ``path:line:col: message``,
sorted, and with ``GITHUB_ACTIONS=true`` also as ``::error`` workflow commands.
"""

from __future__ import annotations

import click

from mvsync.cli.options import manifest_option, manifest_path


@click.command()
@manifest_option
@click.pass_context
def validate(ctx: click.Context) -> int:
    """Check the manifest: no network, no variables needed."""
    from mvsync.manifest import load_manifest

    path = manifest_path(ctx)
    # A ManifestError goes to the CLI's boundary, which prints every problem located
    # (and as GitHub annotations in Actions) for every command alike.
    manifest = load_manifest(path)
    apps = len(manifest.applications)
    envs = len(manifest.environments)
    click.echo(
        f"{path}: valid ({apps} application{'s' if apps != 1 else ''},"
        f" {envs} environment{'s' if envs != 1 else ''})"
    )
    return 0
