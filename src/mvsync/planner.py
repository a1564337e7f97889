"""The pure planner: what differs between one environment's manifest and its live list.

``build_plan(desired, remote)`` compares the desired applications of one environment
with ``GET /v1/applications`` (SPEC section 3) and returns an ``EnvironmentPlan``:

    create      no remote application has the desired name
    unchanged   exactly one has it, with equal answer_url and webhook_url
    drift       exactly one has it, with a different answer_url or webhook_url
    ambiguous   two or more have it: apply refuses to touch the name
    unmanaged   a remote application no manifest entry names

Names are matched **exactly** (case, spaces and Unicode form included). The API does
not document how it compares names, so a looser match could adopt an application the
manifest never meant; "Support IVR" and "support ivr" are two different applications,
and a near-miss shows up as a ``create`` next to an ``unmanaged``.

The planner does no I/O and reads no clock, so it can be called thousands of times
in a test. It is linear in the number of applications: remote applications are
grouped by name in one pass, and the field-level diff runs only for an
application whose compared fields are already known to differ.

``webhook_secret`` is write-only in the API: it is never compared, never put in a
change's JSON and never enters a fingerprint (a hash of a secret can leak it too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from mvsync.model import COMPARED_FIELDS, DesiredApp, DesiredEnvironment, RemoteApp

RESOLVE_DRIFT = (
    "the MiniVoice API cannot update an application: change the manifest to match, "
    "or fix it in the MiniVoice console"
)


class Action(StrEnum):
    """What a plan says about one name (or one unmanaged application)."""

    CREATE = "create"
    DRIFT = "drift"
    AMBIGUOUS = "ambiguous"
    UNCHANGED = "unchanged"
    UNMANAGED = "unmanaged"


# The order changes are listed in: what needs the reader's attention first.
ACTION_ORDER: tuple[Action, ...] = (
    Action.CREATE,
    Action.DRIFT,
    Action.AMBIGUOUS,
    Action.UNCHANGED,
    Action.UNMANAGED,
)
_RANK = {action: rank for rank, action in enumerate(ACTION_ORDER)}
# Each action's text, looked up without the enum's value descriptor (once per change).
_ACTION_TEXT: dict[Action, str] = {action: action.value for action in Action}

# The summary's keys, in the order SPEC section 4 gives them.
SUMMARY_KEYS: tuple[str, ...] = ("create", "drift", "unchanged", "unmanaged", "ambiguous")

# The actions that mean "the environment is not equal to the manifest".
CHANGING_ACTIONS = frozenset({Action.CREATE, Action.DRIFT, Action.AMBIGUOUS})

# Key status (SPEC section 4): whether the ledger holds the key of an existing application.
KeyStatus = Literal["held", "not_captured", "missing"]
KEY_STATUSES: tuple[KeyStatus, ...] = ("held", "not_captured", "missing")
# The actions whose application exists and is managed: the ones a key status is given to.
KEYED_ACTIONS = frozenset({Action.UNCHANGED, Action.DRIFT})
KEY_MISSING = "key_missing"
# With a key sink (SPEC 5.5): the stored keys the sink has not taken.
KEY_UNDELIVERED = "key_undelivered"


@dataclass(frozen=True)
class FieldDrift:
    """One compared field whose remote value differs from the desired one."""

    field: str
    remote: str | None
    desired: str | None


@dataclass(frozen=True)
class Change:
    """One line of a plan.

    ``id`` is set for unchanged, drift and unmanaged; ``ids`` (sorted) for ambiguous;
    ``desired`` for create (what apply sends), drift and unchanged; ``rename_of`` on a
    create lists the unmanaged applications with the same ``answer_url``.
    """

    action: Action
    name: str
    id: str | None = None
    ids: tuple[str, ...] = ()
    desired: DesiredApp | None = None
    drift: tuple[FieldDrift, ...] = ()
    rename_of: tuple[str, ...] = ()
    # Whether the key ledger holds this application's key (unchanged and drift only,
    # and only where a ledger was read: ``with_key_status``). Not a change.
    key: KeyStatus | None = None

    def sort_key(self) -> tuple[int, str, str]:
        return (_RANK[self.action], self.name, self.id or ",".join(self.ids))

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form (SPEC section 4); never holds a webhook secret or its ref."""
        data: dict[str, Any] = {"action": _ACTION_TEXT[self.action], "name": self.name}
        if self.id is not None:
            data["id"] = self.id
        if self.ids:
            data["ids"] = list(self.ids)
        if self.action is Action.CREATE and self.desired is not None:
            data["desired"] = {
                "answer_url": self.desired.answer_url,
                "webhook_url": self.desired.webhook_url or None,
                "webhook_secret_set": self.desired.webhook_secret_ref is not None,
            }
        if self.drift:
            data["fields"] = {
                d.field: {"remote": d.remote, "desired": d.desired} for d in self.drift
            }
        if self.rename_of:
            data["rename_of"] = list(self.rename_of)
        if self.key is not None:
            data["key"] = self.key
        return data


