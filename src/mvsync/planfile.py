"""Saved plans: ``mvsync plan -o plan.json`` writes one, ``apply --plan`` reads it.

A saved plan is JSON (docs/plan-format.md)::

    {"format_version": 1, "kind": "mvsync-plan", "created_at": "2026-05-29T12:00:00Z",
     "manifest": "mvsync.yaml",
     "environments": [{"name": "prod", "api_url": "https://api.minivoice.eu",
                       "manifest_fingerprint": "<sha256>", "remote_fingerprint": "<sha256>",
                       "summary": {...}, "changes": [...]}]}

It holds no secret: changes are written with ``Change.to_json`` (no webhook secret,
no reference to one) and the fingerprints never cover a secret. ``read_plan`` refuses
anything malformed with one ``PlanFileError``; ``check_fresh`` refuses a plan whose
manifest or remote list has changed since it was made.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mvsync.errors import PlanFileError
from mvsync.files import MIB, UnreadableFileError, UnwritableFileError, read_bounded, write_atomic
from mvsync.planner import (
    KEY_MISSING,
    KEY_UNDELIVERED,
    SUMMARY_KEYS,
    Action,
    EnvironmentPlan,
    KeyStatus,
    Plan,
)

FORMAT_VERSION = 1
KIND = "mvsync-plan"
MAX_PLAN_BYTES = 256 * MIB  # a plan of 100,000 applications is about 60 MiB

_SHA256 = r"^[0-9a-f]{64}$"


class SavedChange(BaseModel):
    """One change as saved; the same shape as in ``plan --format json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    name: str
    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    desired: dict[str, str | bool | None] | None = None
    fields: dict[str, dict[str, str | None]] | None = None
    rename_of: list[str] = Field(default_factory=list)
    # Key status (SPEC 4), where the plan read a ledger; information, not a change.
    key: KeyStatus | None = None


