"""Fixtures for every test module (the emulator helper writes this file; everyone uses it).

- ``emulator``: a started ``Emulator`` on ``127.0.0.1:<free port>`` accepting
  ``TEST_API_KEY``, stopped after the test.
- ``make_emulator``: a factory for more (other keys, a state file, latency); each is
  stopped after the test.
- ``TEST_API_KEY``, ``TEST_WEBHOOK_SECRET``: canaries that must never appear in output,
  logs, error text, plan files or snapshots; ``assert_no_secrets(text, extra=...)``
  checks a text for them (and for any issued ``mv_live_`` key passed in ``extra``).
- ``shared_dir``: ``../shared`` beside the checkout (the SPEC and the seed page), or skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mvsync.api.ratelimit import forget_all
from mvsync.emulator import Emulator

TEST_API_KEY = "mvtest_BEARER_CANARY_7f3a9c"
TEST_WEBHOOK_SECRET = "whsec_CANARY_2b8e41"

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def assert_no_secrets(text: str, extra: Iterable[str] = ()) -> None:
    """Fail when a canary secret, or any of the ``extra`` values (issued keys), is in ``text``."""
    for secret in (TEST_API_KEY, TEST_WEBHOOK_SECRET, *extra):
        if secret and secret in text:
            pytest.fail(f"a secret leaked into the text (canary {secret[:8]}…)")


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Each test starts with no account paused or paced (mvsync.api.ratelimit is per process)."""
    forget_all()
    yield
    forget_all()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A running emulator on a free loopback port that accepts ``TEST_API_KEY``."""
    server = Emulator([TEST_API_KEY])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """``make_emulator(api_keys=..., state_file=..., latency=...)``: started, stopped after."""
    started: list[Emulator] = []

    def make(api_keys: Iterable[str] = (TEST_API_KEY,), **options: Any) -> Emulator:
        server = Emulator(list(api_keys), **options)
        server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (SPEC.md, seeds/), or skip the test."""
    shared = (REPO_ROOT / ".." / "shared").resolve()
    if not shared.is_dir():
        pytest.skip(f"no shared directory at {shared}")
    return shared
