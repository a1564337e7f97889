"""The secrets file of one environment (SPEC section 5): read, check, fold.

::

    # mvsync secrets for environment "prod": live MiniVoice API keys. Do not commit.
    environment: prod
    api_url: https://api.minivoice.eu
    applications:
      "Support IVR":
        id: "app_20260529T120000.000000000"
        api_key: "mv_live_xxx"
        created_at: "2026-05-29T12:00:00Z"
      "Sales IVR":
        id: "app_..."
        key_captured: false
      ? "A name whose quoted form is longer than 1024 characters..."
      :
        id: "app_..."
        key_captured: false

A name longer than YAML allows for an implicit key (1024 characters, quotes and escapes
included) is written as an explicit ``? `` key; every other entry is written as above.

Entries are only ever added. ``fold`` adds the journal's records to the file in
one atomic rewrite (``mvsync.store.durable.write_atomic``) and only then removes the
journal: a crash in between leaves both, and folding again is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mvsync.errors import SecretsError
from mvsync.store.durable import fsync_dir, is_shared, read_regular, refuse_shared, write_atomic
from mvsync.store.journal import JournalRecord
from mvsync.store.secrets_dump import dump
from mvsync.store.secrets_model import ReplacedKey, SecretEntry, SecretsFile, header

__all__ = ["ReplacedKey", "SecretEntry", "SecretsFile", "dump", "header"]


# The names a secrets file may contain besides application names (which are data).
_FIELD_NAMES = frozenset(
    {
        "environment",
        "api_url",
        "applications",
        "id",
        "api_key",
        "sealed_api_key",
        "created_at",
        "key_captured",
        "delivered_at",
        "history",
        "replaced_at",
    }
)


def _load_yaml(text: str) -> Any:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from mvsync.yamlpos import MAX_DEPTH, load_documents, nesting_bound

    # The C composer recurses: a deep enough file would overflow the C stack.
    if nesting_bound(text) > MAX_DEPTH:
        raise SecretsError(f"nested too deeply (more than {MAX_DEPTH} levels)")
    try:
        # The manifest's loader: libyaml first, ruamel's pure parser for the valid YAML
        # 1.2 libyaml refuses (a file edited by hand in flow style, say).
        documents = load_documents(text)
    except MarkedYAMLError as error:
        # Only the place: ruamel's own text may quote the file (a key, a value).
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SecretsError(f"not valid YAML{where}") from None
    except (YAMLError, ValueError, TypeError, OverflowError):
        raise SecretsError("not valid YAML (a value does not match its type)") from None
    except (RecursionError, MemoryError):
        raise SecretsError("nested too deeply") from None
    if len(documents) > 1:
        raise SecretsError("more than one YAML document")
    return documents[0] if documents else None


def _where(loc: tuple[int | str, ...], data: Any, text: str, *, at_key: bool) -> str:
    """Where a problem is, named without any key or value of the file: the line, and
    a path of known field names, application positions and "an unknown field"."""
    from mvsync.yamlpos import compose, locate

    parts: list[str] = []
    for index, step in enumerate(loc):
        if index == 1 and loc[0] == "applications" and isinstance(data, dict):
            apps = data.get("applications")
            names = list(apps) if isinstance(apps, dict) else []
            parts.append(f"entry {names.index(step) + 1}" if step in names else "an entry")
        elif step == "[key]":
            parts.append("its name")
        elif isinstance(step, str) and step in _FIELD_NAMES:
            parts.append(step)
        else:
            parts.append("an unknown field")
    try:
        line, _column = locate(compose(text), tuple(loc), at_key=at_key)
    except (RecursionError, MemoryError):  # pragma: no cover - guarded by the nesting bound
        line = 0
    path = ", ".join(parts)
    if line:
        return f"line {line}: {path}" if path else f"line {line}"
    return path


def _describe(error: ValidationError, data: Any, text: str) -> str:
    # Never echo input values nor keys: a mistyped key may sit where a name should be.
    first = error.errors(include_input=False, include_url=False)[0]
    where = _where(tuple(first["loc"]), data, text, at_key=first["type"] == "extra_forbidden")
    return f"{where}: {first['msg']}" if where else first["msg"]


def parse(text: str, path: Path) -> SecretsFile:
    """Parse a secrets file's text; SecretsError (never quoting a key or value) when malformed."""
    try:
        data = _load_yaml(text)
    except SecretsError as error:
        raise SecretsError(f"{path}: malformed secrets file: {error}") from None
    if not isinstance(data, dict):
        raise SecretsError(f"{path}: malformed secrets file: not a mapping")
    try:
        return SecretsFile.model_validate(data)
    except ValidationError as error:
        raise SecretsError(
            f"{path}: malformed secrets file: {_describe(error, data, text)}"
        ) from None
    except (RecursionError, ValueError):
        raise SecretsError(f"{path}: malformed secrets file: a value is not valid") from None


