"""``mvsync validate``: check the manifest offline (owner: manifest work, issue 3).

No network and no variables. Every problem is printed on stderr as
``path:line:col: message`` (all of them, sorted), and with ``GITHUB_ACTIONS=true``
also as a ``::error`` workflow command so that GitHub marks the lines in the diff.
"""

from __future__ import annotations

import os
import traceback

import click

from mvsync.cli.options import Settings, manifest_option, manifest_path


def github_annotation(path: str, line: int, column: int, message: str) -> str:
    """One ``::error`` workflow command (properties and message escaped as GitHub wants)."""

    def escape_data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:
        return escape_data(text).replace(":", "%3A").replace(",", "%2C")

    place = f"file={escape_property(path)}"
    if line > 0:
        place += f",line={line},col={column}"
    return f"::error {place}::{escape_data(message)}"


@click.command()
@manifest_option
@click.pass_context
def validate(ctx: click.Context) -> int:
    """Check the manifest: no network, no variables needed."""
    from mvsync.errors import ManifestError
    from mvsync.manifest import load_manifest

    path = manifest_path(ctx)
    try:
        manifest = load_manifest(path)
    except ManifestError as error:
        if ctx.ensure_object(Settings).debug:
            traceback.print_exc()
        annotate = os.environ.get("GITHUB_ACTIONS") == "true"
        for problem in error.problems:
            click.echo(str(problem), err=True)
        if annotate:
            for problem in error.problems:
                click.echo(
                    github_annotation(problem.path, problem.line, problem.column, problem.message),
                    err=True,
                )
        return 1
    apps = len(manifest.applications)
    envs = len(manifest.environments)
    click.echo(
        f"{path}: valid ({apps} application{'s' if apps != 1 else ''},"
        f" {envs} environment{'s' if envs != 1 else ''})"
    )
    return 0
