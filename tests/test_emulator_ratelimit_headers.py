"""``--rate-limit-headers``: the emulator announces its limit in the IETF RateLimit fields,
and an apply against it paces from the first answer (over real HTTP on loopback).

No timed assertions: the bucket's refill is so slow in the field tests (one token per
100 s) that nothing refills between two requests; the apply test bounds refusals, not time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers import TEST_API_KEY
from mvsync.api.announced import announced_limit
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.api.ratelimit import ANNOUNCED_SHARE, forget_all
from mvsync.apply.run import apply_environment
from mvsync.apply.settings import ApplySettings
from mvsync.emulator import Emulator
from mvsync.emulator.ratelimit import RateLimit
from mvsync.model import DesiredApp, DesiredEnvironment

APPS = "/v1/applications"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
SLOW = 0.01

MakeEmulator = Callable[..., Emulator]


def test_every_answer_of_a_limited_customer_announces_the_policy_and_what_remains(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(rate_limit=(SLOW, 3), rate_limit_headers=True)
    with httpx.Client(base_url=emulator.url, headers=AUTH) as client:
        answers = [client.get(APPS) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {a.headers["RateLimit-Policy"] for a in answers} == {'"default";q=1;w=100'}
    assert [a.headers["RateLimit"] for a in answers] == [
        '"default";r=2;t=100',
        '"default";r=1;t=200',
        '"default";r=0;t=300',
        '"default";r=0;t=300',
    ]
    assert answers[3].headers["Retry-After"] == "100"  # the refusal still says when


def test_the_fields_parse_as_mvsync_reads_them(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(100, 10), rate_limit_headers=True)
    with httpx.Client(base_url=emulator.url, headers=AUTH) as client:
        answer = client.get(APPS)
    found = announced_limit(answer.headers.get, time.time())
    assert found is not None
    assert (found.rate, found.remaining, found.reset_after) == (100.0, 9, 1.0)


@pytest.mark.parametrize(
    ("rate", "policy"),
    [(100.0, '"default";q=100;w=1'), (2.5, '"default";q=2;w=1'), (0.5, '"default";q=1;w=2')],
)
def test_the_policy_never_announces_more_than_the_rate(rate: float, policy: str) -> None:
    assert RateLimit.of(rate, 1).policy_field() == policy


def test_without_the_flag_or_without_a_limit_nothing_is_announced(
    make_emulator: MakeEmulator,
) -> None:
    plain = make_emulator(rate_limit=(100, 10))
    unlimited = make_emulator(rate_limit_headers=True)
    for emulator in (plain, unlimited):
        with httpx.Client(base_url=emulator.url, headers=AUTH) as client:
            answer = client.get(APPS)
        assert answer.status_code == 200
        assert "RateLimit-Policy" not in answer.headers
        assert "RateLimit" not in answer.headers


def test_an_unknown_key_gets_its_401_without_fields(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(rate_limit=(100, 10), rate_limit_headers=True)
    answer = httpx.get(emulator.url + APPS, headers={"Authorization": "Bearer nobody"})
    assert answer.status_code == 401
    assert "RateLimit" not in answer.headers


def test_the_command_line_flag_announces(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mvsync",
            "emulator",
            "--port",
            "0",
            "--api-key",
            TEST_API_KEY,
            "--rate-limit",
            "50/5",
            "--rate-limit-headers",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "announced in RateLimit fields" in line
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.get(url + APPS, headers=AUTH)
        assert answer.headers["RateLimit-Policy"] == '"default";q=50;w=1'
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_apply_against_an_announcing_api_is_paced_from_the_first_list(
    tmp_path: Path,
) -> None:
    """The first list carries the fields: every create is paced at 98% of 40/s, so the
    bucket of 5 absorbs the jitter and almost nothing is refused (adapting from 429s alone
    met 10 to 44 refusals for these 80 creates)."""
    forget_all()
    count = 80
    env = DesiredEnvironment(
        name="dev",
        api_url="",
        api_key_env="MINIVOICE_API_KEY",
        secrets_path=tmp_path / ".mvsync" / "dev.secrets.yaml",
        apps=tuple(
            DesiredApp(name=f"Announced {n:03d}", answer_url=f"https://example.com/{n}")
            for n in range(count)
        ),
    )
    with Emulator([TEST_API_KEY], rate_limit=(40, 5), latency=0.01) as emulator:
        env = DesiredEnvironment(**{**env.__dict__, "api_url": emulator.url})
        retry = RetryPolicy(deadline=30.0, max_attempts=20)
        with MiniVoiceClient(emulator.url, TEST_API_KEY, retry=retry) as client:
            emulator.rate_limit_headers = True
            result = apply_environment(env, client, settings=ApplySettings(concurrency=8))
            status = client.rate_status()
        refused = emulator.rate_limited_count("POST", APPS)
        names = sorted(app["name"] for app in emulator.applications(TEST_API_KEY))
    assert result.ok, result
    assert names == sorted(app.name for app in env.apps)
    assert status.rate == pytest.approx(40 * ANNOUNCED_SHARE)
    assert refused <= count // 10, f"{refused} refusals for {count} creates"
