"""``mvsync import``: a manifest of the applications that exist in one environment (issue 6).

Where the environment's settings come from:

- by default, from the manifest (``-f``, ``MVSYNC_FILE`` or ``./mvsync.yaml``): ``--env E``
  names one of its environments, whose ``api_url`` and ``api_key_env`` are used. Only
  those: the manifest's applications, and the variables they use, are not needed. The
  ``api_url`` is written out as the manifest has it (a ``${}`` template stays one);
- with ``--api-url`` and/or ``--api-key-env``, no manifest is read (even when ``-f`` or
  ``MVSYNC_FILE`` is set): the output has one environment named E with those settings
  (defaults ``https://api.minivoice.eu`` and ``MINIVOICE_API_KEY``).

The manifest goes to ``-o FILE`` (written whole or not at all; never onto the manifest
being read) or to standard output. The text itself is made by ``mvsync.importer``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mvsync.cli.options import env_option, manifest_option, manifest_path, out_option
from mvsync.errors import MvsyncError, UsageError

if TYPE_CHECKING:
    from mvsync.importer import ImportBase


@click.command("import")
@manifest_option
@env_option("The environment to read.")
@out_option("Write the manifest here instead of stdout.")
@click.option(
    "--api-url",
    default=None,
    help="Read this API instead of the manifest's environment (no manifest needed).",
)
@click.option(
    "--api-key-env",
    default=None,
    help="The variable holding the API key, with no manifest (default MINIVOICE_API_KEY).",
)
@click.option(
    "--into",
    "into_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="An existing manifest to fit the import into: its recipients, the environment's "
    "settings (state_url, key_sink, checks...) and defaults are kept. It is read, never "
    "written.",
)
@click.pass_context
def import_(
    ctx: click.Context,
    env: str,
    out_file: str | None,
    api_url: str | None,
    api_key_env: str | None,
    into_file: str | None,
) -> int:
    """Print a manifest of the applications that exist in an environment.

    \b
    The output validates and plans as all-unchanged against the same environment.
    Webhook secrets cannot be read back: they become ${MV_WEBHOOK_SECRET}.
    A webhook_url every application shares is written once, in defaults.
    Applications that share a name are written commented out, with a note.
    With --into FILE, what the API cannot show is kept from FILE: recipients,
    the environment's settings and defaults (not its applications or comments).
    """

    from mvsync.api.client import MiniVoiceClient, RetryPolicy
    from mvsync.cli.progress import print_retry
    from mvsync.importer import import_counts, render_import
    from mvsync.manifest import API_URL_CREDENTIALS, interpolate, read_api_key, url_has_credentials
    from mvsync.model import DEFAULT_API_KEY_ENV, DEFAULT_API_URL, DesiredEnvironment, utc_stamp

    lookup = os.environ.get
    manifest_file: Path | None = None
    base: ImportBase | None = None
    if into_file is not None and (api_url is not None or api_key_env is not None):
        raise UsageError("--into takes the environment's settings from FILE: drop --api-url")
    if into_file is not None:
        manifest_file = Path(into_file)
        url_template, key_variable = _environment_settings(manifest_file, env)
        base = _base_of(manifest_file, env)
    elif api_url is None and api_key_env is None:
        manifest_file = manifest_path(ctx)
        url_template, key_variable = _environment_settings(manifest_file, env)
    else:
        url_template, key_variable = api_url or DEFAULT_API_URL, api_key_env or DEFAULT_API_KEY_ENV
        if not interpolate.VAR_NAME.match(key_variable):
            raise UsageError(f"--api-key-env: {key_variable!r} is not a variable name")
    out_path = Path(out_file) if out_file is not None else None
    if out_path is not None and manifest_file is not None and _same_file(out_path, manifest_file):
        raise UsageError(f"-o {out_path} is the manifest being read: write the import elsewhere")

    # Before anything quotes the URL: a password in it must not reach the output.
    if url_has_credentials(url_template):
        raise UsageError(f"--api-url: {API_URL_CREDENTIALS}")
    try:
        missing = interpolate.missing_variables(url_template, lookup)
    except interpolate.TemplateSyntaxError as error:
        raise UsageError(f"api_url {url_template!r}: {error}") from None
    if missing:
        raise MvsyncError(
            f"environment {env!r}: api_url needs the variable(s) {', '.join(missing)}"
        )
    resolved_url = interpolate.expand(url_template, lookup)
    if url_has_credentials(resolved_url):
        raise MvsyncError(f"environment {env!r}: {API_URL_CREDENTIALS} (the value is not shown)")
    target = DesiredEnvironment(env, resolved_url, key_variable, Path(), ())
    retry = RetryPolicy(on_retry=print_retry)
    with MiniVoiceClient(resolved_url, read_api_key(target, lookup), retry=retry) as client:
        remote_apps = client.list_applications()

    generated_at = utc_stamp()
    text = render_import(
        env, url_template, remote_apps, generated_at, api_key_env=key_variable, base=base
    )
    if out_path is None:
        click.echo(text, nl=False)
    else:
        _write_whole(out_path, text)
        imported, left_out = import_counts(remote_apps)
        noun = "application" if imported == 1 else "applications"
        note = (
            f" ({left_out} more written as comments: a shared name or a URL the manifest refuses)"
            if left_out
            else ""
        )
        click.echo(f"mvsync: wrote {imported} {noun} to {out_path}{note}", err=True)
    return 0


def _environment_settings(manifest_file: Path, env: str) -> tuple[str, str]:
    """The ``api_url`` template and ``api_key_env`` of ``env`` in the manifest."""
    from mvsync.manifest import load_manifest, unknown_environment

    manifest = load_manifest(manifest_file)
    if env not in manifest.environments:
        raise unknown_environment(env, list(manifest.environments))
    config = manifest.environments[env]
    return config.api_url, config.api_key_env


def _base_of(manifest_file: Path, env: str) -> ImportBase:
    """What ``--into FILE`` keeps: its raw values (``${}`` stay templates), validated."""
    from mvsync.importer import ImportBase
    from mvsync.manifest import read_manifest

    _text, data = read_manifest(manifest_file)  # validated just before, by load_manifest
    defaults = data.get("defaults") or {}
    return ImportBase(
        source=str(manifest_file),
        environment=dict(data["environments"][env] or {}),
        recipients=data.get("recipients"),
        defaults=dict(defaults),
    )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve() or first.samefile(second)
    except OSError:
        return False


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: all or nothing."""
    import stat

    try:
        # Only a regular file is replaced: a FIFO or a device named by mistake is refused.
        if not stat.S_ISREG(path.stat().st_mode):
            raise MvsyncError(f"refusing to overwrite {path}: it is not a regular file")
    except FileNotFoundError:
        pass
    except OSError as error:
        raise MvsyncError(f"{path}: cannot write: {error.strerror}") from None
    from mvsync.files import UnwritableFileError, write_atomic

    try:
        write_atomic(path, text.encode("utf-8"), 0o644)
    except UnwritableFileError as error:
        raise MvsyncError(f"{path}: cannot write: {error.reason}") from None
