"""Adding entries to ``mvsync.entries``: add-only, sealed only, never a name overwritten."""

from __future__ import annotations

import json
from typing import NamedTuple

from mvsync.errors import StateError
from mvsync.store.keys import SecretEntry
from mvsync.store.pg_schema import Connection


def refuse_plain(name: str, where: str) -> StateError:
    """The error for a key that would reach the database unsealed."""
    return StateError(
        f"{where}: refusing to store the key of '{name}' unsealed: the database holds "
        "sealed keys only (give the environment recipients)"
    )


def refuse_unsealed(entries: list[tuple[str, SecretEntry]], where: str) -> None:
    """Raise before any row is written when one of ``entries`` holds a plain key."""
    for name, entry in entries:
        if entry.api_key is not None:
            raise refuse_plain(name, where)


def to_save(name: str, entry: SecretEntry, stored: set[str]) -> bool:
    """Whether ``save`` hands ``entry`` to ``insert_entries``: a new one, one the key
    sink took (its delivered_at is set where the row's is NULL, SPEC 5.5), or one whose
    key ``keys add --replace`` replaced (its history is longer than the row's)."""
    return name not in stored or entry.delivered_at is not None or bool(entry.history)


def _history_json(entry: SecretEntry) -> str:
    return json.dumps([old.model_dump() for old in entry.history])


class Inserted(NamedTuple):
    """What ``insert_entries`` did: the names of the new entries, and the names of the
    entries recorded "key not captured" whose key it filled in."""

    added: list[str]
    filled: list[str]


def insert_entries(
    connection: Connection, owner: tuple[int, int], entries: list[tuple[str, SecretEntry]]
) -> Inserted:
    """Insert each entry whose id is not stored; a name taken by another id is stored
    as "name (id)" (never dropped, never overwriting). An id stored as "key not
    captured" gets the sealed key an entry brings (the key a run kept locally when the
    database was lost, SPEC 5.4); a stored key is never replaced.

    ``owner`` is the environment's id and the account's (``pg_accounts``): the entries
    of one account only are read and added to. Call inside a transaction: two runs
    inserting one name at once make one of them fail on the primary key, and retry on a
    fresh read.
    """
    env_id, account_id = owner
    rows = connection.execute(
        "SELECT name, app_id, key_captured, delivered_at IS NOT NULL,"
        " jsonb_array_length(history) FROM mvsync.entries WHERE account_id = %s",
        (account_id,),
    ).fetchall()
    names = {str(name) for name, *_ in rows}
    ids = {str(app_id) for _, app_id, *_ in rows}
    missing = {str(app_id): str(name) for name, app_id, captured, *_ in rows if not captured}
    undelivered = {str(r[1]) for r in rows if r[2] and not r[3]}
    replaced = {str(r[1]): int(str(r[4])) for r in rows}
    values = []
    used = []
    filled = []
    for name, entry in entries:
        if entry.id in missing and entry.sealed_api_key is not None:
            connection.execute(
                "UPDATE mvsync.entries SET sealed_api_key = %s, key_captured = true,"
                " created_at = COALESCE(created_at, %s) WHERE account_id = %s AND app_id = %s"
                " AND NOT key_captured AND sealed_api_key IS NULL",
                (entry.sealed_api_key, entry.created_at, account_id, entry.id),
            )
            filled.append(missing.pop(entry.id))
            continue
        if entry.id in replaced and len(entry.history) > replaced[entry.id]:
            # keys add --replace: the new sealed key, the longer history, not delivered.
            connection.execute(
                "UPDATE mvsync.entries SET sealed_api_key = %s, key_captured = true,"
                " created_at = %s, history = %s::jsonb, delivered_at = %s"
                " WHERE account_id = %s AND app_id = %s",
                (
                    entry.sealed_api_key,
                    entry.created_at,
                    _history_json(entry),
                    entry.delivered_at,
                    account_id,
                    entry.id,
                ),
            )
            undelivered.discard(entry.id)
            continue
        if entry.id in undelivered and entry.delivered_at is not None:
            connection.execute(
                "UPDATE mvsync.entries SET delivered_at = %s WHERE account_id = %s"
                " AND app_id = %s AND delivered_at IS NULL",
                (entry.delivered_at, account_id, entry.id),
            )
            undelivered.discard(entry.id)
        if entry.id in ids:
            continue
        target = name
        number = 1
        while target in names:
            target = f"{name} ({entry.id})" + (f" {number}" if number > 1 else "")
            number += 1
        names.add(target)
        ids.add(entry.id)
        used.append(target)
        values.append(
            (
                env_id,
                account_id,
                target,
                entry.id,
                entry.sealed_api_key,
                entry.created_at,
                entry.key_captured,
                entry.delivered_at,
                _history_json(entry),
            )
        )
    if values:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO mvsync.entries"
                " (env_id, account_id, name, app_id, sealed_api_key, created_at, key_captured,"
                " delivered_at, history)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                values,
            )
    return Inserted(used, filled)
