"""The ``mvsync`` click group and its commands, listed in the order of the work."""

from __future__ import annotations

import importlib
import sys

import click

from mvsync.cli.options import Settings, manifest_option

# Each command: its name, the module of mvsync.cli that defines it in a function of the
# same name (imported only when that command runs, or when help lists them all), and its
# line in `mvsync --help`, short enough that click never cuts it mid-sentence (it trims a
# docstring's first sentence to ~45 characters on an 80-column terminal). In work order.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("validate", "validate", "Check the manifest (offline, no variables)."),
    ("plan", "plan", "Show what differs from the live applications."),
    ("apply", "apply", "Create what is missing, once; store the keys."),
    ("check", "check", "Preflight the answer and webhook URLs."),
    ("show", "show", "Render saved plans as one document, offline."),
    ("keys", "keys", "List an env's key ledger, print, add or deliver a key."),
    ("state", "state", "Shared state in PostgreSQL: state push."),
    ("import", "import_", "Print a manifest of what exists in an env."),
    ("envs", "envs", "List the manifest's environments."),
    ("schema", "schema", "Print the manifest's JSON Schema."),
    ("emulator", "emulator", "Run a local MiniVoice API (no account)."),
)


class _LazyWorkflowGroup(click.Group):
    """Lists the commands in the order of the work, and imports a command's module only
    when it is asked for: ``mvsync plan`` does not import apply, keys or the emulator."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, *_ in _COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            for name, module, short_help in _COMMANDS:
                if name == cmd_name:
                    loaded = importlib.import_module(f"mvsync.cli.{module}")
                    command: click.Command = getattr(loaded, module)
                    command.short_help = short_help
                    self.add_command(command, name)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.list_commands(ctx):
            # Not a command: load them all, so that click's "Did you mean" sees every name.
            for name in self.list_commands(ctx):
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from mvsync.buildinfo import version_line

    click.echo(version_line())
    ctx.exit()


@click.group(cls=_LazyWorkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
