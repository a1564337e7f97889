"""``key_sink`` and ``key_sink_env`` (SPEC 2, 5.5): their checks, and the ``KeySink`` value.

A sink is data from a pull request: a program and its arguments, never a shell line.
What is refused, as located issues:

- a program (the first item) that is empty or holds a placeholder (the application
  would choose what runs);
- a ``${VAR}`` in an argument, or a name in ``key_sink_env``, that holds a secret of
  mvsync's: an ``api_key_env``, a variable of a ``webhook_secret`` or a ``state_url``,
  ``MVSYNC_AGE_IDENTITY`` (the sink would receive it in its argv or environment);
- ``key_sink_env`` without ``key_sink``;
- two applications of one environment whose filled-in arguments are equal (one key would
  overwrite the other in the store), an argument a placeholder makes start with ``-``,
  and ``{slug}`` of a name that has none (no letter or digit).

``validate`` checks the names written literally; ``resolve`` checks every name once the
``${}`` are expanded, and builds the ``KeySink``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mvsync.manifest import interpolate
from mvsync.manifest.problems import DataPath, Issue
from mvsync.manifest.schema import Lookup, Manifest
from mvsync.model import KeySink, slug, split_placeholders

AGE_IDENTITY_VARIABLE = "MVSYNC_AGE_IDENTITY"


def secret_variables(manifest: Manifest) -> set[str]:
    """Every variable that holds a secret of mvsync's (SPEC 2)."""
    names = {AGE_IDENTITY_VARIABLE}
    refs: list[str | None] = [manifest.defaults.webhook_secret]
    for config in manifest.environments.values():
        names.add(config.api_key_env)
        refs.append(config.state_url)
    for app in manifest.applications:
        refs.append(app.webhook_secret)
        refs.extend(override.webhook_secret for override in app.overrides.values())
    for ref in refs:
        if ref is None:
            continue
        try:
            names.update(variable.name for variable in interpolate.variables(ref))
        except interpolate.TemplateSyntaxError:
            continue
    return names


def secret_values(manifest: Manifest, lookup: Lookup) -> list[str]:
    """The values of every secret variable that is set, and every ``state_url`` expanded:
    what a key sink's messages mask and its environment never holds."""
    values = [value for name in sorted(secret_variables(manifest)) if (value := lookup(name))]
    for config in manifest.environments.values():
        if config.state_url is not None and not interpolate.missing_variables(
            config.state_url, lookup
        ):
            values.append(interpolate.expand(config.state_url, lookup))
    return values


def sink_argument(template: str, lookup: Lookup) -> tuple[str, ...]:
    """One argument as ``KeySink`` parts: ``${}`` expanded (a value stays literal), the
    placeholders of the literal text split out. ``lookup`` must have every variable."""
    parts: list[str] = [""]
    for piece in interpolate.parse(template):
        if isinstance(piece, str):
            split = split_placeholders(piece)
            parts[-1] += split[0]
            parts.extend(split[1:])
        else:
            value = lookup(piece.name)
            if piece.default is not None and not value:
                value = piece.default
            if value is None:
                raise interpolate.MissingVariableError(piece.name)
            parts[-1] += value
    return tuple(parts)


def _as_written(name: str) -> str:
    return f"${{{name}}}"


def written_sink(templates: list[str], env_names: list[str] | None) -> KeySink:
    """The sink with every ``${VAR}`` kept as written: what ``validate`` can compare."""
    return KeySink(tuple(sink_argument(t, _as_written) for t in templates), tuple(env_names or ()))


def sink_issues(manifest: Manifest, names_by_env: dict[str, dict[str, DataPath]]) -> list[Issue]:
    """The problems of every environment's ``key_sink`` that validate can see."""
    issues: list[Issue] = []
    secrets = secret_variables(manifest)
    for env, config in manifest.environments.items():
        place: DataPath = ("environments", env)
        if config.key_sink_env is not None and config.key_sink is None:
            issues.append(
                Issue(
                    (*place, "key_sink_env"),
                    True,
                    "key_sink_env without key_sink: there is no sink to give these variables to",
                )
            )
        for position, name in enumerate(config.key_sink_env or ()):
            if name in secrets:
                issues.append(
                    Issue(
                        (*place, "key_sink_env", position),
                        False,
                        f"{name} holds a secret of mvsync's (an API key, a webhook secret, a"
                        " state_url or the age identity): the sink may never see it",
                    )
                )
        if not config.key_sink:
            continue
        issues.extend(_argument_issues(config.key_sink, (*place, "key_sink"), secrets))
        if any(issue.path[:3] == (*place, "key_sink") for issue in issues):
            continue
        sink = written_sink(config.key_sink, config.key_sink_env)
        literal = {
            name: path for name, path in names_by_env.get(env, {}).items() if "$" not in name
        }
        issues.extend(application_issues(sink, env, literal.items()))
    return issues


