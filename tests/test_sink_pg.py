"""Delivery state in PostgreSQL (``state_url``): real processes, a real server, the emulator.

Each entry row records when the key sink took its key (``delivered_at``): set by an apply
whose sink took it, NULL after a failing sink (``keys list`` says undelivered), and
``keys deliver`` (with the identity: keys in the database are sealed) hands it on, which
``keys list`` shows at once and the next apply folds into the row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from helpers import assert_no_secrets
from sinks import recorded, recording_sink, sink_manifest
from test_apply_pg import Setup, cli_env, setup  # noqa: F401  (setup: the fixture)


def mvsync(
    manifest: Path, test: Setup, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(manifest), *args],
        capture_output=True,
        text=True,
        env=cli_env(test, **variables),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def delivered_at(test: Setup) -> dict[str, object]:
    """Each entry row's delivered_at, read with SQL (not through mvsync)."""
    with psycopg.connect(test.url) as connection:
        rows = connection.execute("SELECT name, delivered_at FROM mvsync.entries").fetchall()
    return {str(name): when for name, when in rows}


def listed(manifest: Path, test: Setup) -> dict[str, dict[str, object]]:
    done = mvsync(manifest, test, "keys", "list", "--env", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    return {str(k["name"]): k for k in json.loads(done.stdout)["keys"]}


def test_an_apply_whose_sink_takes_each_key_sets_delivered_at(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    runs = tmp_path / "runs"
    manifest = sink_manifest(
        tmp_path / "a",
        emulator.url,
        recording_sink(runs),
        count=2,
        recipients=[setup.recipient],
        state_url=True,
    )
    done = mvsync(manifest, setup, "apply", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(delivered_at(setup)) == 2
    assert all(when is not None for when in delivered_at(setup).values())
    assert {run["stdin"] for run in recorded(runs).values()} == set(setup.issued())
    assert all(entry["delivered"] for entry in listed(manifest, setup).values())
    assert_no_secrets(done.stdout + done.stderr, extra=setup.issued())


def test_a_failing_sink_leaves_delivered_at_null_and_keys_deliver_clears_it(
    setup: Setup,  # noqa: F811
    tmp_path: Path,
) -> None:
    emulator = setup.emulator()
    runs = tmp_path / "runs"
    manifest = sink_manifest(
        tmp_path / "a",
        emulator.url,
        recording_sink(runs),
        count=2,
        recipients=[setup.recipient],
        state_url=True,
    )
    failed = mvsync(manifest, setup, "apply", "--env", "dev", "--yes", SINK_MODE="fail")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert delivered_at(setup) == {"App 0": None, "App 1": None}
    assert failed.stdout.count("stored, not delivered to the key sink") == 2
    assert {e["delivered"] for e in listed(manifest, setup).values()} == {False}
    for run in runs.glob("*.json"):
        run.unlink()

    identity = str(setup.identity)
    fixed = mvsync(
        manifest, setup, "keys", "deliver", "--env", "dev", SINK_MODE="ok",
        MVSYNC_AGE_IDENTITY=identity,
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert {run["stdin"] for run in recorded(runs).values()} == set(setup.issued())
    assert all(e["delivered"] and e["delivered_at"] for e in listed(manifest, setup).values())
    # Journalled; the next apply (from another checkout) folds it into the rows.
    other = sink_manifest(
        tmp_path / "b",
        emulator.url,
        recording_sink(tmp_path / "runs-b"),
        count=2,
        recipients=[setup.recipient],
        state_url=True,
    )
    again = mvsync(other, setup, "apply", "--env", "dev", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(when is not None for when in delivered_at(setup).values())
    assert recorded(tmp_path / "runs-b") == {}  # delivered already: not handed on again
    for run in (failed, fixed, again):
        assert_no_secrets(run.stdout + run.stderr, extra=[*setup.issued(), identity])
