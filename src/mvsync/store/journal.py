"""The intent journal: ``<secrets_file>.journal``, JSON lines, fsynced, 0600.

apply appends, and fsyncs, one line per step of a create (SPEC guarantee 3)::

    {"event": "intent", "name": N, "ts": T}                        before the POST
    {"event": "created", "name": N, "id": I, "api_key": K, "created_at": C}
                                                                    as soon as the key arrives
    {"event": "not_captured", "name": N, "id": I}                  outcome unknown, app exists
    {"event": "delivered", "name": N, "id": I, "ts": T}            the key sink took its key
    {"event": "added", "name": N, "id": I, "api_key": K, "created_at": C}
                                                     mvsync keys add (sealed_api_key instead)

A create counts as done when its ``created`` line is on disk: two fsynced
appends per create, whatever the number of keys already stored. The journal is
folded into the secrets file once per apply (``mvsync.store.keys``), then removed.

A kill -9 in the middle of an append can leave a torn last line (no final
newline): it is ignored, since whatever it was about is found again by the
next run's reconciliation. Any other malformed line is refused: mvsync does not
guess about a file that holds keys.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from mvsync.errors import SecretsError
from mvsync.model import utc_stamp
from mvsync.sealing import is_armored
from mvsync.store.durable import DurableAppender, read_private

JOURNAL_SUFFIX = ".journal"

# intent: about to POST that name; created: its key; not_captured: created, key lost;
# settled: that name's POST ended with no application (a definite refusal), or its
# application was recorded under another name: the intent is no longer in doubt;
# delivered: the key sink took the key of that id (SPEC 5.5), at ``ts``; added: ``mvsync
# keys add`` recorded a key from outside for that id (it fills, adds or replaces, SPEC 5.3).
EventKind = Literal["intent", "created", "not_captured", "settled", "delivered", "added"]
# The events whose record holds a key.
KEY_EVENTS = frozenset({"created", "added"})


def journal_path(secrets_path: Path) -> Path:
    """Where the journal of a secrets file lives: beside it."""
    return secrets_path.with_name(secrets_path.name + JOURNAL_SUFFIX)


@dataclass(frozen=True)
class JournalRecord:
    """One line of the journal."""

    event: EventKind
    name: str
    app_id: str | None = None
    api_key: SecretStr | None = None
    created_at: str | None = None
    ts: str | None = None
    # With recipients: the key sealed to them (age, ASCII armor) instead of ``api_key``.
    sealed_api_key: str | None = None

    @property
    def holds_key(self) -> bool:
        return self.api_key is not None or self.sealed_api_key is not None

    def to_line(self) -> bytes:
        """The line as written: one JSON object and a newline (holds the key)."""
        data: dict[str, Any] = {"event": self.event, "name": self.name}
        if self.event in ("intent", "delivered"):
            data["ts"] = self.ts
        if self.event not in ("intent", "settled"):
            data["id"] = self.app_id
        if self.event in KEY_EVENTS:
            if self.sealed_api_key is not None:
                data["sealed_api_key"] = self.sealed_api_key
            else:
                assert self.api_key is not None
                data["api_key"] = self.api_key.get_secret_value()
            data["created_at"] = self.created_at
        return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def intent(name: str) -> JournalRecord:
    """The record written before the POST of ``name``."""
    now = utc_stamp("microseconds")
    return JournalRecord(event="intent", name=name, ts=now)


def created(
    name: str,
    app_id: str,
    api_key: SecretStr | None,
    created_at: str,
    *,
    sealed_api_key: str | None = None,
) -> JournalRecord:
    """The record written as soon as the key of ``name`` is received: the key in plain,
    or (``sealed_api_key``, and then ``api_key`` None) only its ciphertext."""
    if (api_key is None) == (sealed_api_key is None):
        raise ValueError("a created record holds the key either plain or sealed")
    return JournalRecord(
        event="created",
        name=name,
        app_id=app_id,
        api_key=api_key,
        created_at=created_at,
        sealed_api_key=sealed_api_key,
    )


def added(
    name: str, app_id: str, api_key: SecretStr | None, sealed_api_key: str | None
) -> JournalRecord:
    """The record of ``mvsync keys add``: a key from outside for ``app_id``, received now
    (plain, or only its ciphertext)."""
    record = created(name, app_id, api_key, utc_stamp(), sealed_api_key=sealed_api_key)
    return dataclasses.replace(record, event="added")


def settled(name: str) -> JournalRecord:
    """The record that closes an intent that created nothing (or something named otherwise)."""
    return JournalRecord(event="settled", name=name)


def in_doubt(records: list[JournalRecord]) -> list[JournalRecord]:
    """The intents no later record of the same name answers: POSTs whose outcome is
    unknown (killed mid-POST, or an answer that never came and a list that lacked it)."""
    last_intent: dict[str, JournalRecord] = {}
    for record in records:
        if record.event in ("delivered", "added"):
            continue  # says nothing of a create
        if record.event == "intent":
            last_intent[record.name] = record
        else:
            last_intent.pop(record.name, None)
    return list(last_intent.values())


def not_captured(name: str, app_id: str) -> JournalRecord:
    """The record of an application created whose key never arrived."""
    return JournalRecord(event="not_captured", name=name, app_id=app_id)


def delivered(name: str, app_id: str) -> JournalRecord:
    """The record that the key sink took the key of ``app_id`` (exit 0), now."""
    return JournalRecord(event="delivered", name=name, app_id=app_id, ts=utc_stamp())


def _text(data: dict[str, Any], field: str, where: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise SecretsError(f"{where}: '{field}' is missing or not a string")
    return value


def _parse_line(raw: bytes, where: str) -> JournalRecord:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):  # a huge integer is a ValueError too
        raise SecretsError(f"{where}: not a JSON object") from None
    except (RecursionError, MemoryError):
        raise SecretsError(f"{where}: not a JSON object (nested too deeply)") from None
    if not isinstance(data, dict):
        raise SecretsError(f"{where}: not a JSON object")
    event = data.get("event")
    name = _text(data, "name", where)
    if event == "intent":
        return JournalRecord(event="intent", name=name, ts=_text(data, "ts", where))
    if event == "settled":
        return JournalRecord(event="settled", name=name)
    if event == "not_captured":
        return JournalRecord(event="not_captured", name=name, app_id=_text(data, "id", where))
    if event == "delivered":
        return JournalRecord(
            event="delivered",
            name=name,
            app_id=_text(data, "id", where),
            ts=_text(data, "ts", where),
        )
    if event in KEY_EVENTS:
        kind: EventKind = "added" if event == "added" else "created"
        if "sealed_api_key" in data:
            sealed = _text(data, "sealed_api_key", where)
            if not is_armored(sealed):
                raise SecretsError(f"{where}: 'sealed_api_key' is not an age armored message")
            return JournalRecord(
                event=kind,
                name=name,
                app_id=_text(data, "id", where),
                created_at=_text(data, "created_at", where),
                sealed_api_key=sealed,
            )
        return JournalRecord(
            event=kind,
            name=name,
            app_id=_text(data, "id", where),
            api_key=SecretStr(_text(data, "api_key", where)),
            created_at=_text(data, "created_at", where),
        )
    raise SecretsError(
        f"{where}: unknown event (expected intent, created, not_captured, settled, delivered"
        " or added)"
    )


def read_journal(path: Path) -> list[JournalRecord]:
    """Every record of the journal at ``path`` (empty when there is none).

    Refuses (SecretsError) a symbolic link, a journal readable by others, or one with a malformed
    line other than a torn last one. Error messages never quote a line: it may
    hold a key.
    """
    content = read_private(path)
    if content is None:
        return []
    lines = content.split(b"\n")
    # The text after the last newline is either empty or a torn append.
    complete, _torn = lines[:-1], lines[-1]
    records = []
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        records.append(_parse_line(raw, f"{path}:{number}"))
    return records


def iter_records(records: list[JournalRecord], event: EventKind) -> Iterator[JournalRecord]:
    """The records of one kind, in journal order."""
    return (record for record in records if record.event == event)


class JournalWriter:
    """The open journal of one apply; thread-safe (one ``write`` per line, O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._appender = DurableAppender(path)

    def append(self, record: JournalRecord) -> None:
        """Append ``record`` and fsync: on disk when this returns."""
        self._appender.append(record.to_line())

    def close(self) -> None:
        self._appender.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
