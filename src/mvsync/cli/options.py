"""Options shared by several commands, each defined once."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mvsync.errors import UsageError

if TYPE_CHECKING:
    from mvsync.manifest import Manifest
    from mvsync.model import DesiredEnvironment
    from mvsync.sink import SinkRunner

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MANIFEST = "mvsync.yaml"
MANIFEST_VARIABLE = "MVSYNC_FILE"


@dataclass
class Settings:
    """What the group's options leave for the commands."""

    debug: bool = False
    manifest: str | None = None


def _remember_manifest(
    ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    # -f/--file is accepted before or after the command name: the group and
    # every command share this callback, and the value given last wins.
    if value is not None:
        ctx.ensure_object(Settings).manifest = value
    return value


def manifest_option(func: F) -> F:
    """``-f/--file PATH`` (or ``MVSYNC_FILE``): the manifest to read."""
    return click.option(
        "-f",
        "--file",
        "manifest_file",
        default=None,
        expose_value=False,
        callback=_remember_manifest,
        help=f"Manifest file (default {DEFAULT_MANIFEST}; env MVSYNC_FILE).",
    )(func)


def format_option(func: F) -> F:
    """``--format text|json|markdown``: how a plan is written (docs/plan-format.md)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="text for people, json for programs, markdown for a pull-request comment.",
    )(func)


def manifest_path(ctx: click.Context) -> Path:
    """The manifest: ``-f`` (after the command name, else before it), else ``MVSYNC_FILE``,
    else ``mvsync.yaml``. A flag always beats the variable, wherever the flag stands."""
    chosen = ctx.ensure_object(Settings).manifest or os.environ.get(MANIFEST_VARIABLE)
    return Path(chosen if chosen else DEFAULT_MANIFEST)


# Seconds read from the environment, for CI and tests; each documented where it is used.
API_DEADLINE_VARIABLE = "MVSYNC_API_DEADLINE"


# The longest wait any variable may ask for (about 11.6 days): longer ones overflow the
# clock arithmetic of sleeps and timeouts (``time.sleep(1e308)`` raises OverflowError).
MAX_SECONDS = 1_000_000.0


def env_seconds(name: str, default: float, *, positive: bool = False) -> float:
    """A number of seconds from variable ``name`` (``default`` when unset or empty)."""
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    valid = (value > 0 if positive else value >= 0) and value <= MAX_SECONDS
    if not valid:
        kind = "a positive number of seconds" if positive else "a number of seconds >= 0"
        raise UsageError(f"{name} must be {kind}, at most {MAX_SECONDS:,.0f}")
    return value


def environments_hint(ctx: click.Context) -> str:
    """What to pass to ``--env``: the manifest's environment names, when it can be read."""
    from mvsync.errors import MvsyncError
    from mvsync.manifest import environment_names, load_manifest

    path = manifest_path(ctx)
    try:
        names = environment_names(load_manifest(path))
    except MvsyncError:
        return "mvsync envs lists the manifest's environments"
    if not names:
        return f"{path} has no environment yet"
    return f"{path} has: {', '.join(names)} (e.g. --env {names[0]})"


class _EnvOption(click.Option):
    """A required ``--env`` whose "missing" error lists the environments to choose from.

    Click processes the options given before those missing, so a ``-f`` after the
    command name is already known when this one finds itself missing."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.MissingParameter:
            if ctx.resilient_parsing:
                raise
            raise click.MissingParameter(
                environments_hint(ctx), ctx=ctx, param=self, param_type="option"
            ) from None


def lock_timeout_option(func: F) -> F:
    """``--lock-timeout S``: how long a command that takes the environment's lock (apply,
    ``state push``, ``keys add``, ``keys deliver``) waits for another holder (default 0)."""
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="Seconds to wait for the environment's lock if another run holds it.",
    )(func)


def env_option(help_text: str, *, multiple: bool = False) -> Callable[[F], F]:
    """``--env NAME``: the environment a command works on (required unless ``multiple``)."""

    def decorate(func: F) -> F:
        if multiple:
            return click.option("--env", "envs", multiple=True, help=help_text)(func)
        return click.option("--env", "env", required=True, help=help_text, cls=_EnvOption)(func)

    return decorate


def out_option(help_text: str) -> Callable[[F], F]:
    """``-o/--out FILE``: where a command writes its document."""

    def decorate(func: F) -> F:
        return click.option(
            "-o", "--out", "out_file", type=click.Path(dir_okay=False), help=help_text
        )(func)

    return decorate


def key_sink_of(manifest: Manifest, desired: DesiredEnvironment, path: Path) -> SinkRunner | None:
    """The key sink of ``desired`` ready to run (None without one): its program found, every
    secret of the manifest to mask, ``MVSYNC_SINK_TIMEOUT`` seconds per run."""
    from mvsync.manifest import secret_values
    from mvsync.sink import DEFAULT_TIMEOUT, TIMEOUT_VARIABLE, runner_for

    timeout = env_seconds(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT, positive=True)
    secrets = secret_values(manifest, os.environ.get)
    return runner_for(desired, path.parent.absolute(), secrets, timeout)
