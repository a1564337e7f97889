"""The age identity that opens sealed keys, from where a person or a CI job keeps it.

``-i FILE`` (as ``age -i``), ``-i -`` (read from stdin: ``… | mvsync keys show -i -``),
or, when ``-i`` is not given, ``MVSYNC_AGE_IDENTITY`` (the identity's text, as a CI
secret holds it) and ``MVSYNC_AGE_IDENTITY_FILE`` (a path); both variables may be set,
and then any of their identities opens a key. Nothing here ever prints, logs or quotes
an identity: a malformed one is named by where it came from and its line number.

Read lazily: the identity is loaded only when a sealed key is to be opened, so that a
plain key or an unknown name is answered first. Every command that opens sealed keys
(``keys show``, ``keys deliver``) takes ``identity_option`` and ``identity_source``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from mvsync.sealing import Identity

F = TypeVar("F", bound=Callable[..., Any])

IDENTITY_VARIABLE = "MVSYNC_AGE_IDENTITY"
IDENTITY_FILE_VARIABLE = "MVSYNC_AGE_IDENTITY_FILE"
STDIN = "-"
# Where an identity can come from, as messages name them.
WAYS = f"-i FILE, -i - (stdin), or {IDENTITY_VARIABLE} / {IDENTITY_FILE_VARIABLE}"

IdentitySource = Callable[[], "list[Identity]"]


def identity_option(func: F) -> F:
    """``-i/--identity FILE|-``: the age identity that opens a sealed key."""
    return click.option(
        "-i",
        "--identity",
        "identity",
        metavar="FILE|-",
        default=None,
        help=f"An age identity file (as age -i), or - to read it from stdin. Without -i: "
        f"{IDENTITY_VARIABLE} (its text) or {IDENTITY_FILE_VARIABLE} (a path).",
    )(func)


def identity_source(
    given: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
) -> IdentitySource | None:
    """How to load the identities ``-i`` or the variables name; ``None`` when nothing does."""
    from mvsync.sealing import load_identities, parse_identities

    variables = os.environ if environ is None else environ
    if given == STDIN:
        stream = sys.stdin if stdin is None else stdin
        return lambda: parse_identities(stream.read(), "the identity on stdin (-i -)")
    if given:
        return lambda: load_identities(Path(given))
    text = variables.get(IDENTITY_VARIABLE, "")
    path = variables.get(IDENTITY_FILE_VARIABLE, "")
    if not (text or path):
        return None

    def from_variables() -> list[Identity]:
        found: list[Identity] = []
        if text:
            found += parse_identities(text, IDENTITY_VARIABLE)
        if path:
            found += load_identities(Path(path))
        return found

    return from_variables
