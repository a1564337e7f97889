"""Saved plans shown again (``mvsync show``): each saved environment rebuilt as an
``EnvironmentPlan`` for the renderers, with no network and no variable."""

from __future__ import annotations

from mvsync.errors import PlanFileError
from mvsync.model import DesiredApp
from mvsync.planfile import SavedChange, SavedPlan
from mvsync.planner import KEY_MISSING, Change, EnvironmentPlan, FieldDrift, Plan

# A saved create says only whether a webhook secret is set, never which variable
# holds it: the rebuilt plan carries this stand-in reference, never expanded.
SAVED_SECRET_REF = "${saved plan: webhook_secret set}"


def _change_of(saved: SavedChange) -> Change:
    desired = None
    if saved.desired is not None:
        answer_url = saved.desired.get("answer_url")
        webhook_url = saved.desired.get("webhook_url")
        desired = DesiredApp(
            name=saved.name,
            answer_url=answer_url if isinstance(answer_url, str) else "",
            webhook_url=webhook_url if isinstance(webhook_url, str) else None,
            webhook_secret_ref=SAVED_SECRET_REF
            if saved.desired.get("webhook_secret_set")
            else None,
        )
    drift = tuple(
        FieldDrift(field, values.get("remote"), values.get("desired"))
        for field, values in (saved.fields or {}).items()
    )
    return Change(
        saved.action,
        saved.name,
        id=saved.id,
        ids=tuple(saved.ids),
        desired=desired,
        drift=drift,
        rename_of=tuple(saved.rename_of),
        key=saved.key,
    )


def plan_of(saved_plans: list[SavedPlan]) -> Plan:
    """The saved plans as one ``Plan``, in the order given, for the renderers
    (``mvsync show``): no network, no variable. The same environment twice (two plans
    of prod, say) is refused, as one document could not say which one is true."""
    environments: list[EnvironmentPlan] = []
    seen: set[str] = set()
    for saved in saved_plans:
        for env in saved.environments:
            if env.name in seen:
                raise PlanFileError(
                    f"environment '{env.name}' is in more than one saved plan: show each once"
                )
            seen.add(env.name)
            environments.append(
                EnvironmentPlan(
                    name=env.name,
                    api_url=env.api_url,
                    changes=tuple(_change_of(c) for c in env.changes),
                    manifest_fingerprint=env.manifest_fingerprint,
                    remote_fingerprint=env.remote_fingerprint,
                    warnings=tuple(env.warnings),
                    keys_known=KEY_MISSING in env.summary,
                    key_sink=env.key_sink,
                    undelivered=tuple((u.name, u.id) for u in env.undelivered),
                )
            )
    return Plan(tuple(environments))
