"""The command line: parse flags, call the core, render, return an exit code.

``group`` holds the click group and its commands, one module per command;
``boundary.main`` is the one error boundary. Each command imports the core lazily, so
that ``mvsync --help`` and ``mvsync validate`` never import httpx; ``mvsync --version``
alone on the line imports not even click (``main`` below).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mvsync.cli.boundary import report_manifest_error
    from mvsync.cli.group import cli

__all__ = ["cli", "main", "report_manifest_error"]


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the CLI and exit with its status.

    ``mvsync --version`` and nothing else is answered here, from the files
    ``mvsync.buildinfo`` reads, before click and the commands are imported: the same line
    the group's ``--version`` prints. Anything else, or any failure to write it (a closed
    pipe), goes through the one boundary, which says it as it says everything else.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if list(args) == ["--version"]:
        try:
            from mvsync.buildinfo import version_line

            sys.stdout.write(version_line() + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            pass  # the boundary below says so, as for every command
        else:
            sys.exit(0)
    # No pydantic plugin sees what mvsync validates: the bodies it checks hold API keys and
    # webhook secrets, and a plugin installed beside it (a tracer, a logger) would be
    # handed each one. It also spares every command pydantic's scan of the installed
    # packages' entry points. Set before the first model is built, for this process.
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    # httpx imports its own command line client whenever click is importable: pygments,
    # and rich when installed (~25 ms, more with rich). mvsync never runs it; marked
    # absent, httpx falls back to its stub, as when those packages are not installed.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from mvsync.cli.boundary import main as run

    run(argv)


def __getattr__(name: str) -> Any:
    # The group and the boundary, imported when asked for (not by ``main``'s fast path).
    if name == "cli":
        from mvsync.cli.group import cli

        return cli
    if name == "report_manifest_error":
        from mvsync.cli.boundary import report_manifest_error

        return report_manifest_error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
