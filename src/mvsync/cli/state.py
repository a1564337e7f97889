"""``mvsync state push``: the local secrets file of an environment into its database."""

from __future__ import annotations

import os

import click

from mvsync.cli.options import env_option, lock_timeout_option, manifest_option, manifest_path


@click.group()
def state() -> None:
    """The shared state of environments with state_url (PostgreSQL)."""


@state.command()
@manifest_option
@env_option("The environment to push.")
@lock_timeout_option
@click.pass_context
def push(ctx: click.Context, env: str, lock_timeout: float) -> int:
    """Copy ENV's local secrets file into its state_url database.

    \b
    Plain keys are sealed to the environment's recipients on the way; entries the
    database already has are left as they are (an entry it records as "key not
    captured" gets the key the local file holds for that id); the local file is not
    changed.
    Needs no API key: only the variables state_url uses.
    """
    from mvsync.apply.push import push_state
    from mvsync.escape import escape
    from mvsync.manifest import load_manifest, resolve_environment

    lookup = os.environ.get
    desired = resolve_environment(load_manifest(manifest_path(ctx)), env, lookup)
    result = push_state(desired, lookup, lock_timeout=lock_timeout)
    sealed = f", {result.sealed} plain key(s) sealed on the way" if result.sealed else ""
    if result.filled:
        sealed += f", {len(result.filled)} key(s) filled in where the database had none"
    click.echo(
        f"Pushed {len(result.added)} entr{'y' if len(result.added) == 1 else 'ies'} of "
        f"{escape(str(result.source))} to {escape(result.location)}{sealed}; "
        f"{result.already} already there, left as they are. The local file is unchanged."
    )
    return 0
