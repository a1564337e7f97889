"""``mvsync keys deliver`` as a real process against the emulator on loopback.

An environment without ``key_sink`` is refused with the next step; nothing left to
deliver says so; sealed keys are opened with ``-i FILE``, ``-i -`` or
``MVSYNC_AGE_IDENTITY``; a key a secrets file holds that MiniVoice does not vouch for (a
forged one) is refused and never reaches the sink.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pyrage import x25519

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.sealing import unseal
from mvsync.store.keys import read_secrets
from sinks import recorded, recording_sink, sink_manifest
from test_cli_apply import cli_env, secrets_path
from test_sink_apply import listed

FORGED = "mv_live_FORGED_BY_A_PULL_REQUEST_0123456789"


def mvsync(
    folder: Path, *args: str, stdin: str = "", **variables: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml"), *args],
        capture_output=True,
        text=True,
        env={**cli_env(), **variables},
        input=stdin,
        timeout=90,
    )


def deliver(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return mvsync(folder, "keys", "deliver", "--env", "dev", *args, **variables)


def test_an_environment_without_key_sink_is_refused_with_the_next_step(
    emulator: Emulator, tmp_path: Path
) -> None:
    from test_cli_apply import write_manifest

    write_manifest(tmp_path, emulator.url, count=1)
    done = deliver(tmp_path)
    assert done.returncode == 1
    assert "no key_sink in environment dev: add one to the manifest (docs/keys.md)" in done.stderr
    assert "Traceback" not in done.stderr


def test_nothing_to_deliver_says_so_and_exits_0(emulator: Emulator, tmp_path: Path) -> None:
    sink_manifest(tmp_path, emulator.url, recording_sink(tmp_path / "runs"), count=1)
    assert mvsync(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    done = deliver(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nothing to deliver" in done.stdout


def sealed_and_undelivered(
    emulator: Emulator, folder: Path
) -> tuple[x25519.Identity, dict[str, str]]:
    """Two sealed keys in the ledger that the sink refused at apply."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    sink_manifest(
        folder, emulator.url, recording_sink(folder / "runs"), count=2, recipients=[recipient]
    )
    done = mvsync(folder, "apply", "--env", "dev", "--yes", SINK_MODE="fail")
    assert done.returncode == 1, done.stdout + done.stderr
    for run in (folder / "runs").glob("*.json"):
        run.unlink()  # what the refusing sink recorded
    ledger = read_secrets(secrets_path(folder))
    assert ledger is not None
    for entry in ledger.applications.values():
        assert entry.api_key is None and entry.sealed_api_key is not None
    return identity, emulator.issued_keys(TEST_API_KEY)


