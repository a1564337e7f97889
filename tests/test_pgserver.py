"""The real PostgreSQL server of the tests (tests/pgserver.py), through psycopg 3.

What the PostgreSQL state store will stand on: a database per test, committed rows,
a session advisory lock that a second session cannot take and that frees itself
when its holder is SIGKILLed, and a server that can be lost and brought back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pgserver import PgServer

LOCK_ID = 7_310_001


@pytest.fixture
def database(pg_server: PgServer) -> str:
    return pg_server.create_database()


def _try_lock(dsn: str) -> bool:
    """Whether a fresh session gets the advisory lock (and releases it again)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,)).fetchone()
        assert row is not None
        if row[0]:
            connection.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
        return bool(row[0])


def _backend_alive(dsn: str, backend_pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend_pid,)
        ).fetchone()
    return row is not None and row[0] == 1


def _wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Poll ``condition()`` until it is true or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


HOLDER = """
import sys, time, psycopg
connection = psycopg.connect(sys.argv[1], autocommit=True)
connection.execute("SELECT pg_advisory_lock(%s)", (int(sys.argv[2]),))
backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
print(f"locked {backend}", flush=True)
time.sleep(600)
"""


@pytest.fixture
def lock_holder(database: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A separate python process holding the advisory lock; its backend's pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database, str(LOCK_ID)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("locked "), f"the holder did not take the lock: {line!r}"
        yield process, int(line.split()[1])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_connect_create_insert_select(database: str) -> None:
    with psycopg.connect(database) as connection:
        connection.execute("CREATE TABLE entries (name text PRIMARY KEY, app_id text NOT NULL)")
        connection.execute(
            "INSERT INTO entries VALUES (%s, %s), (%s, %s)",
            ("Support IVR", "app_1", "Sales IVR", "app_2"),
        )
        connection.commit()
    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT name, app_id FROM entries ORDER BY app_id").fetchall()
    assert rows == [("Support IVR", "app_1"), ("Sales IVR", "app_2")]


def test_each_database_is_a_fresh_one(pg_server: PgServer) -> None:
    first, second = pg_server.create_database(), pg_server.create_database()
    assert first != second
    with psycopg.connect(first, autocommit=True) as connection:
        connection.execute("CREATE TABLE only_here (x int)")
    with psycopg.connect(second, autocommit=True) as connection:
        row = connection.execute("SELECT to_regclass('only_here') IS NULL").fetchone()
    assert row == (True,)


def test_durability_settings_are_the_defaults(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()
            for name in ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses")
        }
    assert settings == {
        "fsync": ("on",),
        "synchronous_commit": ("on",),
        "full_page_writes": ("on",),
        "listen_addresses": ("",),  # the Unix socket only, no TCP
    }


def test_advisory_lock_blocks_another_session(
    database: str, lock_holder: tuple[subprocess.Popen[str], int]
) -> None:
    assert _try_lock(database) is False


def test_advisory_lock_frees_itself_when_its_holder_is_sigkilled(
    database: str, lock_holder: tuple[subprocess.Popen[str], int]
) -> None:
    process, backend_pid = lock_holder
    assert _try_lock(database) is False
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    # The kernel closes the dead client's socket; its backend ends and the lock goes with it.
    assert _wait_until(lambda: not _backend_alive(database, backend_pid))
    assert _try_lock(database) is True


def test_kill_connections_ends_the_holders_session(
    pg_server: PgServer, database: str, lock_holder: tuple[subprocess.Popen[str], int]
) -> None:
    _, backend_pid = lock_holder
    dbname = conninfo_to_dict(database)["dbname"]
    assert pg_server.kill_connections(str(dbname)) == 1
    assert _wait_until(lambda: not _backend_alive(database, backend_pid))
    assert _try_lock(database) is True


def test_committed_rows_survive_a_crash_and_a_clean_stop(
    pg_server: PgServer, database: str
) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("CREATE TABLE intents (n int)")
        connection.execute("INSERT INTO intents VALUES (1)")
    survivor = psycopg.connect(database, autocommit=True)
    try:
        for mode in ("immediate", "fast"):
            pg_server.stop(mode)
            assert not pg_server.is_running()
            with pytest.raises(psycopg.OperationalError):
                survivor.execute("SELECT 1")
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(database, connect_timeout=5)
            pg_server.start()
            assert pg_server.is_running()
            survivor.close()
            survivor = psycopg.connect(database, autocommit=True)
            assert survivor.execute("SELECT n FROM intents").fetchall() == [(1,)]
    finally:
        survivor.close()
        if not pg_server.is_running():
            pg_server.start()


def test_pg_dump_shows_what_the_database_holds(pg_server: PgServer, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("CREATE TABLE marker (v text)")
        connection.execute("INSERT INTO marker VALUES ('dump-marker-41c7')")
    dump = pg_server.pg_dump(str(conninfo_to_dict(database)["dbname"]))
    assert "CREATE TABLE public.marker" in dump
    assert "dump-marker-41c7" in dump
