"""Fold what a previous run left in the journal, before this run plans (SPEC 6.2).

Its key records join the ledger; its unanswered intents become "created, key not
captured" when the list shows them. For those the list does not show yet, the run lists
again with backoff until the lag window has passed since their POST: listed, they are
"not captured"; still absent, nothing was created and the plan sends them again. Only a
run asked to stop meanwhile leaves them in doubt (held back) for the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mvsync.apply.doubt import in_doubt_within
from mvsync.apply.settings import ApplyResult, ApplySettings, Reporter
from mvsync.errors import MvsyncError
from mvsync.model import RemoteApp
from mvsync.store import journal, keys
from mvsync.store.base import KeyStore
from mvsync.store.journal import JournalRecord


class Doubt:
    """The intents of a previous run the list does not show, and the list they were
    checked against."""

    def __init__(self, stored: keys.SecretsFile, remote: list[RemoteApp]) -> None:
        self.stored_ids = {entry.id for entry in stored.applications.values()}
        self.remote = remote
        self.records: list[JournalRecord] = []  # "not captured", for each one listed

    def unlisted(self, intents: list[JournalRecord]) -> list[JournalRecord]:
        """The intents ``remote`` does not show; those it shows become "not captured"."""
        left = []
        for intent in intents:
            listed = [
                a for a in self.remote if a.name == intent.name and a.id not in self.stored_ids
            ]
            if listed:
                self.records.extend(journal.not_captured(intent.name, a.id) for a in listed)
            else:
                left.append(intent)
        return left


def wait_out(
    doubt: Doubt,
    intents: list[JournalRecord],
    relist: Callable[[], list[RemoteApp]],
    settings: ApplySettings,
    stop: threading.Event,
    reporter: Reporter,
) -> list[JournalRecord]:
    """List again, with backoff, until each intent is listed or its lag window has passed
    (then it may be sent again); the intents still in doubt when ``stop`` is set."""
    window = settings.doubt_window
    delay = settings.unknown_wait
    waiting = [i for i in intents if in_doubt_within(i, window)]
    if waiting:
        reporter.note(
            f"{len(waiting)} create(s) of a previous run in doubt, not in the list yet: "
            f"listing again until {window:g}s have passed since each was sent (a list can "
            "lag behind creates)"
        )
    waited = 0.0  # also ends the wait for an intent whose time cannot be read
    while waiting and not stop.is_set() and waited < window:
        settings.sleep(delay)
        waited += delay
        delay = min(max(delay, 0.05) * 2, 2.0)
        doubt.remote = relist()
        waiting = [i for i in doubt.unlisted(waiting) if in_doubt_within(i, window)]
    return waiting if stop.is_set() else []


def reconcile(
    store: KeyStore,
    stored: keys.SecretsFile,
    leftover: list[JournalRecord],
    doubt: Doubt,
    wait: Callable[[list[JournalRecord]], list[JournalRecord]],
    result: ApplyResult,
    reporter: Reporter,
    local_ids: frozenset[str] = frozenset(),
) -> list[JournalRecord]:
    """Fold ``leftover`` into ``stored`` and save it, after ``wait`` has waited out the
    intents the list does not show yet; the intents still in doubt (kept in the journal
    for this run's fold and the next run: the run was asked to stop).

    ``local_ids``: applications whose key the local secrets file holds (a run that lost
    the database kept it there): recorded "not captured" in the database, for ``state
    push`` to fill in, but never reported as a key to issue anew."""
    # ``delivered`` too (a killed apply's, or ``keys deliver``'s), after its ``created``.
    records = [r for r in leftover if r.event in ("created", "not_captured", "delivered")]
    doubtful = wait(doubt.unlisted(journal.in_doubt(leftover)))
    records.extend(doubt.records)
    for intent in doubtful:
        result.held_back.append((intent.name, intent.ts or ""))
        reporter.note(
            f"'{intent.name}': a create in doubt since {intent.ts} is not in the list "
            "yet; not sent again before its lag window has passed (a list can lag behind "
            "creates): apply again later"
        )
    folded = keys.add_records(stored, records)  # in memory only, so far
    result.renamed.extend(folded.renamed)
    # Reported BEFORE the ledger records it: once the entry is stored, no later run
    # reports it again, so a run killed in between would lose the report for good.
    # Killed after the report instead, the next run reconciles and reports it again.
    for name, app_id in folded.not_captured:
        if app_id in local_ids:
            reporter.note(
                f"'{name}' ({app_id}): its key is in the local secrets file, not yet in "
                f"{store.location}: mvsync state push stores it (no new key is needed)"
            )
            continue
        result.not_captured.append((name, app_id))
        reporter.not_captured(name, app_id)
    try:
        store.save(stored, doubtful)
    except MvsyncError as error:
        raise MvsyncError(
            f"{error}; nothing was created: the keys a previous run received are still "
            f"in its journal ({store.location})"
        ) from None
    if folded.stored:
        reporter.note(
            f"stored {len(folded.stored)} key(s) a previous run received in {store.location}"
        )
    return doubtful
