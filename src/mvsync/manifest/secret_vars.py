"""A variable that holds a secret is used where that secret goes, and nowhere else.

The API key (the variable an ``api_key_env`` names), a webhook secret, the ``state_url``
(its password) and ``MVSYNC_AGE_IDENTITY`` are each read from a variable. Written into
an ``answer_url``, a name or any other value, the secret would be sent to MiniVoice in
plain sight (every list shows those fields) or to whoever runs that host; written into
another secret's place, it would reach a second party. Each such use is a located
``validate`` error.
"""

from __future__ import annotations

from collections.abc import Iterator

from mvsync.manifest import interpolate
from mvsync.manifest.problems import DataPath, Issue
from mvsync.manifest.schema import Application, Manifest

IDENTITY_VARIABLE = "MVSYNC_AGE_IDENTITY"

_API_KEY = "the API key"
_WEBHOOK_SECRET = "a webhook secret"
_STATE_URL = "the state_url (its password)"
_IDENTITY = "the age identity"

_PLAIN_FIELDS = ("name", "answer_url", "webhook_url")


def _names(template: str | None) -> list[str]:
    if not template:
        return []
    try:
        return [variable.name for variable in interpolate.variables(template)]
    except interpolate.TemplateSyntaxError:
        return []  # its own field reports it


def _values(
    manifest: Manifest, applications: list[tuple[int, Application]]
) -> Iterator[tuple[DataPath, str | None, str | None]]:
    """(path, template, the secret its place holds or None) of every templated value."""
    for env, config in manifest.environments.items():
        place: DataPath = ("environments", env)
        yield (*place, "api_url"), config.api_url, None
        yield (*place, "secrets_file"), config.secrets_file, None
        yield (*place, "state_url"), config.state_url, _STATE_URL
    defaults = manifest.defaults
    for field in _PLAIN_FIELDS[1:]:
        yield ("defaults", field), getattr(defaults, field), None
    yield ("defaults", "webhook_secret"), defaults.webhook_secret, _WEBHOOK_SECRET
    for index, app in applications:
        base: DataPath = ("applications", index)
        for field in _PLAIN_FIELDS:
            yield (*base, field), getattr(app, field), None
        yield (*base, "webhook_secret"), app.webhook_secret, _WEBHOOK_SECRET
        for env, override in app.overrides.items():
            where: DataPath = (*base, "overrides", env)
            for field in _PLAIN_FIELDS:
                yield (*where, field), getattr(override, field), None
            yield (*where, "webhook_secret"), override.webhook_secret, _WEBHOOK_SECRET


def secret_variable_issues(
    manifest: Manifest, applications: list[tuple[int, Application]]
) -> list[Issue]:
    """Each use of a secret's variable outside that secret's own place."""
    holds: dict[str, str] = {IDENTITY_VARIABLE: _IDENTITY}
    for config in manifest.environments.values():
        holds.setdefault(config.api_key_env, _API_KEY)
    values = list(_values(manifest, applications))
    for _path, template, secret in values:
        for name in _names(template):
            if secret is not None:
                holds.setdefault(name, secret)
    issues = []
    for path, template, secret in values:
        for name in dict.fromkeys(_names(template)):
            held = holds.get(name)
            if held is None or held == secret:
                continue
            where = "here" if secret is None else f"in {secret}"
            issues.append(
                Issue(
                    path,
                    False,
                    f"${{{name}}} holds {held}, which may not appear {where}: it would "
                    "reach whoever reads this value; use a variable of its own",
                )
            )
    return issues
