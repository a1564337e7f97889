"""The checks that span several places of a manifest (SPEC section 2), as located issues."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from mvsync.manifest.problems import DataPath, Issue
from mvsync.manifest.schema import Application, Defaults, EnvironmentConfig, Manifest
from mvsync.manifest.secret_vars import secret_variable_issues
from mvsync.manifest.sink import sink_issues
from mvsync.model import DEFAULT_API_KEY_ENV
from mvsync.urls import account_url


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
    issues.extend(_state_url_issues(manifest))
    issues.extend(secret_variable_issues(manifest, applications))
    issues.extend(sink_issues(manifest, names_by_env))
    return issues


def _state_url_issues(manifest: Manifest) -> list[Issue]:
    """An environment with state_url must seal: no plaintext key on a shared server."""
    return [
        Issue(
            ("environments", env, "state_url"),
            True,
            f"environment {env!r} has state_url but no recipients: keys in a shared database"
            " must be sealed; add recipients (at the top level or in this environment)",
        )
        for env, config in manifest.environments.items()
        if config.state_url is not None
        and not (config.recipients if config.recipients is not None else manifest.recipients)
    ]


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
