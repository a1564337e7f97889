"""Rows of ``mvsync.entries`` and ``mvsync.journal`` read back as the store's values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from mvsync.errors import StateError
from mvsync.store.journal import JournalRecord
from mvsync.store.keys import ReplacedKey, SecretEntry, SecretsFile

Row = tuple[object, ...]

# The columns ``ledger_of`` reads from ``mvsync.entries e``; delivered_at and history through
# the row's JSON, so that an older schema (read by a SELECT-only role) reads NULL.
ENTRY_COLUMNS = (
    "name, app_id, sealed_api_key, created_at, key_captured, to_jsonb(e) ->> 'delivered_at',"
    " to_jsonb(e) ->> 'history'"
)


def stamp(value: object) -> str | None:
    """A timestamp column as RFC 3339 UTC text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return None if value is None else str(value)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def ledger_of(entries: Sequence[Row], environment: str, api_url: str, where: str) -> SecretsFile:
    """``(name, app_id, sealed_api_key, created_at, key_captured, delivered_at, history)``
    rows as a ledger (``delivered_at`` and ``history`` as JSON text, or NULL)."""
    ledger = SecretsFile(environment=environment, api_url=api_url)
    try:
        for name, app_id, sealed, created_at, captured, delivered, history in entries:
            ledger.applications[str(name)] = SecretEntry(
                id=str(app_id),
                sealed_api_key=_text(sealed),
                created_at=_text(created_at),
                key_captured=bool(captured),
                delivered_at=None
                if delivered is None
                else stamp(datetime.fromisoformat(str(delivered))),
                history=tuple(
                    ReplacedKey.model_validate(old) for old in json.loads(str(history or "[]"))
                ),
            )
    except (ValueError, TypeError):
        raise StateError(f"{where}: an entry of mvsync.entries is malformed") from None
    return ledger


def records_of(rows: Sequence[Row]) -> list[tuple[int, JournalRecord]]:
    """``(seq, event, name, app_id, sealed_api_key, created_at, ts)`` rows as records."""
    return [
        (
            int(str(seq)),
            JournalRecord(
                event=event,  # type: ignore[arg-type]  # the table's CHECK
                name=str(name),
                app_id=_text(app_id),
                sealed_api_key=_text(sealed),
                created_at=_text(created_at),
                ts=stamp(ts),
            ),
        )
        for seq, event, name, app_id, sealed, created_at, ts in rows
    ]
