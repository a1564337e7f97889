"""Which ledger of a shared database is an account's own (SPEC 5.4).

Two teams may both name an environment ``staging`` on one ``api_url`` and share one
database; their applications, keys and journals must never meet. ``mvsync.accounts``
holds one row per MiniVoice account an environment was applied with, and every entry
and journal row belongs to one account row. A run recognises its account by:

1. the ``customer_id`` its list shows (every item carries it): the row of that customer
   (its key fingerprint updated, so a rotated bearer key finds its ledger again);
2. else the one-way fingerprint of its API key (``model.key_fingerprint``, never the
   key): the row that key made before the account had an application;
3. else, once, the row a database older than accounts was migrated into (customer and
   fingerprint both unknown) — when that ledger is empty, or names an application the list
   shows: those entries are this account's;
4. else nothing: an apply adds a row of its own, a reader sees an empty ledger.

A reader or writer that did not list (``keys list`` without the API key, ``state push``)
and knows no fingerprint takes the environment's only account row; with several, it is
asked for the API key.

A row learns its customer when a create answer names it (``bind``), so that the next
run's list finds it by customer even after the key was rotated.
"""

from __future__ import annotations

from mvsync.errors import StateError
from mvsync.model import Account
from mvsync.store.pg_schema import Connection


def _one(connection: Connection, query: str, params: tuple[object, ...]) -> int | None:
    row = connection.execute(query, params).fetchone()
    return None if row is None else int(str(row[0]))


def _unclaimed(connection: Connection, env_id: int, account: Account) -> int | None:
    """The legacy row of ``env_id`` that ``account`` may claim (step 3), if any."""
    legacy = _one(
        connection,
        "SELECT id FROM mvsync.accounts WHERE env_id = %s"
        " AND customer_id IS NULL AND key_fingerprint IS NULL ORDER BY id LIMIT 1",
        (env_id,),
    )
    if legacy is None:
        return None
    ids = [
        str(row[0])
        for row in connection.execute(
            "SELECT app_id FROM mvsync.entries WHERE account_id = %s", (legacy,)
        ).fetchall()
    ]
    if not ids:
        return legacy
    if account.remote_ids is not None and not account.remote_ids.isdisjoint(ids):
        return legacy
    return None


def find(connection: Connection, env_id: int, account: Account) -> int | None:
    """The account row of ``account`` in environment ``env_id`` (steps 1-3), or None."""
    if account.customer_id is not None:
        found = _one(
            connection,
            "SELECT id FROM mvsync.accounts WHERE env_id = %s AND customer_id = %s",
            (env_id, account.customer_id),
        )
        if found is not None:
            return found
    if account.fingerprint is not None:
        found = _one(
            connection,
            "SELECT id FROM mvsync.accounts WHERE env_id = %s AND key_fingerprint = %s"
            " AND (customer_id IS NULL OR %s::text IS NULL OR customer_id = %s)"
            " ORDER BY id LIMIT 1",
            (env_id, account.fingerprint, account.customer_id, account.customer_id),
        )
        if found is not None:
            return found
    return _unclaimed(connection, env_id, account)


def only_row(connection: Connection, env_id: int) -> int | None:
    """The account row of ``env_id`` when it has exactly one (a reader without the key)."""
    rows = connection.execute(
        "SELECT id FROM mvsync.accounts WHERE env_id = %s LIMIT 2", (env_id,)
    ).fetchall()
    return int(str(rows[0][0])) if len(rows) == 1 else None


def count(connection: Connection, env_id: int) -> int:
    return (
        _one(connection, "SELECT count(*) FROM mvsync.accounts WHERE env_id = %s", (env_id,)) or 0
    )


def locate(connection: Connection, env_id: int, account: Account) -> int | None:
    """``find``, and for a run that did not list (``keys list``, ``state push``) the
    environment's only account row; StateError when it has several and none is known."""
    found = find(connection, env_id, account)
    if found is not None or account.customer_id is not None or account.remote_ids is not None:
        return found
    accounts = count(connection, env_id)
    if accounts > 1:
        known = "none is known by this API key" if account.fingerprint else "no API key is set"
        raise StateError(
            f"the environment has the ledgers of {accounts} MiniVoice accounts in this "
            f"database and {known}: set the environment's API key variable to the key its "
            "applies use"
        )
    return only_row(connection, env_id)


def claim(connection: Connection, env_id: int, account: Account) -> int:
    """The row of ``account`` (located, else added), its customer and fingerprint recorded.

    Call inside a transaction holding the environment's lock: two runs of one account
    never add two rows.
    """
    found = locate(connection, env_id, account)
    if found is None:
        found = _one(
            connection,
            "INSERT INTO mvsync.accounts (env_id) VALUES (%s) RETURNING id",
            (env_id,),
        )
        assert found is not None
    bind(connection, found, account)
    return found


def bind(connection: Connection, account_id: int, account: Account) -> None:
    """Record what ``account`` knows on row ``account_id``: the customer once (never
    changed, never one another row of the environment already has), the latest
    fingerprint of its key."""
    if account.fingerprint is not None:
        connection.execute(
            "UPDATE mvsync.accounts SET key_fingerprint = %s WHERE id = %s",
            (account.fingerprint, account_id),
        )
    if account.customer_id is not None:
        connection.execute(
            "UPDATE mvsync.accounts AS a SET customer_id = %s WHERE a.id = %s"
            " AND a.customer_id IS NULL AND NOT EXISTS (SELECT 1 FROM mvsync.accounts AS o"
            "  WHERE o.env_id = a.env_id AND o.customer_id = %s)",
            (account.customer_id, account_id, account.customer_id),
        )
