"""Fixtures for every test module (the emulator helper writes this file; everyone uses it).

- ``emulator``: a started ``Emulator`` on ``127.0.0.1:<free port>`` accepting
  ``TEST_API_KEY``, stopped after the test.
- ``make_emulator``: a factory for more (other keys, a state file, latency); each is
  stopped after the test.
- The canaries (``TEST_API_KEY``, ``TEST_WEBHOOK_SECRET``), ``REPO_ROOT``, ``FIXTURES`` and
  ``assert_no_secrets`` live in ``tests/helpers.py``: tests import them from there.
- ``shared_dir``: ``../shared`` beside the checkout (the SPEC and the seed page), or skip.
- ``pg_server``: a real PostgreSQL server for the session (``tests/pgserver.py``), or skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pgserver
from helpers import REPO_ROOT, TEST_API_KEY
from mvsync.api.ratelimit import forget_all
from mvsync.emulator import Emulator


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """A real PostgreSQL server for the whole session (tests/pgserver.py), or skip.

    ``pg_server.create_database()`` gives a test its own database and returns its
    ``postgresql://`` URL; ``stop()``/``start()`` lose and bring back the server. A test
    that stops it must start it again. Stopped (immediate) and removed at session end.
    """
    reason = pgserver.why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    bindir = pgserver.find_bindir()
    assert bindir is not None
    server = pgserver.PgServer(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
