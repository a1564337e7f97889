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
from mvsync.model import DesiredEnvironment
from mvsync.store.base import KeyStore
from mvsync.store.files import FileStore

if TYPE_CHECKING:
    from mvsync.store.pg import PgStore

# Seconds a failed write (a key record, the final save) is retried: ApplySettings.store_retry.
RETRY_FOR = 5.0

_SCHEMES = ("postgresql://", "postgres://")


def state_url(desired: DesiredEnvironment, lookup: Lookup) -> str | None:
    """The expanded ``state_url`` of ``desired`` (None without one); StateError naming the
    unset variable, or saying the value is not a PostgreSQL URL (never quoting it)."""
    if desired.state_url is None:
        return None
    where = f"environment '{desired.name}': state_url"
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
    return FileStore(
        desired.secrets_path,
        desired.name,
        desired.api_url,
        retry_seconds=retry_for,
        sleep=sleep,
    )
