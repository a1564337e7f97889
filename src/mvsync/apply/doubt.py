"""Creates in doubt: how long an unanswered intent is held back (a list can lag behind
creates), and the listing until every new application is visible (the seed's procedure)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.settings import ApplySettings
from mvsync.errors import ApiError
from mvsync.model import RemoteApp
from mvsync.store.journal import JournalRecord


def in_doubt_within(intent: JournalRecord, window: float, now: datetime | None = None) -> bool:
    """Whether an unanswered intent is younger than ``window`` seconds (held back)."""
    try:
        since = datetime.fromisoformat((intent.ts or "").replace("Z", "+00:00"))
    except ValueError:
        return True  # no usable time: assume the worst
    age = ((now or datetime.now(UTC)) - since).total_seconds()
    return age < window


def confirm_visible(
    client: MiniVoiceClient,
    new_ids: set[str],
    settings: ApplySettings,
    stop: threading.Event,
    note: Callable[[str], None],
) -> list[RemoteApp] | None:
    """List until every new id is there or the deadline passes; the last list."""
    deadline = time.monotonic() + settings.confirm_deadline
    backoff = settings.confirm_backoff
    listed: list[RemoteApp] | None = None
    while True:
        # Each list may retry, but not past the confirmation's own deadline; the last
        # one still gets a budget an answer fits in (it may overrun it by 2 s).
        remaining = max(deadline - time.monotonic(), 2.0)
        answer = _list_unless_stopped(client, remaining, stop)
        if isinstance(answer, ApiError):
            note(f"listing to confirm the new applications failed: {answer}")
        elif answer is not None:
            listed = answer
        if stop.is_set():
            return listed
        if listed is not None and new_ids <= {app.id for app in listed}:
            return listed
        remaining = deadline - time.monotonic()
        if remaining <= 0 or stop.is_set():
            return listed
        settings.sleep(min(backoff, remaining))
        backoff = min(backoff * 2, 5.0)


def _list_unless_stopped(
    client: MiniVoiceClient, deadline: float, stop: threading.Event
) -> list[RemoteApp] | ApiError | None:
    """One listing, abandoned (None) as soon as ``stop`` is set: the keys are stored by
    then, and a slow API must not hold a signalled run (CI cancels with SIGTERM, then
    kills seconds later). The abandoned request ends in its daemon thread."""
    box: list[list[RemoteApp] | BaseException] = []

    def work() -> None:
        try:
            box.append(client.list_applications(deadline=deadline))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            box.append(error)

    worker = threading.Thread(target=work, name="mvsync-confirm", daemon=True)
    worker.start()
    while worker.is_alive():
        if stop.wait(0.05):
            return None
        worker.join(0.05)
    answer = box[0]
    if isinstance(answer, BaseException) and not isinstance(answer, ApiError):
        raise answer
    return answer
