"""The command line: parse flags, call the core, render, return an exit code.

``group`` holds the click group and its commands, one module per command;
``boundary.main`` is the console script and the one error boundary. Each command
imports the core lazily, so that ``mvsync --help`` and ``mvsync validate`` never
import httpx.
"""

from __future__ import annotations

from mvsync.cli.boundary import main, report_manifest_error
from mvsync.cli.group import cli

__all__ = ["cli", "main", "report_manifest_error"]
