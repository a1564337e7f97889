"""The age identity from where CI keeps it, as real processes: ``keys show -i -`` (stdin),
``MVSYNC_AGE_IDENTITY`` (its text), ``MVSYNC_AGE_IDENTITY_FILE``; never printed, even
malformed or wrong (canaries); close names suggested case-insensitively."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyrage import x25519

from helpers import assert_no_secrets
from mvsync.sealing import parse_recipient, seal
from test_cli_apply import secrets_path, write_manifest
from test_cli_keys import bare_env

KEY = "mv_live_IDENTITY_TEST_CANARY_0123456789"


@pytest.fixture
def team(tmp_path: Path) -> x25519.Identity:
    """A ledger whose one entry, "Main IVR", is sealed to the returned identity."""
    identity = x25519.Identity.generate()
    armor = seal(KEY, [parse_recipient(str(identity.to_public()))])
    write_manifest(tmp_path, "http://127.0.0.1:9", count=1)
    path = secrets_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    block = "".join(f"      {line}\n" for line in armor.strip().splitlines())
    path.write_text(
        'environment: "dev"\napi_url: "http://127.0.0.1:9"\napplications:\n'
        f'  "Main IVR":\n    id: "app_1"\n    sealed_api_key: |\n{block}'
        '    created_at: "2026-05-29T12:00:00Z"\n'
    )
    path.chmod(0o600)
    return identity


def show(
    folder: Path, *args: str, stdin: str = "", **variables: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml")),
            *("keys", "show", "--env", "dev", *args),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env={**bare_env(), **variables},
        timeout=60,
    )


def written_file(folder: Path, text: str) -> Path:
    path = folder / "identity.txt"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_dash_i_dash_reads_the_identity_from_stdin(tmp_path: Path, team: x25519.Identity) -> None:
    done = show(tmp_path, "Main IVR", "-i", "-", stdin=f"# team\n{team}\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, KEY + "\n", "")


def test_the_identity_text_from_mvsync_age_identity(tmp_path: Path, team: x25519.Identity) -> None:
    done = show(tmp_path, "Main IVR", MVSYNC_AGE_IDENTITY=f"{team}\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, KEY + "\n", "")


def test_the_identity_file_from_mvsync_age_identity_file(
    tmp_path: Path, team: x25519.Identity
) -> None:
    path = written_file(tmp_path, f"{team}\n")
    done = show(tmp_path, "Main IVR", MVSYNC_AGE_IDENTITY_FILE=str(path))
    assert (done.returncode, done.stdout, done.stderr) == (0, KEY + "\n", "")


def test_either_variable_may_hold_the_identity_that_opens_it(
    tmp_path: Path, team: x25519.Identity
) -> None:
    other = x25519.Identity.generate()
    path = written_file(tmp_path, f"{team}\n")
    done = show(
        tmp_path, "Main IVR", MVSYNC_AGE_IDENTITY=str(other), MVSYNC_AGE_IDENTITY_FILE=str(path)
    )
    assert (done.returncode, done.stdout) == (0, KEY + "\n"), done.stderr


def test_dash_i_wins_over_the_variables(tmp_path: Path, team: x25519.Identity) -> None:
    wrong = x25519.Identity.generate()
    path = written_file(tmp_path, f"{team}\n")
    done = show(tmp_path, "Main IVR", "-i", str(path), MVSYNC_AGE_IDENTITY=f"{wrong}")
    assert (done.returncode, done.stdout) == (0, KEY + "\n"), done.stderr
    refused = show(tmp_path, "Main IVR", "-i", "-", stdin="", MVSYNC_AGE_IDENTITY=f"{team}")
    assert refused.returncode == 1
    assert "the identity on stdin (-i -): holds no age identity" in refused.stderr


@pytest.mark.parametrize("debug", [(), ("--debug",)], ids=["plain", "debug"])
def test_a_wrong_or_malformed_identity_is_never_printed(
    tmp_path: Path, team: x25519.Identity, debug: tuple[str, ...]
) -> None:
    wrong = str(x25519.Identity.generate())
    malformed = "AGE-SECRET-KEY-1CANARYQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
    not_age = "IDENTITY_CANARY_NOT_AGE"
    cases = [
        (show(tmp_path, "Main IVR", *debug, MVSYNC_AGE_IDENTITY=wrong), "none of the given"),
        (
            show(tmp_path, "Main IVR", *debug, MVSYNC_AGE_IDENTITY=f"# c\n{malformed}\n"),
            "MVSYNC_AGE_IDENTITY:2: a malformed age identity",
        ),
        (
            show(tmp_path, "Main IVR", "-i", "-", *debug, stdin=f"{not_age}\n"),
            "the identity on stdin (-i -):1: not an age X25519 identity",
        ),
    ]
    for done, says in cases:
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert says in done.stderr
        assert_no_secrets(done.stderr, extra=[KEY, wrong, malformed, not_age, str(team)])
        assert "CANARY" not in done.stderr.upper()


def test_without_any_identity_the_message_names_every_way_to_give_one(
    tmp_path: Path, team: x25519.Identity
) -> None:
    done = show(tmp_path, "Main IVR")
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert (
        "the key is sealed; give the age identity that opens it: -i FILE, -i - (stdin), or "
        "MVSYNC_AGE_IDENTITY / MVSYNC_AGE_IDENTITY_FILE"
    ) in done.stderr


def test_an_unknown_name_suggests_close_names_case_insensitively(
    tmp_path: Path, team: x25519.Identity
) -> None:
    done = show(tmp_path, "main ivr", MVSYNC_AGE_IDENTITY=str(team))
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert "no key ledger entry named 'main ivr'" in done.stderr
    assert "did you mean 'Main IVR'?" in done.stderr
