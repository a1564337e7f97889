"""``mvsync keys list`` and ``mvsync keys show`` (SPEC 5.3), run as a user runs them.

The ledger is made by a real apply against the emulator (plain and sealed), or written
by hand where a state is hard to reach (a journal left by a killed run). Sealed keys are
checked both ways with the real ``age`` CLI where it is installed: what apply sealed,
``keys show`` opens; what ``age -r … -a`` encrypted, ``keys show`` opens too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyrage import x25519

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets, case_forms
from mvsync.emulator import Emulator
from mvsync.store import journal
from mvsync.store.durable import DurableAppender
from test_cli_apply import cli_env, run, secrets_path, write_manifest
from test_sealed_apply import every_file_text, sealed_manifest

needs_age = pytest.mark.skipif(
    shutil.which("age") is None, reason="the age CLI is not installed (.ci/run installs it)"
)


def identity_file(folder: Path, name: str = "team") -> tuple[Path, str]:
    """A throwaway age identity written as age-keygen writes it, and its recipient."""
    identity = x25519.Identity.generate()
    path = folder / f"{name}.txt"
    public = str(identity.to_public())
    path.write_text(f"# public key: {public}\n{identity}\n")
    path.chmod(0o600)
    return path, public


def bare_env() -> dict[str, str]:
    """No API key, no webhook secret, no variable of the manifest: what keys needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MV", "MINIVOICE"))}
    env["NO_COLOR"] = "1"
    return env


