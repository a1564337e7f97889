"""State per account: two teams whose manifests both say ``dev`` on one ``api_url``, with
the API keys of two MiniVoice accounts, share one database and never each other's ledger;
a rotated bearer key finds its account's ledger again; a database of the previous
schema (one ledger per environment) is migrated in place and claimed by its account.

Real processes, the emulator (one customer per seeded key), a real PostgreSQL server.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psycopg

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator, Fault
from mvsync.sealing import seal, unseal
from mvsync.store import pg_schema
from test_apply_pg import NOT_CAPTURED, Setup, cli_env, manifest_in, run_apply, setup  # noqa: F401
from test_state_url_secrets import run_mvsync

TEAM_B_KEY = "mvtest_TEAM_B_BEARER_CANARY_41d2"


def _two_accounts(state: Setup) -> Emulator:
    emulator = state.emulator()
    emulator.add_api_key(TEAM_B_KEY)
    return emulator


def _account_rows(state: Setup) -> list[tuple[str | None, int]]:
    """(customer_id, entries) of each account row of environment dev."""
    with psycopg.connect(state.url) as connection:
        rows = connection.execute(
            "SELECT a.customer_id, count(e.name) FROM mvsync.accounts a"
            " JOIN mvsync.environments v ON v.id = a.env_id"
            " LEFT JOIN mvsync.entries e ON e.account_id = a.id"
            " WHERE v.name = 'dev' GROUP BY a.id ORDER BY a.id"
        ).fetchall()
    return [(customer, int(count)) for customer, count in rows]


def _sealed_of(state: Setup, customer: str) -> dict[str, tuple[str, str]]:
    """name → (app id, sealed key) of one customer's entries."""
    with psycopg.connect(state.url) as connection:
        rows = connection.execute(
            "SELECT e.name, e.app_id, e.sealed_api_key FROM mvsync.entries e"
            " JOIN mvsync.accounts a ON a.id = e.account_id WHERE a.customer_id = %s",
            (customer,),
        ).fetchall()
    return {name: (app_id, sealed) for name, app_id, sealed in rows}


def _console_app(
    emulator: Emulator, api_key: str, name: str, answer_url: str = "https://example.com/console"
) -> dict[str, str]:
    """An application made outside mvsync (the console), its key never seen by mvsync."""
    answer = httpx.post(
        f"{emulator.url}/v1/applications",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"name": name, "answer_url": answer_url},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    return body