def _argument_issues(templates: list[str], place: DataPath, secrets: set[str]) -> list[Issue]:
    issues: list[Issue] = []
    program = templates[0]
    if not program.strip():
        issues.append(Issue((*place, 0), False, "key_sink: the program must not be empty"))
    elif len(split_placeholders(program)) > 1:
        issues.append(
            Issue(
                (*place, 0),
                False,
                "key_sink: the program may not hold a placeholder (an application's name"
                " would choose what runs); put {name}, {slug}, {id} or {environment} in"
                " an argument",
            )
        )
    for position, template in enumerate(templates):
        used = sorted({v.name for v in interpolate.variables(template)} & secrets)
        if used:
            issues.append(
                Issue(
                    (*place, position),
                    False,
                    f"key_sink: {', '.join(used)} holds a secret of mvsync's: it may not"
                    " appear in the sink's arguments (ps and /proc show them)",
                )
            )
    return issues


def application_issues(
    sink: KeySink, env: str, names: Iterable[tuple[str, DataPath]]
) -> list[Issue]:
    """Two applications whose filled-in arguments are equal, an argument a placeholder
    makes start with ``-``, and an empty ``{slug}``; each located at an application's name.
    ``{id}`` is not known yet: each application's is taken to differ from the others'."""
    issues: list[Issue] = []
    uses_slug = any("slug" in arg[1::2] for arg in sink.args)
    first: dict[tuple[str, ...], tuple[str, DataPath]] = {}
    for index, (name, path) in enumerate(names):
        if uses_slug and not slug(name):
            issues.append(
                Issue(
                    path,
                    False,
                    f"application name {name!r} has no letter or digit, so its {{slug}} in"
                    f" the key_sink of environment {env!r} would be empty",
                )
            )
            continue
        if sink.dash_made(name, "app", env) is not None:
            issues.append(
                Issue(
                    path,
                    False,
                    f"application name {name!r} would make an argument of the key_sink of"
                    f" environment {env!r} start with '-' (it would read as an option);"
                    " put a fixed prefix before the placeholder or rename the application",
                )
            )
            continue
        filled = sink.fill(name, f"\0{index}", env)
        seen = first.get(filled)
        if seen is None:
            first[filled] = (name, path)
            continue
        issues.append(
            Issue(
                path,
                False,
                f"applications {seen[0]!r} and {name!r} fill in the key_sink of environment"
                f" {env!r} alike: one key would overwrite the other in the store; use"
                " {name} or {id} in an argument, or rename one of them (with an override)",
                also=seen[1],
            )
        )
    return issues


def resolve_sink(
    manifest: Manifest, env: str, lookup: Lookup, names: list[tuple[str, DataPath]]
) -> tuple[KeySink | None, list[Issue]]:
    """``env``'s sink with its ``${}`` expanded, and the problems of its applications."""
    config = manifest.environments[env]
    if not config.key_sink:
        return None, []
    place: DataPath = ("environments", env, "key_sink")
    issues: list[Issue] = []
    for position, template in enumerate(config.key_sink):
        missing = interpolate.missing_variables(template, lookup)
        if missing:
            issues.append(
                Issue(
                    (*place, position),
                    False,
                    f"key_sink: variable {', '.join(missing)} not set (needed for"
                    f" environment {env!r})",
                )
            )
    if issues:
        return None, issues
    sink = KeySink(
        tuple(sink_argument(template, lookup) for template in config.key_sink),
        tuple(config.key_sink_env or ()),
    )
    return sink, application_issues(sink, env, names)
