"""The ``state_url`` password never printed, whatever characters it holds.

The URL is read with libpq's own rules (psycopg's ``conninfo``), named as
``postgresql://USER@HOST:PORT/DB`` only, every driver message scrubbed; a URL that libpq
would read otherwise than its author meant (an unencoded ``@ / # ?`` or space in the
password, a malformed ``%`` escape) is refused before any connection, quoting none of it.

A password holding an unencoded ``@`` makes libpq take its tail as a host name and resolve
it: those cases are checked by the pure refusal alone here (nothing connects), and as a
real process only inside a network namespace of its own (``unshare --net``, as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from pyrage import x25519

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.errors import StateError
from mvsync.store import pg_url
from mvsync.store.pg import PgStore
from pgserver import PgServer

CANARY = "Pw7canaryQ"
API_URL = "http://127.0.0.1:9"

# Passwords libpq and urlsplit read differently: each must be refused.
AMBIGUOUS = [
    f"HeadH1#{CANARY}",
    f"HeadH1?{CANARY}",
    f"HeadH1/{CANARY}",
    f"Head H1{CANARY}",
    f"Head%zz{CANARY}",
    f"Head@{CANARY}",
]


@pytest.mark.parametrize("password", AMBIGUOUS)
def test_an_ambiguous_password_is_refused_without_quoting_it(password: str) -> None:
    url = f"postgresql://r_leak1:{password}@db.example:5432/state"
    with pytest.raises(StateError) as refused:
        pg_url.refuse_ambiguous(url, "environment 'prod': state_url")
    message = str(refused.value)
    assert "percent-encoded" in message
    for part in ("HeadH1", "Head", CANARY, "db.example", "r_leak1"):
        assert part not in message


@pytest.mark.parametrize("password", AMBIGUOUS)
def test_the_store_refuses_an_ambiguous_url_before_connecting(password: str) -> None:
    with pytest.raises(StateError, match="percent-encoded"):
        PgStore(f"postgresql://r_leak1:{password}@db.example/state", "prod", API_URL)


def test_an_encoded_password_is_accepted_and_never_named() -> None:
    password = quote(f"H@a/b#c?d e%{CANARY}", safe="")
    url = (
        f"postgresql://r_leak1:{password}@db.example:6432/state"
        f"?sslmode=require&sslpassword={CANARY}2&connect_timeout=3"
    )
    pg_url.refuse_ambiguous(url, "here")
    assert pg_url.describe(url) == "postgresql://r_leak1@db.example:6432/state"


def test_the_name_comes_from_libpq_parameters_too() -> None:
    url = f"postgres:///state?host=db.example&user=me&password={CANARY}&port=5433"
    assert pg_url.describe(url) == "postgresql://me@db.example:5433/state"


def test_a_driver_message_is_scrubbed_and_kept_to_one_line() -> None:
    url = f"postgresql://me:{quote('a b' + CANARY, safe='')}@db/x?sslpassword=zz{CANARY}"
    message = (
        f'invalid something "{url}" near a b{CANARY}\n'
        f"CONTEXT: while connecting with zz{CANARY}\nmvsync: error: forged line"
    )
    scrubbed = pg_url.scrub(message, pg_url.secrets_of(url))
    assert CANARY not in scrubbed
    assert "\n" not in scrubbed and "CONTEXT" not in scrubbed


# --- real processes -----------------------------------------------------------------


def _manifest(folder: Path, recipient: str, api_url: str) -> Path:
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        f"version: 1\nrecipients: [{recipient}]\nenvironments:\n"
        f"  dev:\n    api_url: {api_url}\n    api_key_env: MV_TEST_KEY\n"
        "    state_url: ${MVSYNC_STATE_URL}\n"
        "applications:\n  - name: App\n    answer_url: https://example.com/a\n"
    )
    return manifest


def run_mvsync(manifest: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``mvsync -f MANIFEST ARGS...`` as a real process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(manifest), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def _mvsync(manifest: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MV_TEST_KEY=TEST_API_KEY, MVSYNC_STATE_URL=url)
    env.update(MVSYNC_API_DEADLINE="10", MVSYNC_HTTP_TIMEOUT="5")
    return run_mvsync(manifest, env, *args)


def _with_password(dsn: str, password: str) -> str:
    user, _, rest = dsn.partition("@")
    return f"{user}:{password}@{rest}&sslpassword={CANARY}ssl"


def test_plan_and_keys_list_never_show_an_encoded_password(
    tmp_path: Path, pg_server: PgServer, emulator: Emulator
) -> None:
    """The test server trusts its socket: any password connects, none may be printed."""
    url = _with_password(pg_server.create_database(), quote(f"#?/@ {CANARY}", safe=""))
    manifest = _manifest(tmp_path, str(x25519.Identity.generate().to_public()), emulator.url)
    saved = tmp_path / "plan.json"
    outputs = []
    for args in (
        ("plan",),
        ("plan", "--format", "json"),
        ("plan", "--format", "markdown"),
        ("plan", "-o", str(saved)),
        ("keys", "list", "--env", "dev"),
    ):
        done = _mvsync(manifest, url, *args)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    outputs.append(saved.read_text())
    for text in outputs:
        assert CANARY not in text
        assert quote(CANARY) not in text
        assert_no_secrets(text)


@pytest.mark.parametrize("password", [p for p in AMBIGUOUS if "@" not in p])
def test_plan_refuses_an_ambiguous_state_url_naming_no_part_of_it(
    tmp_path: Path, pg_server: PgServer, emulator: Emulator, password: str
) -> None:
    url = _with_password(pg_server.create_database(), password)
    manifest = _manifest(tmp_path, str(x25519.Identity.generate().to_public()), emulator.url)
    for args in (("plan", "--format", "json"), ("keys", "list", "--env", "dev")):
        done = _mvsync(manifest, url, *args)
        text = done.stdout + done.stderr
        assert done.returncode == 1, text
        assert "percent-encoded" in text
        assert CANARY not in text and "HeadH1" not in text
        assert "Traceback" not in text


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for a network namespace of its own",
)
def test_an_unencoded_at_sign_is_refused_inside_a_namespace_with_no_network(
    tmp_path: Path,
) -> None:
    """libpq would resolve the password's tail as a host: nothing may leave, even if it tried."""
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("unshare --net is not permitted here")
    url = f"postgresql://r_leak1:Head@{CANARY}.example@db.example:5432/state"
    manifest = _manifest(tmp_path, str(x25519.Identity.generate().to_public()), API_URL)
    env = dict(os.environ, MV_TEST_KEY=TEST_API_KEY, MVSYNC_STATE_URL=url)
    for args in (("keys", "list", "--env", "dev"), ("apply", "--env", "dev", "--yes")):
        done = subprocess.run(
            ["unshare", "--net", sys.executable, "-m", "mvsync", "-f", str(manifest), *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        text = done.stdout + done.stderr
        assert done.returncode == 1, text
        assert "percent-encoded" in text
        assert CANARY not in text and "Head" not in text
