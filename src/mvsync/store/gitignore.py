"""The secrets folder's own ``.gitignore``: a sealed folder may be committed, its lock,
journal, temporary files and remembered rate (``.pace``) never.

A secrets file whose keys are all sealed may live in git (SPEC 5.1); the files mvsync
keeps beside it are a run's working state (a journal of a run in doubt may even hold a
plaintext key when the environment has no recipients). Before it takes the lock, mvsync
makes sure the folder's ``.gitignore`` names them, one anchored line each, so that
``git add .mvsync`` picks up the secrets files only. A ``.gitignore`` already there is
kept and only the missing lines are appended; one that is a link or not a regular file
is left alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mvsync import files
from mvsync.errors import SecretsError
from mvsync.store.lock import LOCK_SUFFIX

GITIGNORE = ".gitignore"
HEADER = "# written by mvsync: a run's lock, journal and temporary files stay out of git\n"
MAX_GITIGNORE_BYTES = 1024 * 1024
_SPECIAL = set("\\*?[] ")


def _literal(name: str) -> str:
    """``name`` as a gitignore pattern that matches that name only."""
    return "".join("\\" + char if char in _SPECIAL else char for char in name)


def ignored_lines(secrets_path: Path) -> list[str]:
    """The lines that keep the working files of ``secrets_path`` out of git."""
    name = _literal(secrets_path.name)
    return [f"/{name}{LOCK_SUFFIX}", f"/{name}.journal", f"/.{name}.*.tmp", f"/{name}.pace"]


def ensure_ignored(secrets_path: Path) -> None:
    """Make the secrets folder's ``.gitignore`` name the lock, journal and temporary files."""
    if "\n" in secrets_path.name or "\r" in secrets_path.name:
        return  # no gitignore line can name it
    path = secrets_path.parent / GITIGNORE
    mode = 0o644
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        existing = files.read_bounded(path, MAX_GITIGNORE_BYTES, follow_symlinks=False)
        text = existing.decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (files.UnreadableFileError, UnicodeDecodeError, OSError):
        return  # a link, a folder, not text: the user's, left as it is
    present = set(text.splitlines())
    missing = [line for line in ignored_lines(secrets_path) if line not in present]
    if not missing:
        return
    if text and not text.endswith("\n"):
        text += "\n"
    if HEADER.rstrip("\n") not in present:
        text += HEADER
    text += "".join(line + "\n" for line in missing)
    try:
        files.write_atomic(path, text.encode("utf-8"), mode)
    except files.UnwritableFileError as error:
        raise SecretsError(f"{path}: cannot write: {error.reason}") from None
