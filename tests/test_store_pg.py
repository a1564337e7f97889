"""``PgStore`` on a real PostgreSQL server (tests/pgserver.py): tables, ledger, journal, lock.

No mock anywhere: every test has its own database on the session's server; records are
built as apply builds them, keys sealed with a fresh age identity.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from pydantic import SecretStr
from pyrage import x25519

from mvsync.errors import LockError, StateError
from mvsync.sealing import parse_recipient, seal, unseal
from mvsync.store import journal
from mvsync.store.keys import SecretEntry, add_records
from mvsync.store.pg import PgStore, redact_url
from mvsync.store.pg_schema import SCHEMA_VERSION
from pgserver import PgServer

API_URL = "http://127.0.0.1:9/"
KEY = "mv_live_PGSTORE_CANARY_0c41e2"


@pytest.fixture
def database(pg_server: PgServer) -> str:
    return pg_server.create_database()


@pytest.fixture
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


def sealed(identity: x25519.Identity, key: str = KEY) -> str:
    return seal(key, [parse_recipient(str(identity.to_public()))])


def store_of(url: str, env: str = "prod", retry_for: float = 10.0) -> PgStore:
    store = PgStore(url, env, API_URL, retry_for=retry_for)
    store.check()
    return store


def created(identity: x25519.Identity, name: str, app_id: str) -> journal.JournalRecord:
    armor = sealed(identity)
    return journal.created(name, app_id, None, "2026-05-29T12:00:00Z", sealed_api_key=armor)


def terminate(url: str, backend_pid: int | None) -> None:
    """End one session and wait until it is gone (pg_terminate_backend only signals it)."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
        for _ in range(200):
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend_pid,)
            ).fetchone()
            if row == (0,):
                return
            time.sleep(0.05)
    pytest.fail(f"backend {backend_pid} did not end")


def test_first_use_creates_the_schema_with_its_version(database: str) -> None:
    store_of(database)
    with psycopg.connect(database) as connection:
        version = connection.execute("SELECT max(version) FROM mvsync.schema_version").fetchone()
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mvsync'"
        ).fetchall()
    assert version == (SCHEMA_VERSION,)
    names = {"schema_version", "environments", "entries", "journal", "locks"}
    assert {t for (t,) in tables} == names
    store_of(database)  # a second use migrates nothing and refuses nothing


def test_runners_meeting_an_empty_database_at_once_create_one_schema(database: str) -> None:
    errors: list[BaseException] = []
    stores = [PgStore(database, "prod", API_URL) for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def first_use(store: PgStore) -> None:
        barrier.wait()
        try:
            store.check()
        except BaseException as error:  # noqa: BLE001 - collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({store.env_id for store in stores}) == 1
    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT version FROM mvsync.schema_version").fetchall()
    assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)]


def test_a_newer_schema_is_refused(database: str) -> None:
    store_of(database)
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO mvsync.schema_version (version, mvsync_version) VALUES (%s, 'future')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StateError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        store_of(database)


def test_environments_are_keyed_by_name_and_api_url(database: str) -> None:
    a = store_of(database, "prod")
    b = store_of(database, "staging")
    c = PgStore(database, "prod", "http://127.0.0.1:9")  # the same api_url, no slash
    c.check()
    d = PgStore(database, "prod", "https://other.example")
    d.check()
    e = PgStore(database, "prod", "HTTP://127.0.0.1:9")  # another case: one account
    e.check()
    assert a.env_id == c.env_id == e.env_id
    assert len({a.env_id, b.env_id, d.env_id}) == 3


def test_journal_then_save_round_trip(database: str, identity: x25519.Identity) -> None:
    store = store_of(database)
    with store.lock(timeout=0, command="test"):
        ledger, leftover = store.read()
        assert (ledger.applications, leftover) == ({}, [])
        with store.journal() as sink:
            sink.append(journal.intent("A"))
            sink.append(created(identity, "A", "app_1"))
            sink.append(journal.intent("B"))
            sink.append(journal.not_captured("B", "app_2"))
        # A fresh store (another machine) sees the journal before the fold.
        other = store_of(database)
        _, seen = other.read()
        assert [r.event for r in seen] == ["intent", "created", "intent", "not_captured"]
        assert seen[1].sealed_api_key is not None and seen[1].api_key is None
        add_records(ledger, seen)
        store.save(ledger)
        assert not store.has_journal()
    ledger, leftover = store_of(database).read()
    assert leftover == []
    entry = ledger.applications["A"]
    assert entry.id == "app_1" and entry.sealed_api_key is not None
    assert unseal(entry.sealed_api_key, [identity]) == KEY
    assert ledger.applications["B"] == SecretEntry(id="app_2", key_captured=False)


def test_a_plaintext_key_is_refused_before_any_row(database: str) -> None:
    store = store_of(database)
    with store.lock(timeout=0, command="test"):
        plain = journal.created("A", "app_1", SecretStr(KEY), "2026-05-29T12:00:00Z")
        with pytest.raises(StateError, match="unsealed"):
            store.journal().append(plain)
        ledger, _ = store.read()
        ledger.applications["A"] = SecretEntry(id="app_1", api_key=SecretStr(KEY))
        with pytest.raises(StateError, match="unsealed"):
            store.save(ledger)
        assert not store.has_journal()
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM mvsync.entries").fetchone() == (0,)