def read_secrets(path: Path) -> SecretsFile | None:
    """The secrets file at ``path``, ``None`` when it does not exist yet.

    Refused (SecretsError) when a symbolic link or malformed, and when it holds a
    plaintext key and the group or others may read it. A file without a plaintext key
    (every key sealed, or none captured) is accepted whatever its mode: it may live in
    git, and a checkout gives 0644 (it is still written 0600).
    """
    read = read_regular(path)
    if read is None:
        return None
    raw, mode = read
    try:
        secrets = parse(raw.decode("utf-8"), path)
    except (SecretsError, UnicodeDecodeError) as error:
        if is_shared(mode):  # what a malformed file others may read holds is unknown
            refuse_shared(path, mode)
        if isinstance(error, SecretsError):
            raise
        raise SecretsError(f"{path}: malformed secrets file: not UTF-8") from None
    if is_shared(mode) and any(e.api_key is not None for e in secrets.applications.values()):
        refuse_shared(path, mode)
    return secrets


def check_matches(secrets: SecretsFile, path: Path, environment: str, api_url: str) -> None:
    """Refuse a secrets file that belongs to another environment or account.

    The message names what was expected, never what the file says: a key pasted
    into the wrong field must not end up in a CI log.
    """
    if secrets.environment != environment:
        raise SecretsError(
            f"{path}: this secrets file belongs to another environment (its 'environment' "
            f"is not '{environment}'); give each environment its own secrets_file"
        )
    if secrets.api_url.rstrip("/") != api_url.rstrip("/"):
        raise SecretsError(
            f"{path}: this secrets file belongs to another account (its 'api_url' is not "
            f"{api_url}); give each account its own secrets_file"
        )


@dataclass
class FoldResult:
    """What a fold added."""

    stored: list[tuple[str, str]] = field(default_factory=list)  # (entry name, id)
    not_captured: list[tuple[str, str]] = field(default_factory=list)
    # a key whose name was already taken by another id: stored under "name (id)"
    renamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.stored or self.not_captured)


def _free_name(applications: dict[str, SecretEntry], name: str, app_id: str) -> str:
    candidate = f"{name} ({app_id})"
    number = 2
    while candidate in applications:
        candidate = f"{name} ({app_id}) {number}"
        number += 1
    return candidate


def _same_key(entry: SecretEntry, record: JournalRecord) -> bool:
    """Whether ``record`` holds the very key ``entry`` already holds."""
    if record.sealed_api_key is not None:
        return entry.sealed_api_key == record.sealed_api_key
    stored = entry.api_key.get_secret_value() if entry.api_key is not None else None
    return record.api_key is not None and stored == record.api_key.get_secret_value()


