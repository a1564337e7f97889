"""Readers only read: ``plan``, ``keys list`` and ``keys show`` with ``state_url`` write
nothing to the database — no schema, no migration, no environment row — and work for a
role that may only ``SELECT``; a database without mvsync's schema is an empty ledger.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from helpers import TEST_API_KEY, assert_no_secrets
from pgserver import PgServer
from test_apply_pg import Setup, cli_env, manifest_in, run_apply, setup  # noqa: F401
from test_state_url_secrets import run_mvsync


def _reader_url(pg_server: PgServer, url: str, dbname: str) -> str:
    """A LOGIN role that may only SELECT mvsync's tables (those there now and later)."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        connection.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(role)
            )
        )
        exists = connection.execute("SELECT to_regnamespace('mvsync') IS NOT NULL").fetchone()
        if exists and exists[0]:
            for grant in (
                "GRANT USAGE ON SCHEMA mvsync TO {}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA mvsync TO {}",
            ):
                connection.execute(sql.SQL(grant).format(sql.Identifier(role)))
    return url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


def _schema_exists(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT to_regnamespace('mvsync') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_plan_and_keys_list_on_a_fresh_database_create_nothing(
    setup: Setup,  # noqa: F811
    pg_server: PgServer,
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    manifest = manifest_in(tmp_path, setup, emulator.url, 2)
    env = cli_env(setup, MVSYNC_STATE_URL=_reader_url(pg_server, setup.url, setup.dbname))
    plan = run_mvsync(manifest, env, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert "key status unknown" not in plan.stdout, plan.stdout
    listed = run_mvsync(manifest, env, "keys", "list", "--env", "dev", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["keys"] == []
    assert not _schema_exists(setup.url), "a reader created mvsync's schema"


def test_a_select_only_role_can_plan_list_and_show(
    setup: Setup,  # noqa: F811
    pg_server: PgServer,
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    manifest = manifest_in(tmp_path / "applier", setup, emulator.url, 2)
    assert run_apply(manifest, setup).returncode == 0
    reader = manifest_in(tmp_path / "reader", setup, emulator.url, 2)
    env = cli_env(setup, MVSYNC_STATE_URL=_reader_url(pg_server, setup.url, setup.dbname))
    listed = run_mvsync(reader, env, "keys", "list", "--env", "dev", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {k["state"] for k in json.loads(listed.stdout)["keys"]} == {"sealed"}
    plan = run_mvsync(reader, env, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    changes = json.loads(plan.stdout)["environments"][0]["changes"]
    assert {c["key"] for c in changes} == {"held"}
    identity = tmp_path / "identity.txt"
    identity.write_text(str(setup.identity) + "\n")
    identity.chmod(0o600)
    shown = run_mvsync(reader, env, "keys", "show", "--env", "dev", "App 001", "-i", str(identity))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() in emulator.issued_keys(TEST_API_KEY).values()
    for out in (listed, plan):
        assert_no_secrets(out.stdout + out.stderr, extra=setup.issued())
