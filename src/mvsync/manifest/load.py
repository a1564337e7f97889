"""``load_manifest(path)``: read, parse (``mvsync.yamlpos``), validate, check across fields.

Every problem is collected with its data path; only when there is one is the file
composed again to turn the paths into line:column (``mvsync.manifest.problems``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mvsync import yamlpos
from mvsync.errors import ManifestError, Problem
from mvsync.files import UnreadableFileError, read_bounded
from mvsync.manifest.checks import check_manifest, partial_manifest
from mvsync.manifest.problems import Issue, issues_from_validation, raise_located
from mvsync.manifest.schema import Manifest

# What to do when there is no manifest where mvsync looked (every command takes -f).
NEXT = "run mvsync in the manifest's folder, or name it with -f PATH or MVSYNC_FILE=PATH"


def load_manifest(path: Path) -> Manifest:
    """Read, parse and validate ``path``; ManifestError carries every located problem."""
    text, data = read_manifest(path)
    return validate_manifest(path, text, data)


def read_manifest(path: Path) -> tuple[str, Any]:
    """The text of ``path`` and its YAML document as plain data (not yet validated)."""
    label = str(path)
    try:
        # Regular files only, bounded while read: a FIFO or /dev/zero never hangs the run.
        raw = read_bounded(path, yamlpos.MAX_BYTES)
    except FileNotFoundError:
        raise ManifestError(
            [Problem(label, 0, 0, "cannot read the manifest: No such file or directory; " + NEXT)]
        ) from None
    except UnreadableFileError as error:
        raise ManifestError(
            [Problem(label, 0, 0, f"cannot read the manifest: {error.reason}")]
        ) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ManifestError([Problem(label, 0, 0, f"cannot read the manifest: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ManifestError([Problem(label, line, column, "the manifest is not UTF-8")]) from None
    return text, yamlpos.load(text, label)


def validate_manifest(path: Path, text: str, data: Any) -> Manifest:
    """``data`` (parsed from ``text``) as a ``Manifest``, or every located problem."""
    label = str(path)
    if not isinstance(data, dict):
        raise_located(
            label,
            text,
            [Issue((), False, "the manifest must be a mapping with version, environments, ...")],
        )
    # Top-level keys starting with "x-" are free, as in docker compose: a place for
    # anchors that several applications then merge or alias.
    data = {key: value for key, value in data.items() if not _is_extension(key)}
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        issues = issues_from_validation(error)
        # Also the cross-field problems of the parts that are valid on their own, so
        # that fixing one problem does not reveal a new batch of them.
        partial = partial_manifest(data)
        if partial is not None:
            issues += check_manifest(*partial)
        raise_located(label, text, issues)
    except RecursionError:
        raise ManifestError([Problem(label, 0, 0, "the manifest refers to itself")]) from None
    issues = check_manifest(manifest)
    if issues:
        raise_located(label, text, issues)
    manifest._source = path
    manifest._text = text
    return manifest


def _is_extension(key: object) -> bool:
    return isinstance(key, str) and key.startswith("x-")


def environment_names(manifest: Manifest) -> list[str]:
    """The environment names, in file order."""
    return list(manifest.environments)
