"""Manifest problems: pydantic's errors in plain words, the cross-field checks, and locating.

A problem is first an ``Issue``: a data path (keys and list indices), whether the
key or the value is meant, and a message. Only when there are issues is the
text composed again (``mvsync.yamlpos.locate_all``) to give each its line:column.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, ValidationError

from mvsync.errors import ManifestError, Problem

if TYPE_CHECKING:
    from mvsync.manifest import Application, Manifest

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
    from mvsync import yamlpos

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
    from mvsync.manifest import Application, Defaults, EnvironmentConfig, Manifest, Override

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


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def check_manifest(
    manifest: Manifest,
    applications: list[tuple[int, Application]] | None = None,
    require_answer_url: bool = True,
) -> list[Issue]:
    """Every problem that a single field cannot show (SPEC section 2).

    ``applications`` (index in the file, application) replaces the manifest's own
    when only some of them are valid; ``require_answer_url`` is off when the
    defaults are invalid (the answer_url may be there).
    """
    if applications is None:
        applications = list(enumerate(manifest.applications))
    issues: list[Issue] = []
    env_names = list(manifest.environments)
    known = ", ".join(env_names) if env_names else "none"
    if not env_names:
        issues.append(Issue(("environments",), True, "at least one environment is required"))
    # per environment: resulting name template -> the path of the first that uses it
    names_by_env: dict[str, dict[str, DataPath]] = {env: {} for env in env_names}
    twice: dict[tuple[DataPath, str, DataPath], list[str]] = {}
    for index, app in applications:
        base: DataPath = ("applications", index)
        app_envs = _app_environments(app.environments, env_names, known, base, issues)
        for env in app.overrides:
            place = (*base, "overrides", env)
            if env not in manifest.environments:
                message = f"override for unknown environment {env!r} (defined: {known})"
                issues.append(Issue(place, True, message))
            elif env not in app_envs:
                listed = ", ".join(app_envs) if app_envs else "none"
                issues.append(
                    Issue(
                        place,
                        True,
                        f"override for environment {env!r}, where this application is not"
                        f" deployed (its environments: {listed})",
                    )
                )
        missing_answer = []
        for env in app_envs:
            override = app.overrides.get(env)
            if override is not None and override.name is not None:
                name, name_path = override.name, (*base, "overrides", env, "name")
            else:
                name, name_path = app.name, (*base, "name")
            if not (
                (override is not None and override.answer_url)
                or app.answer_url
                or manifest.defaults.answer_url
            ):
                missing_answer.append(env)
            first = names_by_env[env].get(name)
            if first is None:
                names_by_env[env][name] = name_path
            else:
                twice.setdefault((name_path, name, first), []).append(env)
        if not require_answer_url:
            pass
        elif missing_answer and len(missing_answer) == len(app_envs):
            issues.append(
                Issue(
                    base, False, "missing required key 'answer_url' (not set here nor in defaults)"
                )
            )
        elif missing_answer:
            issues.append(
                Issue(
                    base,
                    False,
                    f"answer_url: not set for environment {_quoted(missing_answer)}"
                    " (set it here, in defaults or in that override)",
                )
            )
    for (name_path, name, first), envs in twice.items():
        issues.append(
            Issue(
                name_path,
                False,
                f"application name {name!r} is used twice in"
                f" {'environments' if len(envs) > 1 else 'environment'} {_quoted(envs)}",
                also=first,
            )
        )
    issues.extend(_shared_account_issues(manifest, names_by_env))
    issues.extend(_shared_secrets_file_issues(manifest))
    return issues


def _app_environments(
    listed: list[str] | None, env_names: list[str], known: str, base: DataPath, issues: list[Issue]
) -> list[str]:
    if listed is None:
        return list(env_names)
    app_envs: list[str] = []
    for position, env in enumerate(listed):
        place = (*base, "environments", position)
        if env not in env_names:
            issues.append(Issue(place, False, f"unknown environment {env!r} (defined: {known})"))
        elif env in app_envs:
            issues.append(Issue(place, False, f"environment {env!r} is listed twice"))
        else:
            app_envs.append(env)
    return app_envs


def _shared_account_issues(
    manifest: Manifest, names_by_env: dict[str, dict[str, DataPath]]
) -> list[Issue]:
    issues = []
    accounts: dict[tuple[str, str], list[str]] = {}
    for env, config in manifest.environments.items():
        accounts.setdefault((account_url(config.api_url), config.api_key_env), []).append(env)
    for envs in accounts.values():
        for later_index, later in enumerate(envs):
            for earlier in envs[:later_index]:
                for name, path in names_by_env[later].items():
                    first = names_by_env[earlier].get(name)
                    if first is None:
                        continue
                    issues.append(
                        Issue(
                            path,
                            False,
                            f"application name {name!r} is in both environment {earlier!r} and"
                            f" {later!r}, which share api_url and api_key_env (one account):"
                            " one would adopt the other's application; rename it in one of"
                            " them with an override",
                            also=first,
                        )
                    )
    return issues


def account_url(api_url: str) -> str:
    """``api_url`` normalised enough that one account is recognised under two spellings."""
    from urllib.parse import urlsplit

    if "$" in api_url:
        return api_url
    try:
        parts = urlsplit(api_url)
    except ValueError:
        return api_url
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _shared_secrets_file_issues(manifest: Manifest) -> list[Issue]:
    issues = []
    seen: dict[str, str] = {}
    for env, config in manifest.environments.items():
        chosen = config.secrets_file or f".mvsync/{env}.secrets.yaml"
        normal = os.path.normpath(chosen)
        if normal in seen:
            issues.append(
                Issue(
                    ("environments", env, "secrets_file"),
                    False,
                    f"secrets_file: {chosen!r} is also the secrets file of environment"
                    f" {seen[normal]!r}; each environment needs its own",
                )
            )
        else:
            seen[normal] = env
    return issues


def partial_manifest(
    data: dict[Any, Any],
) -> tuple[Manifest, list[tuple[int, Application]], bool] | None:
    """The parts of an invalid manifest that validate alone, for ``check_manifest``.

    An environment whose settings are invalid keeps its name with a placeholder
    account of its own; invalid applications are left out (their indices kept);
    answer_url is not required when ``defaults`` itself is invalid.
    """
    from mvsync.manifest import Defaults, EnvironmentConfig, Manifest
    from mvsync.model import DEFAULT_API_KEY_ENV

    environments_data = data.get("environments")
    applications_data = data.get("applications", [])
    if not isinstance(environments_data, dict) or not isinstance(applications_data, list):
        return None
    if not all(isinstance(name, str) for name in environments_data):
        return None
    environments: dict[str, EnvironmentConfig] = {}
    for position, (name, settings) in enumerate(environments_data.items()):
        try:
            environments[name] = EnvironmentConfig.model_validate(settings)
        except ValidationError:
            environments[name] = EnvironmentConfig.model_construct(
                api_url=f"invalid://{position}", api_key_env=DEFAULT_API_KEY_ENV, secrets_file=None
            )
    applications: list[tuple[int, Application]] = []
    for index, application in enumerate(applications_data):
        salvaged = _salvage_application(application)
        if salvaged is not None:
            applications.append((index, salvaged))
    try:
        defaults, defaults_valid = Defaults.model_validate(data.get("defaults", {})), True
    except ValidationError:
        defaults, defaults_valid = Defaults(), False
    partial = Manifest.model_construct(
        version=1,
        environments=environments,
        defaults=defaults,
        applications=[application for _index, application in applications],
    )
    return partial, applications, defaults_valid


# Stands in for an invalid answer_url while the rest of an application is checked, so
# that it is not also reported missing; never resolved, never sent.
_PLACEHOLDER_URL = "https://placeholder.invalid/"


def _salvage_application(data: object) -> Application | None:
    """The application without its invalid fields, so that the cross-field checks still
    see it (an unknown environment, a duplicate name...); None when its name is invalid.

    What replaces a bad field says nothing new: answer_url a placeholder (not "missing"),
    environments none at all (no check about environments can then fire for it).
    """
    from mvsync.manifest import Application

    if not isinstance(data, dict):
        return None
    try:
        return Application.model_validate(data)
    except ValidationError as error:
        invalid = {problem["loc"][0] for problem in error.errors() if problem["loc"]}
    if "name" in invalid:
        return None
    repaired = {key: value for key, value in data.items() if key not in invalid}
    if "answer_url" in invalid or "answer_url" not in repaired:
        # Not "missing" as well: a misspelt key (anser_url) already says what is wrong.
        repaired["answer_url"] = _PLACEHOLDER_URL
    if "environments" in invalid:
        repaired["environments"] = []
    try:
        return Application.model_validate(repaired)
    except ValidationError:
        return None
