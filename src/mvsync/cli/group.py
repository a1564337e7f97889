"""The ``mvsync`` click group and its commands, listed in the order of the work."""

from __future__ import annotations

import logging
import sys

import click

from mvsync import __version__
from mvsync.cli import apply as apply_cmd
from mvsync.cli import emulator as emulator_cmd
from mvsync.cli import envs as envs_cmd
from mvsync.cli import import_ as import_cmd
from mvsync.cli import plan as plan_cmd
from mvsync.cli import schema as schema_cmd
from mvsync.cli import state as state_cmd
from mvsync.cli import validate as validate_cmd
from mvsync.cli.options import Settings, manifest_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mvsync")
@manifest_option
@click.option("--debug", is_flag=True, help="Show debug logs and tracebacks (secrets masked).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """GitOps for MiniVoice applications: keep every environment equal to a YAML manifest.

    \b
    Exit status: 0 done; 1 error (including usage errors);
    2 changes pending (plan --detailed-exitcode only); 130 interrupted.
    """
    settings = ctx.ensure_object(Settings)
    settings.debug = settings.debug or debug
    if settings.debug:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="debug: %(name)s: %(message)s"
        )


for _command in (
    validate_cmd.validate,
    schema_cmd.schema,
    plan_cmd.plan,
    apply_cmd.apply,
    import_cmd.import_,
    envs_cmd.envs,
    emulator_cmd.emulator,
    state_cmd.state,
):
    cli.add_command(_command)
