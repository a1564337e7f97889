"""Which store holds an environment's keys: its ``state_url`` database, else its files.

``open_store`` is the one place that decides (SPEC sections 5.1 and 5.4): with
``state_url`` (a ``${}`` template, expanded here from ``lookup``) a ``PgStore`` and
nothing beside the manifest; without it the secrets file, exactly as before (and
psycopg is not even imported).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mvsync.errors import StateError
from mvsync.manifest import interpolate
from mvsync.manifest.interpolate import Lookup
from mvsync.model import Account, DesiredEnvironment, LedgerPlace
from mvsync.store.base import KeyStore
from mvsync.store.files import FileStore
from mvsync.store.journal import JournalRecord
from mvsync.store.keys import SecretsFile
from mvsync.store.pg_url import refuse_ambiguous

if TYPE_CHECKING:
    from mvsync.store.pg import PgStore

# Seconds a failed write (a key record, the final save) is retried: ApplySettings.store_retry.
RETRY_FOR = 5.0

_SCHEMES = ("postgresql://", "postgres://")


def state_url(desired: DesiredEnvironment | LedgerPlace, lookup: Lookup) -> str | None:
    """The expanded ``state_url`` of ``desired`` (None without one); StateError naming the
    unset variable, or saying the value is not a PostgreSQL URL (never quoting it)."""
    if desired.state_url is None:
        return None
    name = desired.name if isinstance(desired, DesiredEnvironment) else desired.environment
    where = f"environment '{name}': state_url"
    try:
        url = interpolate.expand(desired.state_url, lookup)
    except interpolate.MissingVariableError as missing:
        raise StateError(f"{where} needs the variable {missing.name}, which is not set") from None
    except interpolate.TemplateSyntaxError:  # pragma: no cover - the manifest check refuses it
        raise StateError(f"{where} is not a valid ${{}} template") from None
    if not url.startswith(_SCHEMES):
        raise StateError(
            f"{where} must expand to a postgresql:// or postgres:// URL (the value is not shown)"
        )
    refuse_ambiguous(url, where)
    return url


def open_pg_store(
    desired: DesiredEnvironment,
    lookup: Lookup,
    *,
    retry_for: float = RETRY_FOR,
    sleep: Callable[[float], None] = time.sleep,
) -> PgStore | None:
    """The environment's database store, or None when it has no ``state_url``."""
    url = state_url(desired, lookup)
    if url is None:
        return None
    # psycopg costs ~0.3 s to import: only environments with state_url pay it.
    from mvsync.store.pg import PgStore

    return PgStore(url, desired.name, desired.api_url, retry_for=retry_for, sleep=sleep)


def open_store(
    desired: DesiredEnvironment,
    lookup: Lookup = os.environ.get,
    *,
    retry_for: float = RETRY_FOR,
    sleep: Callable[[float], None] = time.sleep,
) -> KeyStore:
    """The store of ``desired``: its database with ``state_url``, else its secrets file."""
    database = open_pg_store(desired, lookup, retry_for=retry_for, sleep=sleep)
    if database is not None:
        return database
    return local_store(desired, retry_for=retry_for, sleep=sleep)


def local_store(
    desired: DesiredEnvironment,
    *,
    retry_for: float = RETRY_FOR,
    sleep: Callable[[float], None] = time.sleep,
) -> FileStore:
    """The secrets folder beside the manifest: the store without ``state_url``, and with
    it the fallback for keys the database could not take (SPEC 5.4)."""
    return FileStore(
        desired.secrets_path, desired.name, desired.api_url, retry_seconds=retry_for, sleep=sleep
    )


class DatabaseLedger:
    """The ledger of an environment with ``state_url`` (SPEC 5.3, 5.4): its entries and
    journal in the database, read only: SELECTs alone (no lock, no schema, no row)."""

    def __init__(self, store: PgStore) -> None:
        self.store = store

    @property
    def location(self) -> str:
        return self.store.location

    def snapshot(self) -> tuple[SecretsFile, list[JournalRecord]]:
        try:
            return self.store.read_only()
        finally:
            self.store.close()


def database_ledger(
    place: LedgerPlace, lookup: Lookup, account: Account | None = None
) -> DatabaseLedger | None:
    """The database ledger of ``place``, or None without ``state_url``; StateError when
    its variables (or api_url's: environments are kept by name and api_url) are unset.

    A database may hold the ledgers of several accounts: ``account`` (what a plan's list
    says), else the fingerprint of the key in ``place``'s API key variable, says whose."""
    url = state_url(place, lookup)
    if url is None:
        return None
    if place.api_url is None:
        raise StateError(
            f"environment '{place.environment}': its ledger is in the database under its "
            "api_url, whose variables are not set here"
        )
    from mvsync.store.pg import PgStore

    store = PgStore(url, place.environment, place.api_url)
    if account is None:
        api_key = lookup(place.api_key_env) if place.api_key_env else None
        account = Account.of(api_key)
    store.identify(account)
    return DatabaseLedger(store)
