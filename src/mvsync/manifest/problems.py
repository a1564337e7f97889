"""Manifest problems: an ``Issue`` at a data path, pydantic's errors in plain words, locating.

A problem is first an ``Issue``: a data path (keys and list indices), whether the
key or the value is meant, and a message. Only when there are issues is the
text composed again (``mvsync.yamlpos.locate_all``) to give each its line:column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from mvsync import yamlpos
from mvsync.errors import ManifestError, Problem
from mvsync.manifest.schema import Application, Defaults, EnvironmentConfig, Manifest, Override

DataPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem before it is located.

    ``also`` is another place the message refers to (the first of two equal
    names); its line is appended to the message.
    """

    path: DataPath
    at_key: bool
    message: str
    also: DataPath | None = None


def raise_located(label: str, text: str, issues: list[Issue]) -> NoReturn:
    """Turn issues into located problems (one compose of ``text``) and raise ManifestError."""

    wanted: set[tuple[DataPath, bool]] = set()
    for issue in issues:
        wanted.add((issue.path, issue.at_key))
        if issue.also is not None:
            wanted.add((issue.also, False))
    places = yamlpos.locate_all(text, wanted) if text else {}
    problems = []
    for issue in issues:
        line, column = places.get((issue.path, issue.at_key), (0, 0))
        message = issue.message
        if issue.also is not None:
            first_line = places.get((issue.also, False), (0, 0))[0]
            if first_line and first_line != line:
                message += f" (first at line {first_line})"
        problems.append(Problem(label, line, column, message))
    raise ManifestError(problems)


# -- pydantic's errors, in plain words ------------------------------------------------


def _yaml_type(value: Any) -> str:
    import datetime

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, set | frozenset):
        return "a set"
    return type(value).__name__


def _label(loc: DataPath) -> str:
    """How a place is named in a message: its key, with list indices (``environments[1]``)."""
    if len(loc) == 2 and loc[0] in ("environments",) and isinstance(loc[1], str):
        return f"environment {loc[1]!r}"
    if len(loc) == 4 and loc[2] == "overrides" and isinstance(loc[3], str):
        return f"override {loc[3]!r}"
    indices = ""
    for step in reversed(loc):
        if isinstance(step, int):
            indices = f"[{step}]" + indices
        else:
            return f"{step}{indices}"
    return "the manifest"


def _model_at(loc: DataPath) -> type[BaseModel] | None:

    if not loc:
        return Manifest
    if loc == ("defaults",):
        return Defaults
    if len(loc) == 2 and loc[0] == "environments":
        return EnvironmentConfig
    if len(loc) == 2 and loc[0] == "applications":
        return Application
    if len(loc) == 4 and loc[0] == "applications" and loc[2] == "overrides":
        return Override
    return None


def _unknown_key(loc: DataPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {key!r}"
    expected = list(model.model_fields)
    message = f"unknown key {key!r}"
    if loc[:-1] == ("defaults",) and key == "name":
        message += " (a name in defaults would give every application the same name)"
    shown = ", ".join(expected) + (", or x-... for anchors" if not loc[:-1] else "")
    message += f" (expected one of: {shown})"
    import difflib  # only for a misspelt key: not on every load

    close = difflib.get_close_matches(key, expected, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message


def issues_from_validation(error: ValidationError) -> list[Issue]:
    """pydantic's errors as issues, messages rewritten for the manifest's author."""
    issues = []
    for detail in error.errors(include_url=False, include_context=False, include_input=True):
        loc: DataPath = tuple(detail["loc"])
        kind = detail["type"]
        given = detail.get("input")
        if loc and loc[-1] == "[key]":
            message = str(detail["msg"])
            if kind != "mvsync":
                message = f"key {loc[-2]!r}: {_type_message(kind, detail, given)}"
            issues.append(Issue(loc[:-1], True, message))
        elif kind == "extra_forbidden":
            issues.append(Issue(loc, True, _unknown_key(loc)))
        elif kind == "missing":
            issues.append(Issue(loc[:-1], False, f"missing required key {loc[-1]!r}"))
        elif loc == ("version",) and kind != "mvsync":
            message = f"version: must be the number 1, got {_yaml_type(given)}"
            issues.append(Issue(loc, False, message))
        elif kind == "invalid_key":
            issues.append(Issue(loc[:-1], False, f"key {loc[-1]}: keys must be strings"))
        elif kind == "mvsync" and str(detail["msg"]).startswith(f"{_label(loc)} "):
            issues.append(Issue(loc, False, str(detail["msg"])))  # a sentence naming its key
        elif len(loc) == 2 and loc[0] == "environments" and given is None:
            # ``staging:`` with nothing under it: YAML reads null, the fix is one word.
            message = f"{_label(loc)}: has nothing under it: write `{loc[1]}: {{}}` to take "
            message += "every default"
            issues.append(Issue(loc, False, message))
        else:
            issues.append(Issue(loc, False, f"{_label(loc)}: {_type_message(kind, detail, given)}"))
    return issues


def _type_message(kind: str, detail: Any, given: Any) -> str:
    if kind == "string_type":
        return f"must be a string, got {_yaml_type(given)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {_yaml_type(given)}"
    if kind == "list_type":
        return f"must be a list, got {_yaml_type(given)}"
    if kind == "recursion_loop":
        return "refers to itself (a recursive alias)"
    message = str(detail["msg"])
    return message[:1].lower() + message[1:]


# -- checks that span several places ------------------------------------------------------