def test_save_never_overwrites_and_renames_a_taken_name(
    database: str, identity: x25519.Identity
) -> None:
    first = store_of(database)
    with first.lock(timeout=0, command="test"):
        ledger, _ = first.read()
        add_records(ledger, [created(identity, "A", "app_1")])
        first.save(ledger)
    # A stale ledger (read before app_1 was stored) saving another id under "A".
    second = store_of(database)
    stale = second.read()[0].model_copy(update={"applications": {}})
    second._stored = set()
    add_records(stale, [created(identity, "A", "app_9"), created(identity, "C", "app_1")])
    second.save(stale)
    ledger, _ = store_of(database).read()
    assert {n: e.id for n, e in ledger.applications.items()} == {
        "A": "app_1",
        "A (app_9)": "app_9",
    }


def test_save_deletes_only_the_journal_rows_it_read_or_wrote(
    database: str, identity: x25519.Identity
) -> None:
    store = store_of(database)
    with store.lock(timeout=0, command="test"):
        ledger, _ = store.read()
        store.journal().append(journal.intent("A"))
        # A row written by some other run after this one read the journal.
        stray = store_of(database)
        stray.append(created(identity, "S", "app_s"))
        store.save(ledger)
    _, leftover = store_of(database).read()
    assert [(r.event, r.name) for r in leftover] == [("created", "S")]


def test_an_intent_needs_the_lock_session(database: str, pg_server: PgServer) -> None:
    store = store_of(database, retry_for=0)
    with pytest.raises(LockError, match="needs the environment's lock"):
        store.append(journal.intent("A"))
    with store.lock(timeout=0, command="test"):
        store.append(journal.intent("A"))
        # The lock session ends (a network cut, a server restart...): no new intent.
        terminate(database, store.lock_backend_pid)
        with pytest.raises(LockError, match="lost the lock"):
            store.append(journal.intent("B"))


def test_a_second_lock_waits_then_names_the_holder(database: str) -> None:
    holder = store_of(database)
    waiter = store_of(database)
    with holder.lock(timeout=0, command="mvsync apply --env prod"):
        with pytest.raises(LockError) as refused, waiter.lock(timeout=0.5, command="second"):
            pytest.fail("two holders of one lock")
        message = str(refused.value)
        assert "after waiting 0.5s" in message
        assert "(mvsync apply --env prod)" in message
        assert f"pid {os.getpid()} on " in message
    with waiter.lock(timeout=0, command="second"):
        with psycopg.connect(database) as connection:
            row = connection.execute("SELECT command FROM mvsync.locks").fetchone()
        assert row == ("second",)
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM mvsync.locks").fetchone() == (0,)


def test_the_lock_is_free_once_waited_for(database: str) -> None:
    holder = store_of(database)
    waiter = store_of(database)
    lock = holder.lock(timeout=0, command="first")
    lock.acquire()
    releaser = threading.Timer(0.5, lock.release)
    releaser.start()
    try:
        with waiter.lock(timeout=20, command="second"):
            assert waiter.lock_backend_pid is not None
    finally:
        releaser.join()


def test_an_unreachable_database_is_one_clear_error(pg_server: PgServer) -> None:
    url = pg_server.dsn("no_such_database_here")
    store = PgStore(url, "prod", API_URL)
    with pytest.raises(StateError, match="cannot connect"):
        store.check()
    missing = PgStore("postgresql://u:hunter2@/db?host=/nonexistent/socket", "prod", API_URL)
    with pytest.raises(StateError) as refused:
        missing.check()
    assert "hunter2" not in str(refused.value)


def test_a_key_record_is_retried_across_a_lost_connection(
    database: str, identity: x25519.Identity, pg_server: PgServer
) -> None:
    store = store_of(database)
    with store.lock(timeout=0, command="test"):
        store.append(created(identity, "A", "app_1"))
        # Every session but the lock's... and the lock's too: the key record reconnects.
        pg_server.kill_connections(database.rsplit("/", 1)[1].split("?")[0])
        store.append(created(identity, "B", "app_2"))
    _, leftover = store_of(database).read()
    assert [r.name for r in leftover] == ["A", "B"]


def test_the_location_has_no_password() -> None:
    assert redact_url("postgresql://me:s3cret@db.example:5432/state?sslmode=require") == (
        "postgresql://me@db.example:5432/state"
    )
    assert "s3cret" not in redact_url("postgres://db/state?password=s3cret&sslmode=verify-full")


def test_an_apply_without_state_url_does_not_import_psycopg() -> None:
    """psycopg costs a few hundred ms to import: only state_url environments pay it."""
    import subprocess
    import sys

    code = (
        "import sys, mvsync.cli.group, mvsync.cli.apply, mvsync.apply.run, mvsync.apply.push;"
        "print('psycopg' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_save_keeps_the_intents_in_doubt_with_their_time(
    database: str, identity: x25519.Identity
) -> None:
    store = store_of(database)
    with store.lock(timeout=0, command="test"):
        ledger, _ = store.read()
        doubt = journal.intent("D")
        key = created(identity, "A", "app_1")
        with store.journal() as sink:
            sink.append(doubt)
            sink.append(journal.intent("A"))
            sink.append(key)
        add_records(ledger, [key])
        store.save(ledger, [doubt])
        assert store.unjournalled([doubt, key]) == []
    _, leftover = store_of(database).read()
    assert [(r.event, r.name, r.ts) for r in leftover] == [("intent", "D", doubt.ts)]
