"""The rate an account accepted, kept beside the state for the next run (apply/pace.py).

Written atomically with the time it was learned; read back only for the same account and
within an hour; anything odd in the file is ignored (the rate is an optimisation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.api.client import MiniVoiceClient
from mvsync.api.ratelimit import ANNOUNCED_SHARE, Learned, forget_all
from mvsync.apply.pace import MAX_AGE, pace_path, read_pace, remembered_pace, write_pace
from mvsync.emulator import Emulator
from mvsync.model import DesiredEnvironment
from test_cli_apply import cli_env, write_manifest

ACCOUNT = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 5, 29, 12, 0, tzinfo=UTC)


def record(**changes: object) -> dict[str, object]:
    return {
        "format": 1,
        "account": ACCOUNT,
        "rate": 98.5,
        "announced": False,
        "learned_at": "2026-05-29T11:30:00Z",
        **changes,
    }


def desired_for(tmp_path: Path, url: str, state_url: str | None = None) -> DesiredEnvironment:
    return DesiredEnvironment(
        name="dev",
        api_url=url,
        api_key_env="MV_TEST_KEY",
        secrets_path=tmp_path / ".mvsync" / "dev.secrets.yaml",
        apps=(),
        state_url=state_url,
    )


def test_a_rate_written_is_read_back_within_the_hour(tmp_path: Path) -> None:
    path = tmp_path / "dev.secrets.yaml.pace"
    write_pace(path, ACCOUNT, Learned(100.0, announced=True))
    assert (os.stat(path).st_mode & 0o777) == 0o600
    data = json.loads(path.read_text())
    assert data["rate"] == 100.0 and data["announced"] is True and data["account"] == ACCOUNT
    learned_at = datetime.fromisoformat(data["learned_at"])
    assert read_pace(path, ACCOUNT, learned_at + timedelta(minutes=59)) == Learned(100.0, True)
    assert read_pace(path, ACCOUNT, learned_at + MAX_AGE + timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"account": "another account's fingerprint"},
        {"learned_at": "2026-05-29T10:59:00Z"},  # more than an hour ago
        {"learned_at": "2026-05-29T12:05:00Z"},  # in the future: a clock gone wrong
        {"learned_at": "2026-05-29T11:30:00"},  # no time zone
        {"learned_at": "yesterday"},
        {"learned_at": None},
        {"rate": 0},
        {"rate": -5},
        {"rate": 1e9},
        {"rate": "98"},
        {"rate": True},
        {"rate": float("nan")},
        {"announced": "yes"},
        {"format": 2},
    ],
)
def test_a_file_that_is_not_for_this_account_now_is_ignored(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    path = tmp_path / "pace"
    path.write_text(json.dumps(record(**changes)))
    assert read_pace(path, ACCOUNT, NOW) is None


@pytest.mark.parametrize("text", ["", "{", "[]", '"x"', "null", "{}", "x" * 5000])
def test_a_malformed_file_is_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pace"
    path.write_text(text)
    assert read_pace(path, ACCOUNT, NOW) is None


def test_a_link_or_a_missing_file_is_ignored(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps(record()))
    link = tmp_path / "pace"
    link.symlink_to(target)
    assert read_pace(link, ACCOUNT, NOW) is None
    assert read_pace(tmp_path / "absent", ACCOUNT, NOW) is None
    assert read_pace(target, ACCOUNT, NOW) == Learned(98.5, False)


def test_nothing_is_written_where_no_secrets_folder_exists(tmp_path: Path) -> None:
    path = tmp_path / "no folder" / "dev.secrets.yaml.pace"
    write_pace(path, ACCOUNT, Learned(10.0, announced=False))
    assert not path.parent.exists()


def test_the_file_lives_beside_the_secrets_file_or_with_state_url_in_the_lock_folder(
    tmp_path: Path,
) -> None:
    local = pace_path(desired_for(tmp_path, "http://127.0.0.1:1"), ACCOUNT)
    assert local == tmp_path / ".mvsync" / "dev.secrets.yaml.pace"
    shared = pace_path(desired_for(tmp_path, "http://127.0.0.1:1", "${PG}"), ACCOUNT)
    assert shared is not None and shared.name == f"{ACCOUNT}.pace"
    assert shared.parent.name == f"mvsync-{os.getuid()}"


def test_a_client_starts_paced_at_the_remembered_rate_and_keeps_what_it_learned(
    tmp_path: Path,
) -> None:
    forget_all()
    desired = desired_for(tmp_path, "http://127.0.0.1:9")
    desired.secrets_path.parent.mkdir()
    with MiniVoiceClient(desired.api_url, TEST_API_KEY) as client:
        path = pace_path(desired, client.account)
        assert path is not None
        write_pace(path, client.account, Learned(42.0, announced=False))
        assert client.rate_status().rate is None
        with remembered_pace(desired, client):
            assert client.rate_status().rate == 42.0  # before any request
        # Never refused, so this run learned nothing of its own: the file stays as it was.
        assert read_pace(path, client.account, datetime.now(UTC)) == Learned(42.0, False)
    assert TEST_API_KEY not in path.read_text()
    assert_no_secrets(path.read_text())


def test_a_remembered_rate_of_another_key_is_not_used(tmp_path: Path) -> None:
    forget_all()
    desired = desired_for(tmp_path, "http://127.0.0.1:9")
    desired.secrets_path.parent.mkdir()
    with MiniVoiceClient(desired.api_url, "mvtest_another_key_0001") as other:
        path = pace_path(desired, other.account)
        assert path is not None
        write_pace(path, other.account, Learned(42.0, announced=False))
    with (
        MiniVoiceClient(desired.api_url, TEST_API_KEY) as client,
        remembered_pace(desired, client),
    ):
        assert client.rate_status().rate is None


def test_an_apply_against_an_announcing_api_leaves_the_rate_for_the_next(
    tmp_path: Path,
) -> None:
    with Emulator([TEST_API_KEY], rate_limit=(40, 5), rate_limit_headers=True) as emulator:
        write_manifest(tmp_path, emulator.url, count=3)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mvsync",
                "-f",
                str(tmp_path / "mvsync.yaml"),
                "apply",
                "--env",
                "dev",
                "--yes",
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    path = tmp_path / ".mvsync" / "dev.secrets.yaml.pace"
    data = json.loads(path.read_text())
    assert (data["rate"], data["announced"]) == (40.0, True)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    learned_at = datetime.fromisoformat(data["learned_at"])
    assert timedelta(0) <= datetime.now(UTC) - learned_at < timedelta(minutes=5)
    assert "/dev.secrets.yaml.pace" in (tmp_path / ".mvsync" / ".gitignore").read_text()
    assert_no_secrets(path.read_text())
    # The next run's client starts from it, paced from its first request.
    forget_all()
    desired = desired_for(tmp_path, emulator.url)
    with MiniVoiceClient(emulator.url, TEST_API_KEY) as client, remembered_pace(desired, client):
        assert client.rate_status().rate == pytest.approx(40 * ANNOUNCED_SHARE)
