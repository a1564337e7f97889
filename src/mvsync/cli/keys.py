"""``mvsync keys list`` and ``mvsync keys show``: the key ledger of one environment (SPEC 5.3).

Neither calls the MiniVoice API nor needs its API key; the environment is resolved
leniently (``mvsync.manifest.resolve_ledger_place``), so only the variables of its
``secrets_file`` are needed. ``keys show`` is the one command that writes a key to
its output: exactly the key and a newline, for ``| gh secret set NAME``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from mvsync.cli.identity import identity_option
from mvsync.cli.keys_add import add
from mvsync.cli.keys_deliver import deliver
from mvsync.cli.options import env_option, manifest_option, manifest_path
from mvsync.cli.pipe import write_result

if TYPE_CHECKING:
    from mvsync.apply.ledger import Ledger, LedgerEntry
    from mvsync.manifest import Manifest


@click.group()
def keys() -> None:
    """The key ledger of an environment: list its entries, or print one key.

    \b
    mvsync keys list --env prod [--format json]
    mvsync keys show --env prod "Support IVR" -i key.txt | gh secret set SUPPORT_IVR_KEY
    printf '%s' "$KEY" | mvsync keys add --env prod "Support IVR"
    mvsync keys deliver --env prod [NAME]... [-i key.txt]   (hands keys to the key_sink)
    list and show call no MiniVoice API and need no API key. See docs/keys.md.
    """


keys.add_command(add)
keys.add_command(deliver)


def _ledger_of(
    ctx: click.Context, env: str, manifest: Manifest | None = None
) -> tuple[str, Ledger | None]:
    """Where ENV's ledger is, and the ledger (``None`` when there is none yet)."""
    from mvsync.apply.ledger import local_only, push_advice, read_ledger
    from mvsync.manifest import load_manifest, resolve_ledger_place
    from mvsync.render import text_of

    if manifest is None:
        manifest = load_manifest(manifest_path(ctx))
    place = resolve_ledger_place(manifest, env, os.environ.get)
    ledger = read_ledger(place)
    local = local_only(place, ledger)
    if local:  # the database's ledger is not all there is: say where the rest is
        click.echo(f"note: {text_of(push_advice(place, len(local)))}", err=True)
    return (ledger.location if ledger is not None else str(place.secrets_path)), ledger


@keys.command("list")
@manifest_option
@env_option("The environment whose ledger to list.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for programs.",
)
@click.pass_context
def list_(ctx: click.Context, env: str, output_format: str) -> int:
    """List the entries of ENV's key ledger: name, id, created_at, state; never a key.

    State: plain, sealed or not-captured (in JSON: not_captured).
    """
    import json

    from mvsync.manifest import load_manifest
    from mvsync.render import id_of, name_of, text_of

    manifest = load_manifest(manifest_path(ctx))
    where, found = _ledger_of(ctx, env, manifest)
    entries = found.entries if found is not None else ()
    # With a key_sink: whether and when each key was delivered.
    config = manifest.environments.get(env)
    delivery = config is not None and bool(config.key_sink)
    if output_format == "json":
        document = {
            "format_version": 1,
            "environment": env,
            "keys": [entry.to_json(delivery=delivery) for entry in entries],
        }
        write_result(json.dumps(document, ensure_ascii=True) + "\n")
        return 0
    if found is None:
        write_result(f"environment {name_of(env)}: no key ledger yet ({text_of(where)})\n")
        return 0
    if not entries:
        write_result(f"environment {name_of(env)}: no entries ({text_of(found.location)})\n")
        return 0
    rows = [
        (
            name_of(e.name),
            id_of(e.id),
            text_of(e.created_at or "-"),
            e.state.replace("_", "-") + (_delivery_text(e) if delivery else ""),
        )
        for e in entries
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[3]]) + "\n")
    write_result("".join(lines))
    return 0


def _delivery_text(entry: LedgerEntry) -> str:
    if not entry.held:
        return ""
    return f"  delivered {entry.delivered_at}" if entry.delivered_at else "  not-delivered"


@keys.command("show")
@manifest_option
@env_option("The environment of the application.")
@identity_option
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, env: str, identity: str | None, name: str) -> int:
    """Print the API key of application NAME in ENV, and a newline: nothing else.

    \b
    A sealed key needs the age identity: -i FILE, -i - (read from stdin), or,
    without -i, MVSYNC_AGE_IDENTITY (its text, as a CI secret holds it) or
    MVSYNC_AGE_IDENTITY_FILE. Pipe the key into a secret store:
    mvsync keys show --env prod "Support IVR" -i key.txt | gh secret set SUPPORT_IVR_KEY
    """
    from mvsync.apply.ledger import open_key
    from mvsync.cli.identity import WAYS, identity_source
    from mvsync.errors import SecretsError

    where, found = _ledger_of(ctx, env)
    if found is None:
        raise SecretsError(f"environment {env!r}: no key ledger yet ({where})")
    key = open_key(found, name, identity_source(identity), WAYS)
    write_result(key + "\n")
    return 0