@dataclass(frozen=True)
class EnvironmentPlan:
    """The plan of one environment, with the fingerprints of what it was made from."""

    name: str
    api_url: str
    changes: tuple[Change, ...]
    # sha256 of the inputs (``manifest_fingerprint``, ``remote_fingerprint``); empty when
    # built with ``fingerprints=False`` (a plan only shown, never saved).
    manifest_fingerprint: str
    remote_fingerprint: str
    # What the renderers should say beside the changes (a variable apply will need that
    # is not set, say). Not a change: it affects neither the summary nor the exit code.
    warnings: tuple[str, ...] = ()
    # Whether a key ledger was read: then the summary also counts ``key_missing``.
    keys_known: bool = False
    # The key sink as written (``with_delivery``), and the (name, id) of each stored key
    # it has not taken: then the summary also counts ``key_undelivered``.
    key_sink: str | None = None
    undelivered: tuple[tuple[str, str], ...] = ()

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SUMMARY_KEYS, 0)
        for action, count in Counter(change.action for change in self.changes).items():
            counts[_ACTION_TEXT[action]] += count
        if self.keys_known:
            counts[KEY_MISSING] = len(self.keys_not_held)
        if self.key_sink is not None:
            counts[KEY_UNDELIVERED] = len(self.undelivered)
        return counts

    @property
    def keys_not_held(self) -> tuple[Change, ...]:
        """The unchanged and drifted applications whose key the ledger does not hold."""
        return tuple(c for c in self.changes if c.key is not None and c.key != "held")

    @property
    def creates(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is Action.CREATE)

    @property
    def has_changes(self) -> bool:
        return any(c.action in CHANGING_ACTIONS for c in self.changes)


