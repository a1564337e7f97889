"""The environment's lock in PostgreSQL: a session-level advisory lock and a row naming it.

``pg_try_advisory_lock(27766, <environment id>)`` is polled on a connection opened for
the lock alone and kept for the whole apply. PostgreSQL releases a session's advisory
locks when the session ends — a holder killed with SIGKILL, a runner thrown away, a
network cut the server notices — so there is no stale lock and no force-unlock. Once
held, the holder upserts its ``mvsync.locks`` row (host, pid, started, command and the
lock session's backend pid); a refused apply names the holder from it, trusting only
the row whose backend pid is the session that holds the lock now.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

import psycopg

from mvsync.errors import LockError, StateError
from mvsync.escape import escape
from mvsync.store.pg_schema import ENVIRONMENT_LOCK_CLASS, Connection

POLL_INTERVAL = 0.2

_HOLDER = (
    "SELECT l.host, l.pid, l.started, l.command FROM mvsync.locks l"
    " JOIN pg_locks k ON k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid"
    " AND k.classid::bigint = %s AND k.objid::bigint = %s AND k.objsubid = 2"
    " WHERE l.env_id = %s"
)


class LockOwner(Protocol):
    """What the lock needs of its store (``pg.PgStore``)."""

    lock_backend_pid: int | None

    @property
    def env_id(self) -> int: ...
    @property
    def environment(self) -> str: ...
    @property
    def location(self) -> str: ...
    def connect(self) -> Connection: ...
    def close(self) -> None: ...
    def reason(self, error: BaseException) -> str: ...


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


class PgLock:
    """The advisory lock of ``store``'s environment, as a context manager."""

    def __init__(
        self,
        store: LockOwner,
        *,
        timeout: float,
        command: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.command = command
        self._sleep = sleep
        self._connection: Connection | None = None

    def _describe_holder(self, connection: Connection, env_id: int) -> str:
        row = connection.execute(_HOLDER, (ENVIRONMENT_LOCK_CLASS, env_id, env_id)).fetchone()
        if row is None:
            return "a session that has not yet said who it is"
        host, pid, started, command = row
        # The row is anyone's who may write the table: shown escaped, on one line.
        return escape(f"pid {pid} on {host}, started {_when(started)} ({command})")

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; LockError naming the holder."""
        store = self.store
        env_id = store.env_id
        connection = store.connect()
        deadline = time.monotonic() + self.timeout
        key = (ENVIRONMENT_LOCK_CLASS, env_id)
        try:
            while True:
                row = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
                if row is not None and row[0]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = self._describe_holder(connection, env_id)
                    waited = f" after waiting {self.timeout:g}s" if self.timeout else ""
                    raise LockError(
                        f"another apply holds the lock of environment '{store.environment}'"
                        f"{waited}: {holder}; state {store.location} "
                        "(use --lock-timeout SECONDS to wait for it)"
                    )
                self._sleep(min(POLL_INTERVAL, remaining))
            connection.execute(
                "INSERT INTO mvsync.locks (env_id, host, pid, started, command, backend_pid)"
                " VALUES (%s, %s, %s, %s, %s, pg_backend_pid())"
                " ON CONFLICT (env_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " started = excluded.started, command = excluded.command,"
                " backend_pid = excluded.backend_pid",
                (env_id, socket.gethostname(), os.getpid(), datetime.now(UTC), self.command),
            )
        except psycopg.Error as error:
            connection.close()
            raise StateError(
                f"{store.location}: cannot take the lock: {store.reason(error)[:200]}"
            ) from None
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        store.lock_backend_pid = connection.info.backend_pid

    def release(self) -> None:
        """Remove the holder row and unlock; a session already gone holds nothing."""
        connection, self._connection = self._connection, None
        self.store.lock_backend_pid = None
        if connection is None:
            return
        try:
            connection.execute(
                "DELETE FROM mvsync.locks WHERE env_id = %s AND backend_pid = pg_backend_pid()",
                (self.store.env_id,),
            )
            connection.execute(
                "SELECT pg_advisory_unlock(%s, %s)", (ENVIRONMENT_LOCK_CLASS, self.store.env_id)
            )
        except psycopg.Error:
            pass  # the session ended: PostgreSQL released its lock with it
        finally:
            connection.close()
            self.store.close()

    def __enter__(self) -> PgLock:
        self.acquire()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.release()
