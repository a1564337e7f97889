"""``mvsync keys add --env E NAME``: record a key from stdin for application NAME.

Thin: reads the key (never from an argument: ``ps`` would show it), resolves the
environment as apply does, and hands the work to ``mvsync.apply.add_key``.
"""

from __future__ import annotations

import os
import sys

import click

from mvsync.cli.options import (
    API_DEADLINE_VARIABLE,
    env_option,
    env_seconds,
    key_sink_of,
    lock_timeout_option,
    manifest_option,
    manifest_path,
)
from mvsync.cli.pipe import write_result

# Longer than any API key; what is longer is not one key.
_MAX_KEY_BYTES = 4096


def read_key_from_stdin() -> str:
    """One key from stdin: a hidden prompt on a terminal, else the whole input with one
    trailing newline removed. Refuses (without showing it) what cannot be a key."""
    from mvsync.api.safety import check_api_key
    from mvsync.errors import MvsyncError

    if sys.stdin.isatty():
        text = click.prompt("API key", hide_input=True, err=True)
    else:
        raw = sys.stdin.buffer.read(_MAX_KEY_BYTES + 1)
        if len(raw) > _MAX_KEY_BYTES:
            raise MvsyncError(
                f"stdin holds more than {_MAX_KEY_BYTES} bytes: give exactly one key "
                "(printf '%s' \"$KEY\" | mvsync keys add ...); nothing was recorded"
            )
        text = raw.decode("ascii", errors="replace")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
    try:
        check_api_key(text)
    except MvsyncError as error:
        raise MvsyncError(
            f"stdin does not hold one API key: {error}; give exactly the key, on one line; "
            "nothing was recorded"
        ) from None
    return text


@click.command("add")
@manifest_option
@env_option("The environment of the application.")
@click.option("--id", "app_id", help="The application's id (default: the entry's, or the list's).")
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the key the entry holds (the replaced one is kept, sealed, in its history).",
)
@lock_timeout_option
@click.argument("name")
@click.pass_context
def add(
    ctx: click.Context, env: str, app_id: str | None, replace: bool, lock_timeout: float, name: str
) -> int:
    """Record the API key on stdin for application NAME of ENV, and deliver it.

    \b
    For a key mvsync did not capture ("key not captured") or an application made in
    the console ("key missing"):
      printf '%s' "$KEY" | mvsync keys add --env prod "Support IVR"
    The key is checked with MiniVoice first (one list with it as the bearer must
    show this account and application), sealed when ENV has recipients, and handed
    to ENV's key_sink. A key already held is refused unless --replace. Needs ENV's
    API key variable, as apply does. See docs/keys.md.
    """
    from pydantic import SecretStr

    from mvsync.api.client import MiniVoiceClient, RetryPolicy
    from mvsync.apply.add_key import AddRequest, add_key
    from mvsync.apply.stores import open_store
    from mvsync.manifest import load_manifest, read_api_key, resolve_environment
    from mvsync.render import id_of, name_of, text_of
    from mvsync.sealing import sealer_for

    lookup = os.environ.get
    path = manifest_path(ctx)
    manifest = load_manifest(path)
    desired = resolve_environment(manifest, env, lookup)
    api_key = read_api_key(desired, lookup)
    sink = key_sink_of(manifest, desired, path)
    if sink is not None:
        sink.check()
    key = SecretStr(read_key_from_stdin())
    timeout = env_seconds("MVSYNC_HTTP_TIMEOUT", 10.0, positive=True)
    retry = RetryPolicy(deadline=env_seconds(API_DEADLINE_VARIABLE, 60.0, positive=True))

    def client_for(bearer: str) -> MiniVoiceClient:
        return MiniVoiceClient(desired.api_url, bearer, timeout=timeout, retry=retry)

    with client_for(api_key) as client:
        result = add_key(
            AddRequest(name, key, app_id, replace),
            open_store(desired, lookup),
            client,
            client_for,
            seal=sealer_for(desired.recipients),
            sink=sink,
            lock_timeout=lock_timeout,
            environment=env,
            note=lambda text: click.echo(f"note: {text_of(text)}", err=True),
        )
    how = "replaced (the old key is in the entry's history)" if result.replaced else "recorded"
    sealed = "sealed, " if result.sealed else ""
    lines = [
        f"{name_of(result.name)} ({id_of(result.app_id)}): key {how}, {sealed}in "
        f"{text_of(result.location)}."
    ]
    if result.delivered is True:
        lines.append("Delivered to the key sink.")
    elif result.delivered is False:
        lines.append(f"Not delivered to the key sink: mvsync keys deliver --env {env} retries.")
    write_result("\n".join(lines) + "\n")
    return 0 if result.delivered is not False else 1
