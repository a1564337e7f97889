"""One environment of a validated manifest, resolved to ``DesiredEnvironment``.

Pure: the only outside input is ``lookup`` (``os.environ.get`` in production).
Order: defaults, then the application, then its override, then ``${}``. The
webhook secret is kept as its ``${VAR}`` reference; ``apply`` expands it right
before sending (``mvsync.manifest.expand_secret``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel

from mvsync.errors import ManifestError, MvsyncError, UsageError
from mvsync.manifest import interpolate
from mvsync.manifest.fields import (
    API_URL_CREDENTIALS,
    api_url_problem,
    is_absolute_http_url,
    is_loopback,
    url_has_credentials,
)
from mvsync.manifest.problems import DataPath, Issue, raise_located
from mvsync.manifest.schema import Application, Lookup, Manifest
from mvsync.manifest.sink import resolve_sink
from mvsync.model import DesiredApp, DesiredEnvironment, LedgerPlace
from mvsync.urls import account_url


class _Expander:
    """Expands templates for one environment, collecting every problem as an issue."""

    def __init__(self, env: str, lookup: Lookup) -> None:
        self.env = env
        self.lookup = lookup
        self.issues: list[Issue] = []

    def expand(self, template: str, path: DataPath) -> str | None:
        if "$" not in template:  # nothing to expand: the common case, kept cheap
            return template
        missing = interpolate.missing_variables(template, self.lookup)
        if missing:
            names = ", ".join(missing)
            plural = "variables" if len(missing) > 1 else "variable"
            self.issues.append(
                Issue(
                    path,
                    False,
                    f"{path[-1]}: {plural} {names} not set (needed for environment {self.env!r})",
                )
            )
            return None
        return interpolate.expand(template, self.lookup)

    def expand_url(self, template: str, path: DataPath) -> str | None:
        if "$" not in template:  # a literal URL was already checked when the file was loaded
            return template
        value = self.expand(template, path)
        if value is not None and not is_absolute_http_url(value):
            # The template is shown, not its value: a value may carry credentials.
            self.issues.append(
                Issue(
                    path,
                    False,
                    f"{path[-1]}: {template!r} does not expand to an absolute http(s) URL"
                    f" in environment {self.env!r}",
                )
            )
            return None
        return value


def _pick(
    field: str, layers: list[tuple[BaseModel | None, DataPath]]
) -> tuple[str | None, DataPath]:
    """The value of ``field`` from the first layer that sets it (an explicit null counts)."""
    for model, path in layers:
        if model is not None and field in model.model_fields_set:
            value = getattr(model, field)
            return value, (*path, field)
    return None, ()


def _resolve_app(
    manifest: Manifest, index: int, app: Application, expander: _Expander
) -> tuple[DesiredApp, DataPath] | None:
    """One application in ``expander.env``: defaults, application, override, then ``${}``;
    ``None`` (the problem noted) when it cannot be resolved."""
    env = expander.env
    base: DataPath = ("applications", index)
    layers: list[tuple[BaseModel | None, DataPath]] = [
        (app.overrides.get(env), (*base, "overrides", env)),
        (app, base),
        (manifest.defaults, ("defaults",)),
    ]
    name_template, name_path = _pick("name", layers)
    answer_template, answer_path = _pick("answer_url", layers)
    webhook_template, webhook_path = _pick("webhook_url", layers)
    secret_ref, _ = _pick("webhook_secret", layers)
    assert name_template is not None and answer_template is not None  # validated on load
    name = expander.expand(name_template, name_path)
    answer_url = expander.expand_url(answer_template, answer_path)
    webhook_url = expander.expand_url(webhook_template, webhook_path) if webhook_template else None
    if name is not None and not name.strip():
        expander.issues.append(
            Issue(name_path, False, f"name: expands to an empty name in environment {env!r}")
        )
        return None
    if name is None or answer_url is None:
        return None
    return DesiredApp(name, answer_url, webhook_url, secret_ref), name_path


def _shared_apps(manifest: Manifest) -> list[tuple[DesiredApp, DataPath] | None]:
    """Per application, what it resolves to in every environment where it has no
    override, when that needs no ``${}``: one ``DesiredApp`` shared by them all (and
    the path of its name); ``None`` for one that is resolved in each environment.
    Worked out once per manifest."""
    if manifest._shared_apps is None:
        shared: list[tuple[DesiredApp, DataPath] | None] = []
        defaults = manifest.defaults
        from_defaults = {
            field: getattr(defaults, field) if field in defaults.model_fields_set else None
            for field in ("answer_url", "webhook_url", "webhook_secret")
        }  # what _pick finds in defaults when the application does not set the field
        for index, app in enumerate(manifest.applications):
            own = app.model_fields_set
            name = app.name  # required on an application
            answer_url = app.answer_url if "answer_url" in own else from_defaults["answer_url"]
            webhook_url = app.webhook_url if "webhook_url" in own else from_defaults["webhook_url"]
            secret_ref = (
                app.webhook_secret if "webhook_secret" in own else from_defaults["webhook_secret"]
            )
            literal = (
                "name" in own
                and answer_url is not None
                and name.strip()
                and "$" not in f"{name}{answer_url}{webhook_url or ''}"
            )
            shared.append(
                (
                    DesiredApp(name, answer_url, webhook_url or None, secret_ref),
                    ("applications", index, "name"),
                )
                if literal and answer_url is not None
                else None
            )
        manifest._shared_apps = shared
    return manifest._shared_apps


def resolve(manifest: Manifest, env: str, lookup: Lookup) -> DesiredEnvironment:
    """Resolve ``env`` (known to exist); ManifestError locating every missing variable."""
    expander = _Expander(env, lookup)
    config = manifest.environments[env]
    env_path: DataPath = ("environments", env)
    api_url = expander.expand_url(config.api_url, (*env_path, "api_url"))
    if api_url is not None and "$" in config.api_url:
        # A literal api_url was checked by validate; an expanded one is checked here.
        problem = api_url_problem(api_url)
        if problem:
            expander.issues.append(
                Issue(
                    (*env_path, "api_url"),
                    False,
                    f"api_url: {config.api_url!r} expands to a URL that cannot be used in "
                    f"environment {env!r}: {problem}",
                )
            )
    secrets_template = config.secrets_file or f".mvsync/{env}.secrets.yaml"
    secrets_file = expander.expand(secrets_template, (*env_path, "secrets_file"))
    folder = manifest.source.parent.absolute()
    secrets_path = folder / Path(secrets_file or secrets_template)

    all_envs = list(manifest.environments)
    apps: list[DesiredApp] = []
    first_by_name: dict[str, DataPath] = {}
    shared = _shared_apps(manifest)
    for index, app in enumerate(manifest.applications):
        if env not in (app.environments if app.environments is not None else all_envs):
            continue
        found = shared[index]
        if found is None or env in app.overrides:
            found = _resolve_app(manifest, index, app, expander)
            if found is None:
                continue
        desired_app, name_path = found
        if desired_app.name in first_by_name:
            expander.issues.append(
                Issue(
                    name_path,
                    False,
                    f"application name {desired_app.name!r} is used twice in environment {env!r}",
                    also=first_by_name[desired_app.name],
                )
            )
            continue
        first_by_name[desired_app.name] = name_path
        apps.append(desired_app)
    key_sink, sink_issues = resolve_sink(manifest, env, lookup, list(first_by_name.items()))
    expander.issues.extend(sink_issues)
    if expander.issues:
        raise_located(manifest.label, manifest._text, expander.issues)
    assert api_url is not None
    recipients = config.recipients if config.recipients is not None else manifest.recipients
    return DesiredEnvironment(
        name=env,
        api_url=api_url,
        api_key_env=config.api_key_env,
        secrets_path=secrets_path,
        apps=tuple(apps),
        recipients=tuple(recipients or ()),
        state_url=config.state_url,
        key_sink=key_sink,
    )


def resolve_ledger_place(manifest: Manifest, env: str, lookup: Lookup) -> LedgerPlace:
    """Where ``env``'s key ledger is, needing only the variables of its ``secrets_file``.

    No application is expanded: ``mvsync keys`` works with no variable set. ``api_url`` is
    expanded when its variables are set (to check the secrets file's account), else ``None``.
    """
    if env not in manifest.environments:
        raise unknown_environment(env, list(manifest.environments))
    expander = _Expander(env, lookup)
    config = manifest.environments[env]
    env_path: DataPath = ("environments", env)
    secrets_template = config.secrets_file or f".mvsync/{env}.secrets.yaml"
    secrets_file = expander.expand(secrets_template, (*env_path, "secrets_file"))
    if expander.issues:
        raise_located(manifest.label, manifest._text, expander.issues)
    assert secrets_file is not None
    api_url: str | None = None
    if not interpolate.missing_variables(config.api_url, lookup):
        api_url = expander.expand_url(config.api_url, (*env_path, "api_url"))
        if expander.issues or (api_url is not None and url_has_credentials(api_url)):
            api_url = None  # not checkable; the secrets file's own api_url is not trusted either
    recipients = config.recipients if config.recipients is not None else manifest.recipients
    return LedgerPlace(
        environment=env,
        secrets_path=manifest.source.parent.absolute() / Path(secrets_file),
        api_url=api_url,
        recipients=tuple(recipients or ()),
        state_url=config.state_url,
        api_key_env=config.api_key_env,
    )


def check_account_after_expansion(
    manifest: Manifest, desired: DesiredEnvironment, lookup: Lookup
) -> None:
    """Two environments whose api_url only *expands* to one account: no shared name.

    ``load_manifest`` compares api_url as written; a ``${}`` api_url can only be
    compared here, once expanded. An environment whose variables are not set cannot
    be expanded, so it cannot be compared: it is left out (it is not in use here).
    """
    mine = manifest.environments[desired.name]
    names = {app.name for app in desired.apps}
    issues: list[Issue] = []
    for other, config in manifest.environments.items():
        if other == desired.name or config.api_key_env != mine.api_key_env:
            continue
        if "$" not in config.api_url and "$" not in mine.api_url:
            continue  # compared as written by load_manifest already
        try:
            theirs = resolve(manifest, other, lookup)
        except ManifestError:
            continue
        if account_url(theirs.api_url) != account_url(desired.api_url):
            continue
        shared = sorted(names & {app.name for app in theirs.apps})
        if shared:
            issues.append(
                Issue(
                    ("environments", desired.name),
                    True,
                    f"environments {other!r} and {desired.name!r} expand to one account"
                    f" ({desired.api_url}, {mine.api_key_env}) and both have application"
                    f" {shared[0]!r}"
                    + (f" (and {len(shared) - 1} more)" if len(shared) > 1 else "")
                    + ": one would adopt the other's application; rename it in one of"
                    " them with an override",
                )
            )
    if issues:
        raise_located(manifest.label, manifest._text, issues)


def resolve_environment(manifest: Manifest, env: str, lookup: Lookup) -> DesiredEnvironment:
    """The desired state of ``env``: defaults, application, override, then ``${}``."""
    if env not in manifest.environments:
        raise unknown_environment(env, list(manifest.environments))
    desired = resolve(manifest, env, lookup)
    if url_has_credentials(desired.api_url):
        # Only a ${} can get here (a literal one is refused at load); the value is not shown.
        raise_located(
            manifest.label,
            manifest._text,
            [Issue(("environments", env, "api_url"), False, API_URL_CREDENTIALS)],
        )
    check_account_after_expansion(manifest, desired, lookup)
    return desired


def read_api_key(env: DesiredEnvironment, lookup: Lookup) -> str:
    """The API key of ``env`` from its variable; MvsyncError naming the variable if unset."""
    value = lookup(env.api_key_env)
    if not value:
        raise MvsyncError(
            f"environment {env.name!r}: the API key variable {env.api_key_env} is not set"
        )
    return value


def is_loopback_environment(manifest: Manifest, env: str, lookup: Lookup) -> bool:
    """Whether ``env``'s api_url, expanded with what ``lookup`` has (defaults otherwise),
    points at a loopback host: the local emulator, which a CI runner cannot reach. An
    api_url whose variables are not all set is not known to be loopback."""
    template = manifest.environments[env].api_url
    try:
        if interpolate.missing_variables(template, lookup):
            return False
        url = interpolate.expand(template, lookup)
        host = urlsplit(url).hostname
    except (interpolate.TemplateSyntaxError, interpolate.MissingVariableError, ValueError):
        return False
    return bool(host) and is_loopback(host or "")


def unknown_environment(env: str, known: list[str]) -> UsageError:
    """The error for ``--env`` naming no environment, with a did-you-mean
    (environment names are lower case: ``Prod`` means ``prod``)."""
    message = f"unknown environment {env!r} (the manifest defines: {', '.join(known) or 'none'})"
    lowered = env.lower()
    close = [lowered] if lowered in known else difflib.get_close_matches(lowered, known, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return UsageError(message)
