"""``PgSession``: the connections of one PostgreSQL store, and how a failed statement is
retried and reported (every secret of the URL masked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import psycopg.errors
from psycopg import conninfo

from mvsync.errors import StateError
from mvsync.store import pg_url
from mvsync.store.pg_schema import Connection

T = TypeVar("T")

CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise


class PgSession:
    """One connection per thread to ``url``, opened on first use."""

    def __init__(self, url: str, where: str, sleep: Callable[[float], None]) -> None:
        self.url = url
        pg_url.refuse_ambiguous(url, where)
        self._location = pg_url.describe(url)
        self._secrets = pg_url.secrets_of(url)
        self._sleep = sleep
        self._local = threading.local()
        self._guard = threading.Lock()
        self._open: list[Connection] = []

    @property
    def location(self) -> str:
        return self._location

    def reason(self, error: BaseException) -> str:
        """The first line of a driver error, every secret of the URL masked."""
        return pg_url.scrub(str(error), self._secrets) or type(error).__name__

    def connect(self) -> Connection:
        """A new autocommit connection, ``synchronous_commit`` not off; StateError if none."""
        options: dict[str, object] = {"autocommit": True, "application_name": "mvsync"}
        try:
            if "connect_timeout" not in conninfo.conninfo_to_dict(self.url):
                options["connect_timeout"] = CONNECT_TIMEOUT
            connection: Connection = psycopg.connect(self.url, **options)  # type: ignore[arg-type]
        except psycopg.Error as error:
            raise StateError(f"{self.location}: cannot connect: {self.reason(error)}") from None
        try:
            row = connection.execute("SHOW synchronous_commit").fetchone()
            if row is not None and row[0] == "off":
                # Guarantee 3 needs every commit flushed before it is acknowledged.
                connection.execute("SET synchronous_commit TO on")
        except psycopg.Error as error:
            connection.close()
            raise StateError(f"{self.location}: {self.reason(error)}") from None
        with self._guard:
            self._open.append(connection)
        return connection

    def _connection(self) -> Connection:
        """This thread's connection (a new one when it has none or it broke)."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.broken:
            connection = self.connect()
            self._local.connection = connection
        return connection

    def _forget(self) -> None:
        connection: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close every connection but the lock's (which ``PgLock`` closes)."""
        with self._guard:
            connections, self._open = self._open, []
        for connection in connections:
            connection.close()

    def _run(self, what: str, work: Callable[[Connection], T], *, retry_for: float = 0.0) -> T:
        """``work`` on this thread's connection; a lost connection is retried on a new one
        for ``retry_for`` seconds, then (as any database error) a StateError."""
        deadline = time.monotonic() + retry_for
        delay = 0.2
        while True:
            try:
                return work(self._connection())
            except (
                psycopg.OperationalError,
                psycopg.InterfaceError,
                psycopg.errors.UniqueViolation,  # a stray run stored the same name meanwhile
                StateError,
            ) as error:
                self._forget()
                if time.monotonic() + delay > deadline:
                    reason = self.reason(error)
                    if isinstance(error, StateError):  # from connect(): already located
                        reason = reason.removeprefix(f"{self.location}: ")
                    raise StateError(f"{self.location}: {what}: {reason}") from None
                self._sleep(delay)
                delay = min(delay * 2, 2.0)
            except psycopg.Error as error:
                raise StateError(f"{self.location}: {what}: {self.reason(error)}") from None
