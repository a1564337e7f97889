"""The ``mvsync`` click group and its commands, listed in the order of the work."""

from __future__ import annotations

import sys

import click

from mvsync.cli import apply as apply_cmd
from mvsync.cli import check as check_cmd
from mvsync.cli import emulator as emulator_cmd
from mvsync.cli import envs as envs_cmd
from mvsync.cli import import_ as import_cmd
from mvsync.cli import keys as keys_cmd
from mvsync.cli import keys_add as keys_add_cmd
from mvsync.cli import plan as plan_cmd
from mvsync.cli import schema as schema_cmd
from mvsync.cli import show as show_cmd
from mvsync.cli import state as state_cmd
from mvsync.cli import validate as validate_cmd
from mvsync.cli.options import Settings, manifest_option


class _WorkflowOrder(click.Group):
    """Lists the commands in the order of the work, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from mvsync.buildinfo import version_line

    click.echo(version_line())
    ctx.exit()


@click.group(cls=_WorkflowOrder, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_version,
    help="Show the version and the commit it was built from, and exit.",
)
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
        import logging  # only with --debug: logging is not imported by every command

        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="debug: %(name)s: %(message)s"
        )


# One line each in `mvsync --help`, short enough that click never cuts it mid-sentence
# (it trims a docstring's first sentence to ~45 characters on an 80-column terminal).
_SHORT_HELP: tuple[tuple[click.Command, str], ...] = (
    (validate_cmd.validate, "Check the manifest (offline, no variables)."),
    (plan_cmd.plan, "Show what differs from the live applications."),
    (apply_cmd.apply, "Create what is missing, once; store the keys."),
    (check_cmd.check, "Preflight the answer and webhook URLs."),
    (show_cmd.show, "Render saved plans as one document, offline."),
    (keys_cmd.keys, "List an env's key ledger, print, add or deliver a key."),
    (state_cmd.state, "Shared state in PostgreSQL: state push."),
    (import_cmd.import_, "Print a manifest of what exists in an env."),
    (envs_cmd.envs, "List the manifest's environments."),
    (schema_cmd.schema, "Print the manifest's JSON Schema."),
    (emulator_cmd.emulator, "Run a local MiniVoice API (no account)."),
)
for _command, _short in _SHORT_HELP:
    _command.short_help = _short
    cli.add_command(_command)
keys_cmd.keys.add_command(keys_add_cmd.add)
