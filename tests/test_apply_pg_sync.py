"""Synchronous commits on a database whose default is ``synchronous_commit = off``.

A key record is durable when its append returns only if the commit was flushed before
it was acknowledged. The test database is set asynchronous by default (``ALTER DATABASE
... SET``): every session mvsync opens must still read ``on``, and an apply killed once
six creates exist must have a committed key record (sealed, in ``mvsync.journal``) for
each application but the one create in flight (``--concurrency 1``); the next apply
then holds every key but that one, reported.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pyrage import x25519

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.sealing import unseal
from mvsync.store.pg import PgStore
from pgserver import PgServer
from test_apply_pg import (
    NOT_CAPTURED,
    Setup,
    entries,
    manifest_in,
    run_apply,
    start_apply,
    wait_for,
)

CREATES = 12
CONCURRENCY = 1


@pytest.fixture
def asynchronous(pg_server: PgServer) -> Iterator[Setup]:
    """test_apply_pg's ``setup``, its database's default ``synchronous_commit = off``."""
    url = pg_server.create_database()
    state = Setup(
        url=url, dbname=url.split("/")[3].split("?")[0], identity=x25519.Identity.generate()
    )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{state.dbname}" SET synchronous_commit = off')
    with psycopg.connect(url) as connection:  # a new session takes the default
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("off",)
    try:
        yield state
        assert_no_secrets(pg_server.pg_dump(state.dbname), extra=state.issued())
    finally:
        for server in state.emulators:
            server.stop()


def test_every_session_of_the_store_commits_synchronously_on_an_asynchronous_database(
    asynchronous: Setup,
) -> None:
    setup = asynchronous
    store = PgStore(setup.url, "dev", "http://127.0.0.1:9")
    try:
        store.check()  # the tables, on a session of the store's own
        connection = store.connect()  # every session the store opens comes from here
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)
        # The server's own view of that session, not only what the client was told.
        row = connection.execute(
            "SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'"
        ).fetchone()
        assert row == ("on", "session"), row
    finally:
        store.close()


@pytest.mark.timeout(300)
def test_an_apply_killed_on_an_asynchronous_database_has_every_key_it_received_committed(
    asynchronous: Setup, tmp_path: Path
) -> None:
    setup = asynchronous
    emulator = setup.emulator(latency=0.05)
    manifest = manifest_in(tmp_path / "checkout", setup, emulator.url, CREATES)
    process = start_apply(manifest, setup, "--concurrency", str(CONCURRENCY))
    try:
        wait_for(lambda: len(emulator.applications(TEST_API_KEY)) >= 6, "6 creates")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the apply ended before the kill"
    remote = emulator.applications(TEST_API_KEY)
    assert 6 <= len(remote) < CREATES
    issued = emulator.issued_keys(TEST_API_KEY)
    with psycopg.connect(setup.url) as connection:
        rows = connection.execute(
            "SELECT app_id, sealed_api_key FROM mvsync.journal WHERE event = 'created'"
        ).fetchall()
    committed = {str(app_id): str(sealed) for app_id, sealed in rows}
    for app_id, sealed in committed.items():
        assert unseal(sealed, [setup.identity]) == issued[app_id]
    missing = [app["name"] for app in remote if app["id"] not in committed]
    assert len(missing) <= CONCURRENCY, f"no committed key record for {missing}"

    after = run_apply(manifest, setup)
    stored = entries(setup)
    issued = emulator.issued_keys(TEST_API_KEY)
    assert len(emulator.applications(TEST_API_KEY)) == CREATES
    not_captured = sorted(name for name, entry in stored.items() if entry.sealed_api_key is None)
    # Only the create in flight at the kill (its answer may have come after ``remote``).
    assert set(missing) <= set(not_captured) and len(not_captured) <= CONCURRENCY, not_captured
    for name in not_captured:
        assert f'name "{name}", id {stored[name].id}: {NOT_CAPTURED}' in after.stdout
    assert after.returncode == (1 if not_captured else 0), after.stdout + after.stderr
    for app in emulator.applications(TEST_API_KEY):
        sealed = stored[app["name"]].sealed_api_key
        if sealed is not None:
            assert unseal(sealed, [setup.identity]) == issued[app["id"]]
    assert_no_secrets(after.stdout + after.stderr, extra=setup.issued())
