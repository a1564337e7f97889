"""The one error boundary: every ``MvsyncError`` and usage error becomes one line on
stderr and an exit status defined here. Exit status 2 is reserved for
``plan --detailed-exitcode`` ("there are changes"); 130 for an interrupted apply.
A closed standard output: see ``mvsync.cli.pipe``.
A traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from mvsync.cli.group import cli
from mvsync.cli.options import Settings
from mvsync.cli.pipe import silence
from mvsync.cli.status import EXIT_ERROR, EXIT_INTERRUPTED
from mvsync.errors import AbortedError, ManifestError, MvsyncError
from mvsync.escape import escape


def _error(message: str) -> None:
    # A message may quote a name, an id or a path from outside: escaped, line by line,
    # so that none of them can act on the terminal or the CI log.
    for line in message.splitlines() or [""]:
        click.echo(f"mvsync: error: {escape(line)}" if line else "mvsync: error", err=True)


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


def report_manifest_error(error: ManifestError) -> None:
    """Every problem as ``path:line:col: message`` on stderr, whatever the command; in
    GitHub Actions also as ``::error`` annotations that mark the lines in the diff."""
    for problem in error.problems:
        click.echo(escape(str(problem)), err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for problem in error.problems:
            annotation = github_annotation(
                escape(problem.path), problem.line, problem.column, escape(problem.message)
            )
            click.echo(annotation, err=True)


def _print_traceback() -> None:
    # --debug only: traceback (and the tokenize and linecache it loads) is not imported
    # by a run that never prints one.
    import traceback

    traceback.print_exc()


def _stop_before_creating(_signum: int, _frame: object) -> None:
    raise AbortedError("interrupted: nothing was created", exit_code=EXIT_INTERRUPTED)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the CLI and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "apply" in args and argv is None:
        # apply's own handler is installed once its imports are done (~0.6 s): until
        # then a SIGTERM (a CI cancel) must still exit 130 with a word, not die with 143.
        import signal

        signal.signal(signal.SIGTERM, _stop_before_creating)
    if "--debug" in args:
        # Accepted anywhere on the line, like -f: it is the group's flag.
        args = ["--debug", *(arg for arg in args if arg != "--debug")]
    debug = "--debug" in args or os.environ.get("MVSYNC_DEBUG", "") not in ("", "0")
    try:
        status = cli.main(
            args=args, prog_name="mvsync", standalone_mode=False, obj=Settings(debug=debug)
        )
    except click.exceptions.Exit as exit_:
        status = exit_.exit_code
    except click.exceptions.Abort:
        _error("aborted")
        status = EXIT_ERROR
    except click.ClickException as usage:
        # Usage errors exit 1: exit 2 means "changes pending" and nothing else.
        if debug:
            _print_traceback()
        usage.show()
        status = EXIT_ERROR
    except AbortedError as aborted:
        if debug:
            _print_traceback()
        _error(str(aborted))
        status = aborted.exit_code
    except ManifestError as invalid:
        if debug:
            _print_traceback()
        report_manifest_error(invalid)
        status = EXIT_ERROR
    except MvsyncError as error:
        if debug:
            _print_traceback()
        _error(str(error))
        status = EXIT_ERROR
    except BrokenPipeError:
        # A command whose output is its result (import, envs, schema) lost it.
        silence(sys.stdout)
        _error("standard output was closed before all of it was written")
        status = EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        status = EXIT_INTERRUPTED
    except Exception as unexpected:  # noqa: BLE001 - the one boundary: no traceback without --debug
        if debug:
            _print_traceback()
        _error(f"unexpected {type(unexpected).__name__} (run with --debug for details)")
        status = EXIT_ERROR
    sys.exit(status if isinstance(status, int) else 0)
