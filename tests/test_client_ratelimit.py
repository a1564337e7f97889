"""Apply against the emulator's real rate limit: one pause and one rate for the account.

Every test here runs ``apply_environment`` with real threads, over real HTTP, against
``Emulator(rate_limit=...)``; the refusals are counted by the emulator itself. The pause
test records, with httpx's own event hooks, when each request left and when each 429
came back: what it checks is an order (no request leaves inside another's
``Retry-After``), not a speed. Its margins only absorb thread scheduling.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.api.ratelimit import AccountLimiter, LimiterStatus
from mvsync.apply.run import apply_environment
from mvsync.apply.settings import ApplySettings
from mvsync.cli.progress import CliReporter
from mvsync.emulator import Emulator, Fault
from mvsync.errors import TransportError
from mvsync.model import CreateRequest, DesiredApp, DesiredEnvironment
from mvsync.store.keys import read_secrets

SETTINGS = ApplySettings(concurrency=8, unknown_wait=0.01, confirm_deadline=5.0)
# How far inside a Retry-After window a request may still leave: one sent just before
# the refusal was seen (it passed the gate first) reaches httpx a moment later.
MARGIN = 0.25


def environment(tmp_path: Path, url: str, count: int) -> DesiredEnvironment:
    apps = tuple(
        DesiredApp(name=f"Limited {n:03d}", answer_url=f"https://example.com/{n}")
        for n in range(count)
    )
    return DesiredEnvironment(
        name="dev",
        api_url=url,
        api_key_env="MINIVOICE_API_KEY",
        secrets_path=tmp_path / ".mvsync" / "dev.secrets.yaml",
        apps=apps,
    )


class Timeline:
    """When each request left (httpx ``request`` hook) and when each 429 came back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[float] = []
        self.refused: list[tuple[float, float]] = []  # (when seen, Retry-After seconds)

    def on_request(self, request: httpx.Request) -> None:
        with self._lock:
            self.sent.append(time.monotonic())

    def on_response(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            seen = time.monotonic()
            with self._lock:
                self.refused.append((seen, float(response.headers.get("Retry-After", "0"))))

    def sent_inside_a_pause(self) -> list[tuple[float, float]]:
        """Every request that left inside a refusal's window: (seconds after it, its wait)."""
        inside = []
        for seen, wait in self.refused:
            for sent in self.sent:
                if seen + MARGIN < sent < seen + wait - MARGIN:
                    inside.append((round(sent - seen, 3), wait))
        return inside


def apply_limited(
    tmp_path: Path, emulator: Emulator, count: int, http: httpx.Client | None = None
) -> Any:
    env = environment(tmp_path, emulator.url, count)
    retry = RetryPolicy(deadline=30.0, max_attempts=20)
    with MiniVoiceClient(emulator.url, TEST_API_KEY, http=http, retry=retry) as client:
        return env, apply_environment(env, client, settings=SETTINGS)


def test_apply_at_the_limit_creates_each_name_once_stores_every_key_few_refusals(
    tmp_path: Path,
) -> None:
    count = 80
    with Emulator([TEST_API_KEY], rate_limit=(40, 5), latency=0.01) as emulator:
        env, result = apply_limited(tmp_path, emulator, count)
        names = Counter(app["name"] for app in emulator.applications(TEST_API_KEY))
        refused = emulator.rate_limited_count("POST", "/v1/applications")
        posts = emulator.request_count("POST", "/v1/applications")
    assert result.ok, result
    assert sorted(names) == sorted(app.name for app in env.apps)
    assert set(names.values()) == {1}  # no duplicate
    stored = read_secrets(env.secrets_path)
    assert stored is not None
    assert sorted(stored.applications) == sorted(names)
    assert all(entry.api_key for entry in stored.applications.values())
    assert posts == count + refused  # every refused POST was retried, nothing else
    # Per-worker retries met more refusals than creates here (84 and 91 for 80); one
    # shared, adapting rate met 10 to 28 while learning it, and up to 44 on a 2-core
    # machine loaded by other test runs: fewer than one per create tells them apart.
    assert refused < count * 3 // 4, f"{refused} refusals for {count} creates"


@pytest.mark.parametrize("source", ["one injected 429", "the rate limit"])
def test_no_request_leaves_inside_a_refusals_retry_after(tmp_path: Path, source: str) -> None:
    """After a 429, no worker fires until its Retry-After has passed (not only the refused one)."""
    timeline = Timeline()
    hooks: dict[str, list[Any]] = {
        "request": [timeline.on_request],
        "response": [timeline.on_response],
    }
    limit = (20, 2) if source == "the rate limit" else None
    with (
        Emulator([TEST_API_KEY], rate_limit=limit, latency=0.02) as emulator,
        httpx.Client(follow_redirects=False, event_hooks=hooks) as http,
    ):
        if limit is None:
            emulator.add_fault(Fault("429", method="POST", retry_after="1"))
        # Enough creates that the other workers would still be busy a second later.
        count = 40 if limit else 150
        _env, result = apply_limited(tmp_path, emulator, count, http=http)
        refused = emulator.rate_limited_count() if limit else 1
    assert result.ok, result
    assert refused >= 1, "the limit was never met: the test shows nothing"
    assert len(timeline.refused) == refused
    assert timeline.sent_inside_a_pause() == []


def test_two_clients_of_one_account_share_the_pause(tmp_path: Path) -> None:
    """The pause belongs to the account (api_url and key), not to one client object."""
    timeline = Timeline()
    hooks: dict[str, list[Any]] = {
        "request": [timeline.on_request],
        "response": [timeline.on_response],
    }
    with (
        Emulator([TEST_API_KEY], rate_limit=(10, 1), latency=0.02) as emulator,
        httpx.Client(follow_redirects=False, event_hooks=hooks) as http,
    ):
        retry = RetryPolicy(deadline=30.0, max_attempts=20)
        clients = [
            MiniVoiceClient(emulator.url, TEST_API_KEY, http=http, retry=retry) for _ in range(4)
        ]
        errors: list[BaseException] = []

        def lists(client: MiniVoiceClient) -> None:
            try:
                for _ in range(5):
                    client.list_applications()
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=lists, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()
        refused = emulator.rate_limited_count()
    assert errors == []
    assert refused >= 1
    assert timeline.sent_inside_a_pause() == []


class CountingTransport(httpx.HTTPTransport):
    """httpx's real transport, counting the connections it tries."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return super().handle_request(request)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_connection_fails_after_two_attempts(method: str) -> None:
    # A port nothing listens on: bind it, note it, close it.
    with Emulator([TEST_API_KEY]) as emulator:
        url = emulator.url
    transport = CountingTransport()
    with (
        httpx.Client(transport=transport, follow_redirects=False) as http,
        MiniVoiceClient(url, TEST_API_KEY, http=http) as client,
        pytest.raises(TransportError) as raised,
    ):
        if method == "GET":
            client.list_applications()
        else:
            client.create_application(CreateRequest(name="x", answer_url="https://example.com/"))
    assert transport.attempts == 2
    assert "refused" in str(raised.value)
    assert_no_secrets(str(raised.value), extra=[TEST_WEBHOOK_SECRET])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_line_says_rate_limited_while_the_account_is_held_back() -> None:
    now = [0.0]
    status = [LimiterStatus(limited=False, rate=None, paused=False)]
    out, err = io.StringIO(), Terminal()
    reporter = CliReporter(out, err, clock=lambda: now[0], rate_status=lambda: status[0])
    reporter.creating(4)
    now[0] = 1.0
    reporter.created("A", "app_1")
    assert err.getvalue().endswith("[1/4] 1.0/s, about 3s left")
    status[0] = LimiterStatus(limited=True, rate=78.4, paused=False)
    now[0] = 2.0
    reporter.created("B", "app_2")
    assert err.getvalue().endswith("[2/4] rate-limited, 78/s, about 2s left")


def test_a_refusal_of_one_limiter_pauses_the_next_acquire_until_its_retry_after() -> None:
    clock = [100.0]
    waits: list[float] = []
    limiter = AccountLimiter(clock=lambda: clock[0])
    limiter.succeeded()
    clock[0] = 101.0
    limiter.succeeded()
    sent = limiter.acquire(waits.append)
    assert sent == 101.0 and waits == []
    limiter.refused(sent, 2.0)
    assert limiter.status().paused
    limiter.acquire(waits.append)  # another worker: waits out the whole pause
    assert waits == [2.0]
    assert limiter.status().rate is not None  # and the rate was cut
