"""``mvsync keys add`` with ``state_url``: the key sealed into the database, replace keeps
the old one's ciphertext in the entry's history, and no plaintext key ever reaches a row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.sealing import unseal
from test_apply_pg import Setup, cli_env, manifest_in, run_apply, setup  # noqa: F401
from test_cli_apply import create_out_of_band


def keys_add(
    manifest: Path,
    setup: Setup,  # noqa: F811
    key: str,
    *args: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(manifest), "keys", "add", "--env", "dev", *args],
        input=key,
        capture_output=True,
        text=True,
        env=cli_env(setup),
        timeout=120,
    )


def row(setup: Setup, name: str) -> tuple[str, str, object]:  # noqa: F811
    with psycopg.connect(setup.url) as connection:
        found = connection.execute(
            "SELECT app_id, sealed_api_key, history FROM mvsync.entries WHERE name = %s", (name,)
        ).fetchone()
    assert found is not None
    return str(found[0]), str(found[1]), found[2]


def test_keys_add_fills_and_replaces_in_the_database(
    tmp_path: Path,
    setup: Setup,  # noqa: F811
) -> None:
    emulator = setup.emulator()
    manifest = manifest_in(tmp_path, setup, emulator.url, creates=1)
    assert run_apply(manifest, setup).returncode == 0
    [(app_id, key)] = emulator.issued_keys(TEST_API_KEY).items()
    _, first_sealed, _ = row(setup, "App 000")
    create_out_of_band(emulator, "Console IVR")
    console_id, console_key = next(
        (i, k) for i, k in emulator.issued_keys(TEST_API_KEY).items() if i != app_id
    )

    added = keys_add(manifest, setup, console_key, "Console IVR")
    refused = keys_add(manifest, setup, key, "App 000")
    replaced = keys_add(manifest, setup, key, "App 000", "--replace")
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mvsync",
            "-f",
            str(manifest),
            "keys",
            "list",
            "--env",
            "dev",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=cli_env(setup),
        timeout=60,
    )
    folded = run_apply(manifest, setup)

    assert added.returncode == 0, added.stderr
    assert refused.returncode == 1 and "--replace" in refused.stderr
    assert replaced.returncode == 0, replaced.stderr
    assert {e["name"] for e in json.loads(listed.stdout)["keys"]} >= {"App 000", "Console IVR"}
    assert folded.returncode == 0, folded.stdout + folded.stderr
    got_id, sealed, console_history = row(setup, "Console IVR")
    assert console_history == []
    assert got_id == console_id
    assert unseal(sealed, [setup.identity]) == console_key
    _, now_sealed, app_history = row(setup, "App 000")
    assert now_sealed != first_sealed and unseal(now_sealed, [setup.identity]) == key
    assert isinstance(app_history, list) and len(app_history) == 1
    assert app_history[0]["sealed_api_key"] == first_sealed and app_history[0]["replaced_at"]
    for done in (added, refused, replaced, listed, folded):
        assert_no_secrets(done.stdout + done.stderr, setup.issued())