class SavedUndelivered(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    id: str


class SavedEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    api_url: str = Field(min_length=1)
    manifest_fingerprint: str = Field(pattern=_SHA256)
    remote_fingerprint: str = Field(pattern=_SHA256)
    summary: dict[str, int]
    warnings: list[str] = Field(default_factory=list)
    # With a key sink: the sink as written, and the stored keys it has not taken.
    key_sink: str | None = None
    undelivered: list[SavedUndelivered] = Field(default_factory=list)
    changes: list[SavedChange]


class SavedPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1]
    kind: Literal["mvsync-plan"]
    created_at: datetime
    # The commit planned, where known (shown in the pull-request comment).
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,64}$")
    manifest: str
    environments: list[SavedEnvironment]

    def environment(self, name: str) -> SavedEnvironment:
        """The saved plan of one environment; PlanFileError when the plan lacks it."""
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments) or "none"
        raise PlanFileError(f"the saved plan has no environment '{name}' (it has: {known})")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_document(
    plan: Plan, manifest_path: Path, created_at: datetime, commit: str | None = None
) -> dict[str, Any]:
    """The saved plan as a JSON-ready dict."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "created_at": _timestamp(created_at),
        **({"commit": commit} if commit else {}),
        "manifest": str(manifest_path),
        "environments": [
            {
                "name": env.name,
                "api_url": env.api_url,
                "manifest_fingerprint": env.manifest_fingerprint,
                "remote_fingerprint": env.remote_fingerprint,
                "summary": env.summary,
                **({"warnings": list(env.warnings)} if env.warnings else {}),
                **(
                    {
                        "key_sink": env.key_sink,
                        "undelivered": [{"name": n, "id": i} for n, i in env.undelivered],
                    }
                    if env.key_sink is not None
                    else {}
                ),
                "changes": [change.to_json() for change in env.changes],
            }
            for env in plan.environments
        ],
    }


def write_plan(
    plan: Plan,
    path: Path,
    manifest_path: Path,
    *,
    created_at: datetime | None = None,
    commit: str | None = None,
) -> None:
    """Write the saved plan atomically: a temporary file beside ``path``, then a rename."""
    _refuse_to_replace(path)
    moment = created_at if created_at is not None else datetime.now(UTC)
    document = plan_document(plan, manifest_path, moment, commit)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        write_atomic(path, (text + "\n").encode("utf-8"), 0o644)  # a plan holds no secret
    except UnwritableFileError as error:
        raise PlanFileError(f"{path}: cannot write the plan: {error.reason}") from None


def _refuse_to_replace(path: Path) -> None:
    """Only a saved plan may be overwritten: ``-o`` pointed at the secrets file or the
    manifest by mistake must not destroy it (nothing is written)."""
    if path.is_symlink():
        raise PlanFileError(
            f"refusing to overwrite {path}: it is a symbolic link (write the plan to a "
            "regular file)"
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise PlanFileError(f"{path}: cannot write the plan: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise PlanFileError(f"refusing to overwrite {path}: it is not a regular file")
    # Only its first bytes are read: every plan mvsync writes opens with its kind.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat
                raise PlanFileError(f"refusing to overwrite {path}: it is not a regular file")
            head = os.read(fd, _HEAD_BYTES)
        finally:
            os.close(fd)
    except OSError as error:
        raise PlanFileError(f"{path}: cannot write the plan: {error.strerror}") from None
    if not _PLAN_HEAD.match(head):
        raise PlanFileError(f"refusing to overwrite {path}: it is not an mvsync plan file")


_HEAD_BYTES = 4096
# What ``write_plan`` writes first (any order of the two fields, any JSON spacing).
_PLAN_HEAD = re.compile(
    rb'\s*\{\s*(?:"format_version"\s*:\s*\d+\s*,\s*)?"kind"\s*:\s*"mvsync-plan"'
)


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the document"
    return f"{where}: {problem['msg']}"


def read_plan(path: Path) -> SavedPlan:
    """Read and check a saved plan; one PlanFileError for anything malformed."""
    try:
        # Regular files only, bounded while read: a FIFO or /dev/zero never hangs apply.
        raw = read_bounded(path, MAX_PLAN_BYTES)
    except UnreadableFileError as error:
        raise PlanFileError(f"{path}: cannot read the saved plan: {error.reason}") from None
    except OSError as error:
        raise PlanFileError(f"{path}: cannot read the saved plan: {error.strerror}") from error
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlanFileError(f"{path}: not a saved plan: invalid JSON ({error})") from error
    except RecursionError:
        raise PlanFileError(f"{path}: not a saved plan: the JSON is nested too deeply") from None
    except ValueError:  # an integer past Python's digit limit
        raise PlanFileError(f"{path}: not a saved plan: a number is too large") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{path}: not a saved plan: the document is not a JSON object")
    if data.get("kind") != KIND:
        raise PlanFileError(f"{path}: not a saved plan: 'kind' is not \"{KIND}\"")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        shown = repr(version) if isinstance(version, int | str) else "that is not a number"
        raise PlanFileError(
            f"{path}: unsupported saved-plan format_version {shown[:40]} "
            f"(this mvsync reads {FORMAT_VERSION})"
        )
    try:
        saved = SavedPlan.model_validate(data)
    except ValidationError as error:
        raise PlanFileError(f"{path}: malformed saved plan: {_first_problem(error)}") from error
    except (RecursionError, ValueError):
        raise PlanFileError(
            f"{path}: malformed saved plan: a value is nested too deeply or too large"
        ) from None
    for env in saved.environments:
        counts = dict.fromkeys(SUMMARY_KEYS, 0)
        for change in env.changes:
            counts[change.action.value] += 1
        if KEY_MISSING in env.summary:
            counts[KEY_MISSING] = sum(
                1 for c in env.changes if c.key in ("missing", "not_captured")
            )
        if env.key_sink is not None:
            counts[KEY_UNDELIVERED] = len(env.undelivered)
        # Counts beyond the five changes, key_missing and key_undelivered are not checked
        # (a newer mvsync's).
        if {key: env.summary.get(key) for key in counts} != counts:
            raise PlanFileError(
                f"{path}: malformed saved plan: the summary of environment '{env.name}' "
                "does not match its changes"
            )
    names = [env.name for env in saved.environments]
    if len(set(names)) != len(names):
        raise PlanFileError(f"{path}: malformed saved plan: an environment appears twice")
    return saved


def check_fresh(saved_env: SavedEnvironment, env_plan: EnvironmentPlan) -> None:
    """Refuse a saved plan made from another manifest or another remote list."""
    if saved_env.name != env_plan.name or saved_env.api_url != env_plan.api_url:
        raise PlanFileError(
            f"the saved plan is for environment '{saved_env.name}' at {saved_env.api_url}, "
            f"not '{env_plan.name}' at {env_plan.api_url}"
        )
    # Key status is not a change (apply does not act on it): it is left out of the comparison.
    fresh_changes = [
        SavedChange.model_validate(c.to_json()).model_copy(update={"key": None})
        for c in env_plan.changes
    ]
    saved_changes = [c.model_copy(update={"key": None}) for c in saved_env.changes]
    if saved_env.manifest_fingerprint != env_plan.manifest_fingerprint:
        raise PlanFileError(
            f"environment '{env_plan.name}': the manifest changed since the plan was made"
            f"{what_changed(saved_changes, fresh_changes)}; run mvsync plan again"
        )
    if saved_env.remote_fingerprint != env_plan.remote_fingerprint:
        raise PlanFileError(
            f"environment '{env_plan.name}': the remote applications changed since the plan "
            f"was made{what_changed(saved_changes, fresh_changes)}; run mvsync plan again"
        )
    # The fingerprints say the inputs are the same; the changes must then be the ones
    # apply would carry out, or an edited plan shows one thing and applies another.
    if saved_changes != fresh_changes:
        raise PlanFileError(
            f"environment '{env_plan.name}': the plan file's changes do not match what the "
            "manifest and the remote list give (was it edited?); run mvsync plan again"
        )


# How many differences a refusal of a stale plan names before "and N more".
SHOWN_DIFFERENCES = 5


def what_changed(saved: list[SavedChange], fresh: list[SavedChange]) -> str:
    """``": 'X' appeared (unmanaged, app_1); 'Y' was create, now unchanged (app_2)"``: the
    lines of the plan that differ now, so that a refusal says what happened since; empty
    when none does (a value the plan does not show changed)."""

    def by_name(changes: list[SavedChange]) -> dict[str, list[SavedChange]]:
        grouped: dict[str, list[SavedChange]] = {}
        for change in changes:
            grouped.setdefault(change.name, []).append(change)
        return grouped

    def shown(change: SavedChange) -> str:
        ids = change.ids or ([change.id] if change.id else [])
        return f"{change.action}, {', '.join(ids)}" if ids else str(change.action)

    before, after = by_name(saved), by_name(fresh)
    found: list[str] = []
    for name in dict.fromkeys([*after, *before]):  # the fresh plan's order first
        was, now = before.get(name, []), after.get(name, [])
        if was == now:
            continue
        if not was:
            found.append(f"{name!r} appeared ({'; '.join(shown(c) for c in now)})")
        elif not now:
            found.append(f"{name!r} is gone (was {'; '.join(shown(c) for c in was)})")
        elif [shown(c) for c in was] == [shown(c) for c in now]:
            found.append(f"{name!r} changed ({', '.join(_fields_apart(was[0], now[0]))})")
        else:
            then = "; ".join(shown(c) for c in was)
            found.append(f"{name!r} was {then}, now {'; '.join(shown(c) for c in now)}")
    if not found:
        return ""
    more = len(found) - SHOWN_DIFFERENCES
    listed = "; ".join(found[:SHOWN_DIFFERENCES]) + (f"; and {more} more" if more > 0 else "")
    return f": {listed}"


def _fields_apart(was: SavedChange, now: SavedChange) -> list[str]:
    """The fields two changes of one name and action differ in (what the plan shows)."""
    keys: list[str] = []
    for old, new in ((was.desired or {}, now.desired or {}), (was.fields or {}, now.fields or {})):
        keys.extend(k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k))
    if was.rename_of != now.rename_of:
        keys.append("likely rename")
    return list(dict.fromkeys(keys)) or ["details"]
