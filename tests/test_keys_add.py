"""``mvsync keys add``: a key from stdin, checked with MiniVoice, recorded, delivered.

Real processes against the emulator on loopback: the console's key of an application made
outside mvsync clears "key missing"; a held key is refused without ``--replace`` and kept
in the entry's history with it; a forged key (one MiniVoice does not know, or another
account's) records nothing and reaches no sink; sealed environments seal it; PostgreSQL
holds it too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pyrage import x25519

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.store.keys import read_secrets
from sinks import recorded, recording_sink
from test_cli_apply import cli_env, command, create_out_of_band, run, secrets_path, write_manifest
from test_plan_keys import add_to_manifest

OTHER_ACCOUNT = "mv_test_OTHERACCOUNT_0123456789"


def keys_add(
    folder: Path, key: str, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(folder, "keys", "add", "--env", "dev", *args),
        input=key,
        capture_output=True,
        text=True,
        env={**cli_env(), **variables},
        timeout=60,
    )


def listed(folder: Path) -> dict[str, dict[str, object]]:
    done = run(folder, "keys", "list", "--env", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    return {entry["name"]: entry for entry in json.loads(done.stdout)["keys"]}


def console_key(emulator: Emulator, name: str) -> tuple[str, str]:
    """Make ``name`` in the emulator as the console would: its id and its key."""
    create_out_of_band(emulator, name)
    app_id = next(a["id"] for a in emulator.applications(TEST_API_KEY) if a["name"] == name)
    return app_id, emulator.issued_keys(TEST_API_KEY)[app_id]


def with_sink(folder: Path, runs: Path) -> None:
    manifest = folder / "mvsync.yaml"
    script = recording_sink(runs)
    text = manifest.read_text().replace(
        "    api_key_env: MV_TEST_KEY\n",
        f'    api_key_env: MV_TEST_KEY\n    key_sink: ["{script}", "KEY_{{slug}}"]\n'
        "    key_sink_env: [SINK_MODE]\n",
    )
    manifest.write_text(text)


def test_a_console_key_clears_key_missing_and_reaches_the_sink(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    with_sink(tmp_path, tmp_path / "runs")
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    add_to_manifest(tmp_path, "Console IVR")
    app_id, key = console_key(emulator, "Console IVR")
    before = json.loads(run(tmp_path, "plan", "--format", "json").stdout)
    assert before["environments"][0]["summary"]["key_missing"] == 1

    done = keys_add(tmp_path, key + "\n", "Console IVR")

    assert done.returncode == 0, done.stderr
    assert "Delivered to the key sink." in done.stdout
    assert_no_secrets(done.stdout + done.stderr, [key])
    assert listed(tmp_path)["Console IVR"]["id"] == app_id
    after = json.loads(run(tmp_path, "plan", "--format", "json").stdout)
    assert after["environments"][0]["summary"]["key_missing"] == 0
    assert recorded(tmp_path / "runs")["CONSOLE_IVR"]["stdin"] == key
    # The next apply folds the record into the secrets file.
    folded = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert folded.returncode == 0, folded.stdout + folded.stderr
    loaded = read_secrets(secrets_path(tmp_path))
    assert loaded is not None
    entry = loaded.applications["Console IVR"]
    assert entry.api_key is not None and entry.api_key.get_secret_value() == key


def test_a_held_key_is_refused_without_replace_and_kept_in_history_with_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    recipient_identity = x25519.Identity.generate()
    write_manifest(tmp_path, emulator.url, count=1)
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "    api_key_env: MV_TEST_KEY\n",
            f"    api_key_env: MV_TEST_KEY\n    recipients: [{recipient_identity.to_public()}]\n",
        )
    )
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    [(app_id, key)] = emulator.issued_keys(TEST_API_KEY).items()
    before = read_secrets(secrets_path(tmp_path))
    assert before is not None
    old_sealed = before.applications["App 0"].sealed_api_key

    refused = keys_add(tmp_path, key, "App 0")
    replaced = keys_add(tmp_path, key, "App 0", "--replace")

    assert refused.returncode == 1
    assert "already holds a key" in refused.stderr and "--replace" in refused.stderr
    assert replaced.returncode == 0, replaced.stderr
    assert "sealed" in replaced.stdout
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    after = read_secrets(secrets_path(tmp_path))
    assert after is not None
    entry = after.applications["App 0"]
    assert entry.id == app_id and entry.api_key is None and entry.sealed_api_key is not None
    assert entry.sealed_api_key != old_sealed
    assert [old.sealed_api_key for old in entry.history] == [old_sealed]
    assert entry.history[0].replaced_at
    text = secrets_path(tmp_path).read_text()
    assert key not in text
    for done in (refused, replaced):
        assert_no_secrets(done.stdout + done.stderr, [key])


def test_a_forged_key_records_nothing_and_reaches_no_sink(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    with_sink(tmp_path, tmp_path / "runs")
    app_id, _key = console_key(emulator, "Console IVR")
    forged = "mv_live_FORGED_0123456789abcdef"

    done = keys_add(tmp_path, forged, "Console IVR")

    assert done.returncode == 1
    assert "refused by MiniVoice (HTTP 401)" in done.stderr
    assert "nothing was recorded" in done.stderr
    assert_no_secrets(done.stdout + done.stderr, [forged])
    assert listed(tmp_path) == {}
    assert recorded(tmp_path / "runs") == {}
    assert app_id not in done.stdout


def test_another_accounts_key_is_refused(tmp_path: Path) -> None:
    with Emulator([TEST_API_KEY, OTHER_ACCOUNT]) as emulator:
        write_manifest(tmp_path, emulator.url, count=1)
        create_out_of_band(emulator, "Console IVR")
        from mvsync.api.client import MiniVoiceClient
        from mvsync.model import CreateRequest

        with MiniVoiceClient(emulator.url, OTHER_ACCOUNT) as other:
            theirs = other.create_application(
                CreateRequest(name="Theirs", answer_url="https://x.example/a")
            )
        other_key = theirs.api_key.get_secret_value()

        done = keys_add(tmp_path, other_key, "Console IVR")

        assert done.returncode == 1
        assert "another account or application" in done.stderr
        assert listed(tmp_path) == {}


@pytest.mark.parametrize(
    "given",
    ["", "\n", "two\nlines\n", "a key with spaces"],
    ids=["empty", "newline", "two-lines", "spaces"],
)
def test_what_is_not_one_key_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator, given: str
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    requests = emulator.request_count("GET", "/v1/applications")

    done = keys_add(tmp_path, given, "Console IVR")

    assert done.returncode == 1
    assert "does not hold one API key" in done.stderr
    assert "Traceback" not in done.stderr
    assert emulator.request_count("GET", "/v1/applications") == requests


def test_an_unknown_name_without_id_names_the_next_step(tmp_path: Path, emulator: Emulator) -> None:
    write_manifest(tmp_path, emulator.url, count=1)

    done = keys_add(tmp_path, "mv_live_whatever_0123456789", "Nobody")

    assert done.returncode == 1
    assert 'no application named "Nobody"' in done.stderr and "--id" in done.stderr


def test_a_key_given_as_an_argument_is_not_taken(tmp_path: Path, emulator: Emulator) -> None:
    # keys add takes no key argument (ps would show it): a second argument is refused.
    write_manifest(tmp_path, emulator.url, count=1)
    key = "mv_live_ARGUMENT_0123456789abcdef"
    done = run(tmp_path, "keys", "add", "--env", "dev", "Console IVR", key)
    assert done.returncode != 0
    assert listed(tmp_path) == {}


def test_the_plan_names_the_sink_and_counts_keys_not_delivered(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=2)
    with_sink(tmp_path, tmp_path / "runs")
    planned = run(tmp_path, "plan", "--format", "markdown")
    assert "**Key sink**: new keys go to `" in planned.stdout
    assert "record-sink KEY_{slug}" in planned.stdout
    # A sink that fails: both keys stored, neither delivered; apply exits 1 naming them.
    failing = subprocess.run(
        command(tmp_path, "apply", "--env", "dev", "--yes"),
        capture_output=True,
        text=True,
        env={**cli_env(), "SINK_MODE": "fail"},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert failing.returncode == 1
    assert "not delivered to the key sink" in failing.stdout
    keys_issued = list(emulator.issued_keys(TEST_API_KEY).values())
    assert_no_secrets(failing.stdout + failing.stderr, keys_issued)

    document = json.loads(run(tmp_path, "plan", "--format", "json").stdout)
    text = run(tmp_path, "plan").stdout
    markdown = run(tmp_path, "plan", "--format", "markdown").stdout

    env = document["environments"][0]
    assert env["summary"]["key_undelivered"] == 2
    assert sorted(u["name"] for u in env["undelivered"]) == ["App 0", "App 1"]
    assert env["key_sink"].endswith("record-sink KEY_{slug}")
    assert "2 key undelivered" in text and 'undelivered   "App 0"' in text
    assert "mvsync keys deliver --env dev" in text
    assert "**Key not delivered** (2)" in markdown and "| key undelivered |" in markdown
    saved = tmp_path / "plan-dev.json"
    assert run(tmp_path, "plan", "-o", str(saved)).returncode == 0
    shown = run(tmp_path, "show", str(saved), "--format", "markdown").stdout
    assert "**Key sink**: new keys go to `" in shown and "**Key not delivered** (2)" in shown
    for seen in (text, markdown, json.dumps(document), saved.read_text(), shown):
        assert_no_secrets(seen, keys_issued)


def test_a_saved_plan_is_stale_once_the_key_sink_changes(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    with_sink(tmp_path, tmp_path / "runs")
    saved = tmp_path / "plan.json"
    assert run(tmp_path, "plan", "-o", str(saved)).returncode in (0, 2)
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(manifest.read_text().replace('"KEY_{slug}"', '"OTHER_{slug}"'))

    done = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(saved))

    assert done.returncode == 1
    assert "manifest" in done.stderr and "plan" in done.stderr, done.stderr
    assert emulator.request_count("POST") == 0
    assert recorded(tmp_path / "runs") == {}
