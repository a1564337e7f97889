"""The webhook secrets of resolved applications: which variables they need, and their values.

A ``webhook_secret`` stays its ``${VAR}`` reference through resolve and plan; only apply
expands it, right before the create that sends it. Nothing here puts a value in a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mvsync.errors import MvsyncError
from mvsync.manifest import interpolate
from mvsync.manifest.schema import Lookup
from mvsync.model import DesiredApp


def expand_secret(ref: str, lookup: Lookup) -> str:
    """The webhook secret ``ref`` (``${VAR}``) stands for; MvsyncError naming VAR if unset."""
    try:
        variables = interpolate.variables(ref)
    except interpolate.TemplateSyntaxError:
        variables = []
    if len(variables) != 1 or variables[0].default is not None:
        raise MvsyncError("webhook_secret must be a single ${VARIABLE}")
    name = variables[0].name
    value = lookup(name)
    if not value:
        raise MvsyncError(f"the webhook secret variable {name} is not set")
    return value


def _secret_refs(apps: Iterable[DesiredApp]) -> dict[str, list[str]]:
    """Each webhook_secret reference → the applications that use it, in order."""
    needs: dict[str, list[str]] = {}
    for app in apps:
        if app.webhook_secret_ref is not None:
            needs.setdefault(app.webhook_secret_ref, []).append(app.name)
    return needs


def _variable_of(ref: str) -> str:
    try:
        variables = interpolate.variables(ref)
    except interpolate.TemplateSyntaxError:
        return ref
    return variables[0].name if len(variables) == 1 else ref


def missing_secret_variables(apps: Iterable[DesiredApp], lookup: Lookup) -> dict[str, list[str]]:
    """The webhook-secret variables these applications need that are not set (empty
    counts as not set), each with the applications that need it; nothing is read into
    memory but the question whether it is set."""
    missing: dict[str, list[str]] = {}
    for ref, names in _secret_refs(apps).items():
        variable = _variable_of(ref)
        if not lookup(variable):
            missing.setdefault(variable, []).extend(names)
    return missing


def _listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def describe_missing(missing: dict[str, list[str]]) -> str:
    """``VAR (needed by 'A', 'B'), OTHER (needed by 'C')``."""
    return "; ".join(f"{var} (needed by {_listed(names)})" for var, names in missing.items())


def read_webhook_secrets(
    apps: Iterable[DesiredApp], secret_of: Callable[[str], str], env: str
) -> dict[str, str]:
    """reference → value for every webhook secret these applications send. Every variable
    that is not set is reported at once, in one MvsyncError naming the applications that
    need each, before anything is sent."""
    values: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for ref, names in _secret_refs(apps).items():
        try:
            values[ref] = secret_of(ref)
        except MvsyncError:
            missing.setdefault(_variable_of(ref), []).extend(names)
    if missing:
        noun = "variables" if len(missing) > 1 else "variable"
        raise MvsyncError(
            f"environment '{env}': webhook secret {noun} not set: {describe_missing(missing)}; "
            "set them where mvsync runs; nothing was created"
        )
    return values