def keys(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml"), "keys", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else bare_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def listed(folder: Path) -> list[dict[str, str | None]]:
    done = keys(folder, "list", "--env", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format_version"] == 1 and document["environment"] == "dev"
    entries: list[dict[str, str | None]] = document["keys"]
    return entries


def test_keys_list_after_a_plain_apply_names_every_entry_and_no_key(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=3)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    issued = emulator.issued_keys(TEST_API_KEY)

    entries = listed(tmp_path)
    text = keys(tmp_path, "list", "--env", "dev")

    assert {e["id"] for e in entries} == set(issued)
    assert {e["state"] for e in entries} == {"plain"}
    assert all(e["created_at"] and e["name"] for e in entries)
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.splitlines()) == 3
    for entry in entries:
        line = next(x for x in text.stdout.splitlines() if f'"{entry["name"]}"' in x)
        assert str(entry["id"]) in line and line.endswith("plain")
    assert_no_secrets(text.stdout + text.stderr, extra=issued.values())


def test_keys_list_needs_no_variable_and_no_network(tmp_path: Path) -> None:
    # api_url, names and URLs all need variables that are not set; nothing listens there.
    (tmp_path / "mvsync.yaml").write_text(
        "version: 1\nenvironments:\n  dev:\n    api_url: ${DEV_URL}\n"
        "    api_key_env: MV_NOT_SET\napplications:\n"
        "  - name: ${PREFIX} IVR\n    answer_url: ${BASE}/a\n"
    )
    folder = tmp_path / ".mvsync"
    folder.mkdir(mode=0o700)
    (folder / "dev.secrets.yaml").write_text(
        'environment: "dev"\napi_url: "https://api.example.eu"\napplications:\n'
        '  "Support IVR":\n    id: "app_1"\n    api_key: "mv_live_PLAIN_CANARY"\n'
        '    created_at: "2026-05-29T12:00:00Z"\n'
        '  "Lost IVR":\n    id: "app_2"\n    key_captured: false\n'
    )
    (folder / "dev.secrets.yaml").chmod(0o600)

    entries = listed(tmp_path)
    text = keys(tmp_path, "list", "--env", "dev")

    assert entries == [
        {
            "name": "Support IVR",
            "id": "app_1",
            "created_at": "2026-05-29T12:00:00Z",
            "state": "plain",
        },
        {"name": "Lost IVR", "id": "app_2", "created_at": None, "state": "not_captured"},
    ]
    assert text.stdout.splitlines()[1].endswith("not-captured")
    assert "mv_live_PLAIN_CANARY" not in text.stdout + text.stderr


def test_keys_list_counts_the_created_records_of_a_journal_left_by_a_killed_run(
    tmp_path: Path,
) -> None:
    write_manifest(tmp_path, "http://127.0.0.1:9", count=1)
    path = secrets_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    _identity, public = identity_file(tmp_path)
    from mvsync.sealing import parse_recipient, seal

    sealed = seal("mv_live_JOURNAL_CANARY", [parse_recipient(public)])
    appender = DurableAppender(journal.journal_path(path))
    for record in (
        journal.intent("Done"),
        journal.created("Done", "app_done", None, "2026-05-29T12:00:00Z", sealed_api_key=sealed),
        journal.intent("Pending"),  # an intent only: not an entry
        journal.not_captured("Lost", "app_lost"),
    ):
        appender.append(record.to_line())
    appender.close()

    entries = listed(tmp_path)

    assert [(e["name"], e["id"], e["state"]) for e in entries] == [
        ("Done", "app_done", "sealed"),
        ("Lost", "app_lost", "not_captured"),
    ]
    assert not path.exists(), "keys list must not fold the journal"


def test_keys_list_without_any_ledger_is_empty(tmp_path: Path) -> None:
    write_manifest(tmp_path, "http://127.0.0.1:9", count=1)
    assert listed(tmp_path) == []
    text = keys(tmp_path, "list", "--env", "dev")
    assert text.returncode == 0 and "no key ledger yet" in text.stdout


def test_keys_list_refuses_a_group_readable_secrets_file(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    secrets_path(tmp_path).chmod(0o640)
    done = keys(tmp_path, "list", "--env", "dev")
    assert done.returncode == 1 and done.stdout == ""
    assert "mvsync: error:" in done.stderr and "Traceback" not in done.stderr
    assert_no_secrets(done.stderr, extra=emulator.issued_keys(TEST_API_KEY).values())


def test_keys_show_prints_exactly_a_plain_key_and_a_newline(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=2)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    by_name = {app["name"]: app["id"] for app in emulator.applications(TEST_API_KEY)}
    issued = emulator.issued_keys(TEST_API_KEY)

    done = keys(tmp_path, "show", "--env", "dev", "App 1")

    assert done.returncode == 0, done.stderr
    assert done.stdout == issued[by_name["App 1"]] + "\n"
    assert done.stderr == ""


@pytest.mark.parametrize("where", ["full", "closed", "broken"])
@pytest.mark.parametrize("args", [("show", "--env", "dev", "App 1"), ("list", "--env", "dev")])
def test_keys_into_a_full_closed_or_broken_stdout_is_one_clear_error(
    tmp_path: Path, emulator: Emulator, where: str, args: tuple[str, ...]
) -> None:
    if where == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    write_manifest(tmp_path, emulator.url, count=2)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    command = [sys.executable, "-m", "mvsync", "-f", str(tmp_path / "mvsync.yaml"), "keys", *args]
    if where == "broken":
        read_end, write_end = os.pipe()
        os.close(read_end)
        stdout: int = write_end
    elif where == "full":
        stdout = os.open("/dev/full", os.O_WRONLY)
    else:
        stdout = subprocess.DEVNULL
    try:
        done = subprocess.run(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=bare_env(),
            stdin=subprocess.DEVNULL,
            timeout=60,
            # "closed": descriptor 1 shut before mvsync starts, as `>&-` does.
            preexec_fn=(lambda: os.close(1)) if where == "closed" else None,
        )
    finally:
        if isinstance(stdout, int) and stdout != subprocess.DEVNULL:
            os.close(stdout)
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and "standard output" in lines[0], done.stderr
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr
    assert_no_secrets(done.stderr, extra=emulator.issued_keys(TEST_API_KEY).values())


def test_keys_show_opens_what_a_sealed_apply_wrote_and_refuses_without_the_identity(
    tmp_path: Path, emulator: Emulator
) -> None:
    team, team_public = identity_file(tmp_path, "team")
    other, _ = identity_file(tmp_path, "other")
    work = tmp_path / "work"
    work.mkdir()
    sealed_manifest(work, emulator.url, [team_public], count=2)
    assert run(work, "apply", "--env", "dev", "--yes").returncode == 0
    by_name = {app["name"]: app["id"] for app in emulator.applications(TEST_API_KEY)}
    issued = emulator.issued_keys(TEST_API_KEY)

    opened = keys(work, "show", "--env", "dev", "App 0", "-i", str(team))
    no_identity = keys(work, "show", "--env", "dev", "App 0")
    wrong = keys(work, "show", "--env", "dev", "App 0", "-i", str(other))
    unknown = keys(work, "show", "--env", "dev", "App O")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    malformed = keys(work, "show", "--env", "dev", "App 0", "-i", str(garbage))

    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == issued[by_name["App 0"]] + "\n"
    assert {e["state"] for e in listed(work)} == {"sealed"}
    for failed, says in (
        (no_identity, "-i"),
        (wrong, "none of the given identities"),
        (unknown, "did you mean"),
        (malformed, "malformed age identity"),
    ):
        assert failed.returncode == 1 and failed.stdout == "", failed.stderr
        assert says in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
        assert_no_secrets(failed.stderr, extra=issued.values())
        assert "AGE-SECRET-KEY" not in failed.stderr.upper()
    assert "'App 0'" in unknown.stderr.partition("did you mean")[2]


def test_keys_show_of_an_entry_without_a_key_is_exit_1(tmp_path: Path) -> None:
    write_manifest(tmp_path, "http://127.0.0.1:9", count=1)
    path = secrets_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    path.write_text(
        'environment: "dev"\napi_url: "http://127.0.0.1:9"\napplications:\n'
        '  "Lost IVR":\n    id: "app_2"\n    key_captured: false\n'
    )
    path.chmod(0o600)
    done = keys(tmp_path, "show", "--env", "dev", "Lost IVR")
    assert done.returncode == 1 and done.stdout == ""
    assert "never captured" in done.stderr


@needs_age
def test_keys_show_opens_a_key_the_age_cli_encrypted(tmp_path: Path) -> None:
    team, team_public = identity_file(tmp_path)
    key = "mv_live_AGE_CLI_CANARY_0123456789"
    armor = subprocess.run(
        ["age", "-r", team_public, "-a"], input=key, capture_output=True, text=True, check=True
    ).stdout
    write_manifest(tmp_path, "http://127.0.0.1:9", count=1)
    path = secrets_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    block = "".join(f"      {line}\n" for line in armor.strip().splitlines())
    path.write_text(
        'environment: "dev"\napi_url: "http://127.0.0.1:9"\napplications:\n'
        f'  "Support IVR":\n    id: "app_1"\n    sealed_api_key: |\n{block}'
        '    created_at: "2026-05-29T12:00:00Z"\n'
    )
    path.chmod(0o600)

    done = keys(tmp_path, "show", "--env", "dev", "Support IVR", "-i", str(team))

    assert done.returncode == 0, done.stderr
    assert done.stdout == key + "\n"


def test_no_key_in_any_output_with_debug_of_plan_apply_and_keys_with_recipients(
    tmp_path: Path, emulator: Emulator
) -> None:
    team, team_public = identity_file(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    sealed_manifest(work, emulator.url, [team_public], count=3)
    env = {**cli_env(), "MVSYNC_DEBUG": "1"}
    outputs: list[str] = []

    def mvsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mvsync", "--debug", "-f", str(work / "mvsync.yaml"), *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    # Each command with the exit code it must end with: a refusal is exit 1, not a crash.
    for expected, args in (
        (0, ("plan", "--format", "json")),
        (0, ("apply", "--env", "dev", "--yes")),
        (0, ("plan",)),
        (0, ("plan", "--format", "markdown", "-o", str(tmp_path / "plan.json"))),
        (0, ("keys", "list", "--env", "dev")),
        (0, ("keys", "list", "--env", "dev", "--format", "json")),
        (1, ("keys", "show", "--env", "dev", "App 0")),  # sealed, no -i: refused
        (1, ("keys", "show", "--env", "dev", "App 9", "-i", str(team))),  # unknown
        (0, ("show", str(tmp_path / "plan.json"))),
    ):
        done = mvsync(*args)
        assert done.returncode == expected, f"{args}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr or args[0] == "keys", done.stderr
        outputs.append(done.stdout + done.stderr)
    shown = mvsync("keys", "show", "--env", "dev", "App 1", "-i", str(team))
    issued = emulator.issued_keys(TEST_API_KEY)
    by_name = {app["name"]: app["id"] for app in emulator.applications(TEST_API_KEY)}

    assert len(issued) == 3
    # keys show writes exactly the one key asked for to stdout, and nothing to stderr
    # that holds it (its --debug log included).
    assert shown.returncode == 0 and shown.stdout == issued[by_name["App 1"]] + "\n"
    assert_no_secrets(shown.stderr, extra=issued.values())
    for text in outputs:
        assert_no_secrets(text, extra=issued.values())
    assert_no_secrets(every_file_text(tmp_path), extra=issued.values())
    for form in case_forms(TEST_WEBHOOK_SECRET):
        assert form not in "".join(outputs)