def test_two_accounts_in_one_database_keep_their_own_ledgers(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = _two_accounts(setup)
    team_a = manifest_in(tmp_path / "team-a", setup, emulator.url, 2)
    team_b = manifest_in(tmp_path / "team-b", setup, emulator.url, 2)
    console = _console_app(emulator, TEAM_B_KEY, "Console IVR")
    setup.extra_keys.append(console["api_key"])
    first = run_apply(team_a, setup)
    assert first.returncode == 0, first.stdout + first.stderr
    # Team B: the same names, its own account. Its creates are not refused for A's
    # entries, and its console application is nobody's lost key.
    second = run_apply(team_b, setup, MV_TEST_KEY=TEAM_B_KEY)
    setup.extra_keys.extend([TEAM_B_KEY, *emulator.issued_keys(TEAM_B_KEY).values()])
    out = second.stdout + second.stderr
    assert_no_secrets(out, extra=setup.issued())
    assert second.returncode == 0, out
    assert "secrets file" not in out and NOT_CAPTURED not in out, out
    assert len(emulator.applications(TEAM_B_KEY)) == 3
    customer_a = emulator.applications(TEST_API_KEY)[0]["customer_id"]
    customer_b = console["customer_id"]
    assert _account_rows(setup) == [(customer_a, 2), (customer_b, 2)]
    for key, customer in ((TEST_API_KEY, customer_a), (TEAM_B_KEY, customer_b)):
        issued = emulator.issued_keys(key)
        for name, (app_id, sealed) in _sealed_of(setup, customer).items():
            assert unseal(sealed, [setup.identity]) == issued[app_id], name
    # Each team's plan and keys list read its own ledger: every key held, nothing else.
    for manifest, key, names in (
        (team_a, TEST_API_KEY, ["App 000", "App 001"]),
        (team_b, TEAM_B_KEY, ["App 000", "App 001"]),
    ):
        env = cli_env(setup, MV_TEST_KEY=key)
        listed = run_mvsync(manifest, env, "keys", "list", "--env", "dev", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(k["name"] for k in json.loads(listed.stdout)["keys"]) == names
        plan = run_mvsync(manifest, env, "plan", "--format", "json")
        assert plan.returncode == 0, plan.stderr
        changes = json.loads(plan.stdout)["environments"][0]["changes"]
        assert {c["name"]: c["key"] for c in changes if c["action"] == "unchanged"} == {
            "App 000": "held",
            "App 001": "held",
        }
        assert_no_secrets(listed.stdout + plan.stdout + plan.stderr, extra=setup.issued())
    # Without any API key, a reader cannot tell the two apart: it says so.
    env = cli_env(setup)
    del env["MV_TEST_KEY"]
    blind = run_mvsync(team_a, env, "keys", "list", "--env", "dev")
    assert blind.returncode == 1
    assert "2 MiniVoice accounts" in blind.stderr and "MV_TEST_KEY" not in blind.stdout


def test_a_lost_key_of_one_account_is_reported_whatever_the_other_did(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = _two_accounts(setup)
    team_a = manifest_in(tmp_path / "team-a", setup, emulator.url, 1)
    team_b = manifest_in(tmp_path / "team-b", setup, emulator.url, 1)
    assert run_apply(team_b, setup, MV_TEST_KEY=TEAM_B_KEY).returncode == 0
    setup.extra_keys.extend([TEAM_B_KEY, *emulator.issued_keys(TEAM_B_KEY).values()])
    # A's create committed, then its connection dropped: A's key is lost, A must hear of it.
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    lost = run_apply(team_a, setup)
    out = lost.stdout + lost.stderr
    assert lost.returncode == 1, out
    assert NOT_CAPTURED in out and "App 000" in out, out


def test_a_rotated_bearer_key_finds_its_accounts_ledger(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    manifest = manifest_in(tmp_path / "checkout", setup, emulator.url, 2)
    assert run_apply(manifest, setup).returncode == 0
    # The API authenticates with application keys: one of the account's keys, as a new bearer.
    rotated = next(iter(emulator.issued_keys(TEST_API_KEY).values()))
    again = run_apply(manifest, setup, MV_TEST_KEY=rotated)
    assert again.returncode == 0, again.stdout + again.stderr
    assert emulator.request_count("POST") == 2
    customer = emulator.applications(TEST_API_KEY)[0]["customer_id"]
    assert _account_rows(setup) == [(customer, 2)]
    env = cli_env(setup, MV_TEST_KEY=rotated)
    listed = run_mvsync(manifest, env, "keys", "list", "--env", "dev", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {k["state"] for k in json.loads(listed.stdout)["keys"]} == {"sealed"}


def _previous_schema(state: Setup, emulator: Emulator, names: list[str]) -> None:
    """The database as the previous mvsync left it: schema version 1, one environment,
    its entries keyed by environment alone (applications made, their keys sealed)."""
    with psycopg.connect(state.url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA mvsync")
        connection.execute(
            "CREATE TABLE mvsync.schema_version (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now(), mvsync_version text NOT NULL)"
        )
        for statement in pg_schema.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("INSERT INTO mvsync.schema_version VALUES (1, now(), '0.2.0')")
        env_id = connection.execute(
            "INSERT INTO mvsync.environments (name, api_url) VALUES ('dev', %s) RETURNING id",
            (emulator.url,),
        ).fetchone()
        assert env_id is not None
        for number, name in enumerate(names):
            app = _console_app(emulator, TEST_API_KEY, name, f"https://example.com/{number}")
            sealed = seal(app["api_key"], [state.identity.to_public()])
            connection.execute(
                "INSERT INTO mvsync.entries (env_id, name, app_id, sealed_api_key, key_captured)"
                " VALUES (%s, %s, %s, %s, true)",
                (env_id[0], name, app["id"], sealed),
            )


def test_a_previous_schema_database_is_migrated_in_place_and_claimed(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = _two_accounts(setup)
    _previous_schema(setup, emulator, ["App 000", "App 001"])  # as manifest_in names them
    manifest = manifest_in(tmp_path / "checkout", setup, emulator.url, 3)
    # A reader of the old schema reads it as it is, and changes nothing.
    plan = run_mvsync(manifest, cli_env(setup), "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    changes = json.loads(plan.stdout)["environments"][0]["changes"]
    keys = {c["name"]: c.get("key") for c in changes}
    assert keys["App 000"] == keys["App 001"] == "held"
    with psycopg.connect(setup.url) as connection:
        assert pg_schema.current_version(connection) == 1
    # Team B, another account, applies first: the old ledger is not its own.
    other = manifest_in(tmp_path / "team-b", setup, emulator.url, 1)
    assert run_apply(other, setup, MV_TEST_KEY=TEAM_B_KEY).returncode == 0
    setup.extra_keys.extend([TEAM_B_KEY, *emulator.issued_keys(TEAM_B_KEY).values()])
    done = run_apply(manifest, setup)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert emulator.request_count("POST") == 2 + 1 + 1  # the old two, B's one, App 002
    assert NOT_CAPTURED not in out, out
    customer_a = emulator.applications(TEST_API_KEY)[0]["customer_id"]
    customer_b = emulator.applications(TEAM_B_KEY)[0]["customer_id"]
    assert sorted(_account_rows(setup)) == sorted([(customer_a, 3), (customer_b, 1)])
    with psycopg.connect(setup.url) as connection:
        assert pg_schema.current_version(connection) == pg_schema.SCHEMA_VERSION


def test_moving_to_state_url_points_at_state_push_not_at_new_keys(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    manifest = manifest_in(tmp_path / "checkout", setup, emulator.url, 2)
    with_state = manifest.read_text()
    manifest.write_text(with_state.replace("    state_url: ${MVSYNC_STATE_URL}\n", ""))
    assert run_apply(manifest, setup).returncode == 0  # the keys in the local folder
    manifest.write_text(with_state)  # the environment moves to the database
    env = cli_env(setup)
    plan = run_mvsync(manifest, env, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    document = json.loads(plan.stdout)["environments"][0]
    advice = "holds 2 key(s) the database does not: mvsync state push --env dev copies them in"
    assert any(advice in warning for warning in document.get("warnings", [])), document
    assert {c["key"] for c in document["changes"]} == {"held"}
    listed = run_mvsync(manifest, env, "keys", "list", "--env", "dev")
    assert listed.returncode == 0 and advice in listed.stderr, listed.stderr
    pushed = run_mvsync(manifest, env, "state", "push", "--env", "dev")
    assert pushed.returncode == 0, pushed.stderr
    again = run_mvsync(manifest, env, "plan", "--format", "json")
    assert "warnings" not in json.loads(again.stdout)["environments"][0]
