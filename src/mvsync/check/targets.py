"""What to check, from the manifest alone: every application of the environments named,
with its environment's ``checks:`` settings and the webhook secrets it signs with.

No MiniVoice API call and no API key. Every webhook-secret variable that is needed and
not set is reported at once, in one error, before any request is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from mvsync.check.run import AppCheck, CheckSettings
from mvsync.errors import MvsyncError
from mvsync.manifest import (
    Lookup,
    Manifest,
    describe_missing,
    expand_secret,
    missing_secret_variables,
    resolve_environment,
    unknown_environment,
)


def settings_of(manifest: Manifest, env: str) -> CheckSettings:
    config = manifest.environments[env].checks
    return CheckSettings(config.answer_method, config.answer_timeout_ms, config.webhook_timeout_ms)


def checks_of(
    manifest: Manifest, envs: Sequence[str], lookup: Lookup
) -> list[tuple[str, list[AppCheck]]]:
    """Per environment named (all when none is), its applications to check."""
    known = list(manifest.environments)
    chosen = list(dict.fromkeys(envs)) or known
    for name in chosen:
        if name not in manifest.environments:
            raise unknown_environment(name, known)
    found: list[tuple[str, list[AppCheck]]] = []
    missing_lines: list[str] = []
    for env in chosen:
        desired = resolve_environment(manifest, env, lookup)
        signing = [app for app in desired.apps if app.webhook_url and app.webhook_secret_ref]
        missing = missing_secret_variables(signing, lookup)
        if missing:
            noun = "variables" if len(missing) > 1 else "variable"
            missing_lines.append(
                f"environment {env!r}: webhook secret {noun} not set: {describe_missing(missing)}"
            )
            continue
        settings = settings_of(manifest, env)
        # One expansion per reference, however many applications share it.
        refs = {app.webhook_secret_ref for app in signing if app.webhook_secret_ref}
        values = {ref: expand_secret(ref, lookup) for ref in refs}
        apps = [
            AppCheck(
                name=app.name,
                answer_url=app.answer_url,
                webhook_url=app.webhook_url,
                secret_ref=app.webhook_secret_ref,
                webhook_secret=(
                    values[app.webhook_secret_ref]
                    if app.webhook_url and app.webhook_secret_ref
                    else None
                ),
                settings=settings,
            )
            for app in desired.apps
        ]
        found.append((env, apps))
    if missing_lines:
        raise MvsyncError(
            "\n".join(missing_lines)
            + "\nmvsync check signs each test event with its application's webhook_secret:"
            " set these where it runs; nothing was sent"
        )
    return found
