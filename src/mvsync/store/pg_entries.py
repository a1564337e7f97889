"""Adding entries to ``mvsync.entries``: add-only, sealed only, never a name overwritten."""

from __future__ import annotations

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


def insert_entries(
    connection: Connection, env_id: int, entries: list[tuple[str, SecretEntry]]
) -> list[str]:
    """Insert each entry whose id is not stored; a name taken by another id is stored
    as "name (id)" (never dropped, never overwriting). The names used.

    Call inside a transaction: two runs inserting one name at once make one of them
    fail on the primary key, and retry on a fresh read.
    """
    rows = connection.execute(
        "SELECT name, app_id FROM mvsync.entries WHERE env_id = %s", (env_id,)
    ).fetchall()
    names = {str(name) for name, _ in rows}
    ids = {str(app_id) for _, app_id in rows}
    values = []
    used = []
    for name, entry in entries:
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
            (env_id, target, entry.id, entry.sealed_api_key, entry.created_at, entry.key_captured)
        )
    if values:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO mvsync.entries"
                " (env_id, name, app_id, sealed_api_key, created_at, key_captured)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                values,
            )
    return used