@dataclass(frozen=True)
class Plan:
    """The plans of the chosen environments, in the order they were chosen."""

    environments: tuple[EnvironmentPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(env.has_changes for env in self.environments)

    @property
    def summary(self) -> dict[str, int]:
        totals = dict.fromkeys(SUMMARY_KEYS, 0)
        for env in self.environments:
            for key, count in env.summary.items():
                totals[key] = totals.get(key, 0) + count
        return totals


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_FIRST = operator.itemgetter(0)


def manifest_fingerprint(desired: DesiredEnvironment) -> str:
    """sha256 of the resolved environment: api_url and each app's compared fields.

    The order of applications in the manifest does not matter; the webhook secret and
    its reference never enter it. With a key sink, its arguments and variables enter it
    too: a plan reviewed for one sink is stale for another.
    """
    apps = [[app.name, app.answer_url, app.webhook_url or None] for app in desired.apps]
    if len({app.name for app in desired.apps}) == len(apps):
        apps.sort(key=_FIRST)  # unique names (a resolved environment): the name is the order
    else:
        apps.sort(key=lambda row: (row[0], row[1], row[2] or ""))
    data: dict[str, Any] = {"api_url": desired.api_url, "apps": apps}
    if desired.key_sink is not None:
        data["key_sink"] = [
            [list(arg) for arg in desired.key_sink.args],
            desired.key_sink.env_names,
        ]
    return hashlib.sha256(_canonical(data)).hexdigest()


def remote_fingerprint(remote: Sequence[RemoteApp]) -> str:
    """sha256 of the remote list, sorted by id, so that the list's order does not matter."""
    # Rows, not objects, in a fixed field order: [id, customer_id, name, answer_url,
    # webhook_url, created_at]; ids are unique, the rest only breaks impossible ties.
    rows = [
        [app.id, app.customer_id, app.name, app.answer_url, app.webhook_url or None, app.created_at]
        for app in remote
    ]
    if len({app.id for app in remote}) == len(rows):
        rows.sort(key=_FIRST)  # unique ids (a parsed list): the id is the order
    else:
        rows.sort(key=lambda row: (row[0], row[2], row[3], row[4] or "", row[5], row[1]))
    return hashlib.sha256(_canonical(rows)).hexdigest()


def field_drift(
    remote: dict[str, str | None], desired: dict[str, str | None]
) -> tuple[FieldDrift, ...]:
    """The compared fields that differ, in ``COMPARED_FIELDS`` order.

    Two flat fields of text: a lookup per field is the whole diff (a generic differ
    cost 1.7 ms per drifted application, most of a 10,000-application plan's build).
    """
    return tuple(
        FieldDrift(name, remote.get(name), desired.get(name))
        for name in COMPARED_FIELDS
        if remote.get(name) != desired.get(name)
    )


def _name_then_id(change: Change) -> tuple[str, str]:
    return (change.name, change.id or ",".join(change.ids))


def build_plan(
    desired: DesiredEnvironment, remote: Sequence[RemoteApp], *, fingerprints: bool = True
) -> EnvironmentPlan:
    """Compare one environment's desired applications with its remote list (pure).

    ``fingerprints=False``: a plan that is shown and never saved nor checked against a
    saved one (``mvsync plan`` without ``-o``) leaves both fingerprints empty — their
    canonical JSON and hashes were a third of a 10,000-application plan's build.
    """
    remote_by_name: dict[str, list[RemoteApp]] = {}
    for app in remote:
        same_name = remote_by_name.get(app.name)
        if same_name is None:
            remote_by_name[app.name] = [app]
        else:
            same_name.append(app)
    desired_names = {app.name for app in desired.apps}

    unmanaged = [app for app in remote if app.name not in desired_names]
    unmanaged_by_answer_url: dict[str, list[str]] = {}
    for app in unmanaged:
        unmanaged_by_answer_url.setdefault(app.answer_url, []).append(app.id)

    # One list per action, in ACTION_ORDER, each sorted by (name, id): the plan's
    # stable order without ranking every change through the enum.
    creates: list[Change] = []
    drifts: list[Change] = []
    ambiguous: list[Change] = []
    unchanged: list[Change] = []
    for want in desired.apps:
        matches = remote_by_name.get(want.name)
        if matches is None:
            hints = tuple(sorted(unmanaged_by_answer_url.get(want.answer_url, ())))
            creates.append(Change(Action.CREATE, want.name, desired=want, rename_of=hints))
        elif len(matches) > 1:
            ids = tuple(sorted(app.id for app in matches))
            ambiguous.append(Change(Action.AMBIGUOUS, want.name, ids=ids))
        else:
            have = matches[0]
            # The compared fields (COMPARED_FIELDS), compared without building them.
            if have.answer_url == want.answer_url and (have.webhook_url or None) == (
                want.webhook_url or None
            ):
                unchanged.append(Change(Action.UNCHANGED, want.name, id=have.id, desired=want))
            else:
                drift = field_drift(have.compared(), want.compared())
                drifts.append(
                    Change(Action.DRIFT, want.name, id=have.id, desired=want, drift=drift)
                )
    # Desired names are unique where the manifest is resolved: then the name alone is
    # the order, and a C key function sorts by it.
    by_desired_name = _BY_NAME if len(desired_names) == len(desired.apps) else _name_then_id
    changes: list[Change] = []
    for same_action in (creates, drifts, ambiguous, unchanged):
        same_action.sort(key=by_desired_name)
        changes.extend(same_action)
    unmanaged_changes = [Change(Action.UNMANAGED, app.name, id=app.id) for app in unmanaged]
    unmanaged_changes.sort(key=_name_then_id)
    changes.extend(unmanaged_changes)
    return EnvironmentPlan(
        name=desired.name,
        api_url=desired.api_url,
        changes=tuple(changes),
        manifest_fingerprint=manifest_fingerprint(desired) if fingerprints else "",
        remote_fingerprint=remote_fingerprint(remote) if fingerprints else "",
    )


_BY_NAME = operator.attrgetter("name")


def with_key_status(plan: EnvironmentPlan, held: Mapping[str, bool]) -> EnvironmentPlan:
    """``plan`` with the key status of each unchanged and drifted application (pure).

    ``held`` is the ledger by application id: ``True`` for an entry that holds its key
    (plain or sealed), ``False`` for one with ``key_captured: false``; an id it lacks is
    ``missing`` (created outside mvsync, or its entry was lost). The changes themselves,
    and so ``has_changes`` and the fingerprints, are untouched.
    """

    def status(change: Change) -> KeyStatus | None:
        if change.action not in KEYED_ACTIONS or change.id is None:
            return None
        if change.id not in held:
            return "missing"
        return "held" if held[change.id] else "not_captured"

    changes = tuple(dataclasses.replace(c, key=status(c)) for c in plan.changes)
    return dataclasses.replace(plan, changes=changes, keys_known=True)


def with_delivery(
    plan: EnvironmentPlan, key_sink: str, undelivered: Sequence[tuple[str, str]]
) -> EnvironmentPlan:
    """``plan`` with its key sink as written and the stored keys not delivered (pure):
    information for the reviewer, not a change."""
    return dataclasses.replace(plan, key_sink=key_sink, undelivered=tuple(undelivered))