def test_sealed_keys_are_delivered_with_the_identity_file(
    emulator: Emulator, tmp_path: Path
) -> None:
    identity, issued = sealed_and_undelivered(emulator, tmp_path)
    without = deliver(tmp_path, SINK_MODE="ok")
    assert without.returncode == 1
    assert without.stdout.count("the key is sealed; give the age identity") == 2
    assert recorded(tmp_path / "runs") == {}  # not run without the key
    key_file = tmp_path / "identity.txt"
    key_file.write_text(str(identity) + "\n")
    key_file.chmod(0o600)
    done = deliver(tmp_path, "-i", str(key_file), SINK_MODE="ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {run["stdin"] for run in recorded(tmp_path / "runs").values()} == set(issued.values())
    assert all(entry["delivered"] for entry in listed(tmp_path).values())
    for run in (without, done):
        assert_no_secrets(run.stdout + run.stderr, extra=[*issued.values(), str(identity)])


def test_sealed_keys_are_delivered_with_the_identity_from_the_variable_or_stdin(
    emulator: Emulator, tmp_path: Path
) -> None:
    identity, issued = sealed_and_undelivered(emulator, tmp_path)
    (first, second) = sorted(listed(tmp_path))
    by_variable = deliver(tmp_path, first, SINK_MODE="ok", MVSYNC_AGE_IDENTITY=str(identity))
    assert by_variable.returncode == 0, by_variable.stdout + by_variable.stderr
    by_stdin = deliver(tmp_path, second, "-i", "-", stdin=str(identity) + "\n", SINK_MODE="ok")
    assert by_stdin.returncode == 0, by_stdin.stdout + by_stdin.stderr
    assert {run["stdin"] for run in recorded(tmp_path / "runs").values()} == set(issued.values())
    wrong = deliver(
        tmp_path,
        first,
        SINK_MODE="ok",
        MVSYNC_AGE_IDENTITY=str(x25519.Identity.generate()),
    )
    assert wrong.returncode == 1 and f'"{first}"' in wrong.stdout
    for run in (by_variable, by_stdin, wrong):
        assert_no_secrets(run.stdout + run.stderr, extra=[*issued.values(), str(identity)])


def test_a_forged_key_in_the_secrets_file_is_refused_and_never_reaches_the_sink(
    emulator: Emulator, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sink_manifest(tmp_path, emulator.url, recording_sink(runs), count=2)
    assert mvsync(tmp_path, "apply", "--env", "dev", "--yes", SINK_MODE="fail").returncode == 1
    for path in runs.glob("*.json"):
        path.unlink()
    # A pull request edits the (committed) secrets file: App 1 now carries its own key.
    path = secrets_path(tmp_path)
    text = path.read_text()
    forged, count = re.subn(
        r'("App 1":\n    id: "[^"]+"\n    api_key: ")[^"]+', rf"\g<1>{FORGED}", text
    )
    assert count == 1
    path.write_text(forged)
    app_1 = listed(tmp_path)["App 1"]["id"]

    done = deliver(tmp_path, SINK_MODE="ok")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f'x "App 1" ({app_1}): not delivered' in done.stdout
    assert "refused by MiniVoice (HTTP 401)" in done.stdout
    assert '+ delivered "App 0"' in done.stdout  # the genuine one is delivered
    handed = {run["stdin"] for run in recorded(runs).values()}
    assert FORGED not in handed and len(handed) == 1
    assert listed(tmp_path)["App 1"]["delivered"] is False
    # The next apply does not hand it on either.
    again = mvsync(tmp_path, "apply", "--env", "dev", "--yes", SINK_MODE="ok")
    assert again.returncode == 1
    assert FORGED not in {run["stdin"] for run in recorded(runs).values()}
    assert "refused by MiniVoice (HTTP 401)" in again.stdout + again.stderr
    issued = emulator.issued_keys(TEST_API_KEY).values()
    for run in (done, again):
        assert_no_secrets(run.stdout + run.stderr, extra=[*issued, FORGED])


def test_a_forged_key_sealed_to_the_recipients_is_refused_too(
    emulator: Emulator, tmp_path: Path
) -> None:
    from mvsync.sealing import parse_recipient, seal

    identity, _issued = sealed_and_undelivered(emulator, tmp_path)
    path = secrets_path(tmp_path)
    ledger = read_secrets(path)
    assert ledger is not None
    old = ledger.applications["App 0"].sealed_api_key
    assert old is not None and unseal(old, [identity])
    armor = seal(FORGED, [parse_recipient(str(identity.to_public()))])
    text = path.read_text()
    old_block = "".join(f"      {line}\n" for line in old.strip().splitlines())
    new_block = "".join(f"      {line}\n" for line in armor.strip().splitlines())
    assert old_block in text
    path.write_text(text.replace(old_block, new_block))
    done = deliver(tmp_path, "App 0", SINK_MODE="ok", MVSYNC_AGE_IDENTITY=str(identity))
    assert done.returncode == 1
    assert "refused by MiniVoice (HTTP 401)" in done.stdout
    assert recorded(tmp_path / "runs") == {}
    assert_no_secrets(done.stdout + done.stderr, extra=[FORGED, str(identity)])


def test_an_unknown_name_is_refused_with_close_names(emulator: Emulator, tmp_path: Path) -> None:
    sink_manifest(tmp_path, emulator.url, recording_sink(tmp_path / "runs"), count=1)
    assert mvsync(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    done = deliver(tmp_path, "App O")
    assert done.returncode == 1
    assert "no key ledger entry named 'App O'" in done.stderr and "'App 0'" in done.stderr
