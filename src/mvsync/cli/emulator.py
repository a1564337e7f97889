"""``mvsync emulator`` (owner: issue 2). Imports mvsync.emulator lazily: the core never does."""

from __future__ import annotations

import click

from mvsync.errors import UsageError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True)
@click.option("--state", "state_file", type=click.Path(dir_okay=False), help="Keep the data in this file across restarts.")
@click.option("--api-key", "api_keys", multiple=True, help="Accept this bearer key (one customer per key; repeatable).")
def emulator(host: str, port: int, state_file: str | None, api_keys: tuple[str, ...]) -> int:
    """Run a local MiniVoice API on loopback (no account needed)."""
    raise UsageError("emulator is not built yet")