def add_records(secrets: SecretsFile, records: Iterable[JournalRecord]) -> FoldResult:
    """Add the ``created`` and ``not_captured`` records to ``secrets`` in place.

    Never overwrites nor removes: a record already stored (same id, same key) is a
    no-op (a fold that ran before a crash); a key whose name holds another id, or
    whose id already holds another key (a reused id: a malformed answer), is kept
    under a new name rather than dropped. A ``not_captured`` record for an id
    already stored is ignored. An ``added`` record (``keys add``) is the one that may
    replace a key: the replaced one stays in the entry's history.
    """
    result = FoldResult()
    applications = secrets.applications
    by_id = {entry.id: entry for entry in applications.values()}
    for record in records:
        if record.event == "delivered":
            _mark_delivered(applications, record)
            continue
        if record.event == "added" and record.app_id is not None and record.app_id in by_id:
            by_id[record.app_id] = _add_by_hand(applications, record, result)
            continue
        if record.event not in ("created", "not_captured", "added") or record.app_id is None:
            continue
        known = by_id.get(record.app_id)
        if known is not None and (record.event != "created" or _same_key(known, record)):
            continue  # folded before (a crash between the fold and the journal's removal)
        if record.event in ("created", "added"):
            entry = SecretEntry(
                id=record.app_id,
                api_key=record.api_key,
                sealed_api_key=record.sealed_api_key,
                created_at=record.created_at,
            )
        else:
            entry = SecretEntry(id=record.app_id, key_captured=False)
        name = record.name
        if name in applications:
            name = _free_name(applications, name, record.app_id)
            result.renamed.append((name, record.app_id))
        applications[name] = entry
        by_id.setdefault(record.app_id, entry)
        target = result.not_captured if record.event == "not_captured" else result.stored
        target.append((name, record.app_id))
    return result


def _add_by_hand(
    applications: dict[str, SecretEntry], record: JournalRecord, result: FoldResult
) -> SecretEntry:
    """Fold an ``added`` record (``mvsync keys add``) for an id the ledger has: it fills an
    entry without a key, or replaces the key, keeping the replaced one's record (sealed,
    else only its dates) in the entry's history. The same key again is a no-op."""
    name, entry = next((n, e) for n, e in applications.items() if e.id == record.app_id)
    if entry.key_captured and _same_key(entry, record):
        return entry
    history = entry.history
    if entry.key_captured:
        replaced_at = record.created_at or ""
        old = ReplacedKey(
            sealed_api_key=entry.sealed_api_key,
            created_at=entry.created_at,
            replaced_at=replaced_at,
        )
        history = (*history, old)
    new = SecretEntry(
        id=entry.id,
        api_key=record.api_key,
        sealed_api_key=record.sealed_api_key,
        created_at=record.created_at,
        history=history,
    )
    applications[name] = new
    result.stored.append((name, entry.id))
    return new


def _mark_delivered(applications: dict[str, SecretEntry], record: JournalRecord) -> None:
    """Record on the entry of ``record.app_id`` that the sink took its key (the first
    time is kept: delivery is at least once)."""
    for name, entry in applications.items():
        if entry.id == record.app_id and entry.key_captured:
            if entry.delivered_at is None:
                applications[name] = entry.model_copy(update={"delivered_at": record.ts})
            return


def empty(environment: str, api_url: str) -> SecretsFile:
    return SecretsFile(environment=environment, api_url=api_url, applications={})


def write_secrets(path: Path, secrets: SecretsFile) -> None:
    """Rewrite the whole file atomically, 0600, fsynced."""
    write_atomic(path, dump(secrets))


def remove_journal(path: Path) -> None:
    """Remove a journal whose records are all in the secrets file (durably)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise SecretsError(f"{path}: cannot remove: {error.strerror}") from None
    fsync_dir(path.parent)


def remove_stale_temps(path: Path) -> None:
    """Remove temporary files a killed write_atomic left beside ``path``.

    Only called under the lock; their content is in the secrets file or the
    journal, which is removed only after the secrets file was replaced.
    """
    for temp in path.parent.glob(f".{path.name}.*.tmp"):
        temp.unlink(missing_ok=True)
