"""Create one application exactly once, and never lose the key its answer carries.

One ``CreateOnce`` serves every create of one apply (its workers share it): an intent
is journalled before each POST, the key after it — the create counts as done only
then. An answer that leaves doubt (outcome unknown, a 2xx without a readable key) is
settled by listing, never by POSTing blindly again (SPEC guarantee 2); a key in a
malformed answer is stored before anything else is tried (guarantee 3).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from pydantic import SecretStr

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.deliver import hand_on
from mvsync.apply.settings import UNKNOWN_ID_PREFIX as UNKNOWN_ID_PREFIX
from mvsync.apply.settings import ApplySettings
from mvsync.errors import ApiError, ApiResponseError, MvsyncError, OutcomeUnknownError
from mvsync.model import CreateRequest, RemoteApp, utc_stamp
from mvsync.store import journal
from mvsync.store.base import JournalSink
from mvsync.store.journal import JournalRecord

# How often one create may be POSTed: again only after a lag window without it listed.
MAX_SENDS = 3
# The longest pause between two lists while a create is in doubt (seconds).
LIST_BACKOFF_CAP = 2.0
# An id mvsync will store and print: what the API documents, nothing a terminal interprets.
_MAX_ID_LENGTH = 200


def _usable_id(app_id: str) -> bool:
    return (
        0 < len(app_id) <= _MAX_ID_LENGTH
        and app_id.isprintable()
        and not any(c.isspace() for c in app_id)
        and not app_id.startswith(UNKNOWN_ID_PREFIX)
    )


def _now() -> str:
    return utc_stamp()


def _quoted(name: str) -> str:
    # Raw: whoever prints the message escapes it (mvsync.escape).
    return f'"{name}"'


class Outcome(Enum):
    CREATED = "created"
    RENAMED = "renamed"  # created, key stored, under the name the API gave it
    NOT_CAPTURED = "not_captured"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Done:
    """How one create ended."""

    name: str
    outcome: Outcome
    app_id: str | None = None
    message: str | None = None
    actual_name: str | None = None  # RENAMED: the name the API gave it
    customer_id: str | None = None  # the account the answer named (its ledger's owner)


class Records:
    """The journal records of one run, kept in memory too: the fold writes them even if
    an append failed, so a key is never only in a failed journal write. Thread-safe."""

    def __init__(self) -> None:
        self._records: list[JournalRecord] = []
        self._lock = threading.Lock()

    def add(self, record: JournalRecord) -> None:
        with self._lock:
            self._records.append(record)

    def extend(self, records: list[JournalRecord]) -> None:
        with self._lock:
            self._records.extend(records)

    def replace(self, old: JournalRecord, new: JournalRecord) -> None:
        with self._lock:
            self._records[self._records.index(old)] = new

    def snapshot(self) -> list[JournalRecord]:
        with self._lock:
            return list(self._records)


@dataclass
class CreateOnce:
    """Everything one create needs; shared by the apply's worker threads."""

    client: MiniVoiceClient
    writer: JournalSink
    records: Records
    known_ids: set[str]  # the ids listed right before the creates
    settings: ApplySettings
    note: Callable[[str], None]
    stop: threading.Event  # the user asked to stop: start no new create
    halt: threading.Event  # an error every further create would meet
    location: str  # where the keys are, for messages
    # With recipients: seals a key (age armor) the moment its answer is parsed.
    seal: Callable[[SecretStr], str] | None = None

    _ids_lock: threading.Lock = field(default_factory=threading.Lock)
    _claimed: set[str] = field(default_factory=set)

    def _append(self, record: JournalRecord) -> None:
        # In memory first: the fold writes every record even if this append fails.
        self.records.add(record)
        self.writer.append(record)

    def _settle(self, name: str) -> None:
        """Close the intent of a POST that created nothing under that name. Best effort:
        an intent left open only makes the next apply wait its lag window."""
        try:
            self._append(journal.settled(name))
        except MvsyncError as error:
            self.note(f"{error}; the next apply waits before sending {_quoted(name)} again")

    def _key_record(self, name: str, app_id: str, key: SecretStr, created_at: str) -> JournalRecord:
        """The record of a received key: sealed in memory first when there are recipients,
        so that only its ciphertext is ever written (SPEC 5.2)."""
        if self.seal is None:
            return journal.created(name, app_id, key, created_at)
        return journal.created(name, app_id, None, created_at, sealed_api_key=self.seal(key))

    def _keep(self, record: JournalRecord, key: SecretStr | None = None) -> None:
        """Journal a record that holds a key. If the journal cannot take it (after the
        store's own bounded retries), the key stays in memory for the fold, and no new
        create starts: the run ends and says where each key went. Once it is journalled,
        ``key`` is handed to the key sink, if there is one (SPEC 5.5)."""
        try:
            self._append(record)
        except MvsyncError as error:
            self.halt.set()
            self.note(
                f"{error}; the key of {_quoted(record.name)} ({record.app_id}) is kept in "
                "memory and written with the others at the end; no new create starts"
            )
            return
        sink = self.settings.sink
        if sink is not None and key is not None and record.app_id is not None:
            hand_on(sink, self.writer, self.records.add, record.name, record.app_id, key, self.note)

    def _claim(self, app_id: str) -> bool:
        """Whether ``app_id`` is new: not listed before the creates, not answered twice."""
        with self._ids_lock:
            if app_id in self.known_ids or app_id in self._claimed:
                return False
            self._claimed.add(app_id)
            return True

    def run(self, request: CreateRequest, attempt: int = 1) -> Done:
        """Create one application, POSTed once — again only when a POST whose outcome was
        unknown is still not listed a lag window later; its key on disk (or, if no disk
        takes it, in memory for the fold) before this returns CREATED."""
        name = request.name
        if self.stop.is_set() or self.halt.is_set():
            return Done(name, Outcome.SKIPPED)
        try:
            self._append(journal.intent(name))
        except MvsyncError as error:
            self.halt.set()  # no create without its intent on disk (SPEC guarantee 3)
            # Never sent: settled in memory, so a later fold does not keep it in doubt.
            self.records.add(journal.settled(name))
            return Done(name, Outcome.FAILED, message=f"not created: {error}")
        sent = time.monotonic()
        try:
            app = self.client.create_application(request)
        except ApiResponseError as malformed:
            # A 2xx: the API says it created the application. Never POST it again.
            if malformed.issued_key is not None:
                return self._store_issued_key(name, malformed)
            return self._created_without_key(name, malformed)
        except OutcomeUnknownError as unknown:
            # It may exist now: look before deciding (SPEC guarantee 2). Absent from one
            # list is not proof (a list can lag behind creates): list again until the lag
            # window since this POST has passed; only then is it sent again.
            listed = self._wait_for_listing(name, sent, doubt=str(unknown))
            if listed is not None:
                return listed
            window = self.settings.doubt_window
            if attempt < MAX_SENDS and not (self.stop.is_set() or self.halt.is_set()):
                self._settle(name)
                self.note(
                    f"{_quoted(name)}: {unknown}; still not listed {window:g}s after that "
                    f"POST, so nothing was created: sending it again ({attempt + 1} of "
                    f"{MAX_SENDS})"
                )
                return self.run(request, attempt + 1)
            return Done(
                name,
                Outcome.FAILED,
                message=f"{unknown}; not in the list yet, so not sent again (a list can lag "
                "behind creates): the next apply sends it once a list made "
                f"{window:g}s after this one still lacks it",
            )
        except ApiError as error:
            if error.status not in (400, 404, 409, 413, 422):
                self.halt.set()  # 401, 403, no connection...: every create would meet it
            self._settle(name)
            return Done(name, Outcome.FAILED, message=f"not created: {error}")
        if not self._claim(app.id):
            return self._store_under_marker(
                name,
                app.api_key,
                app.created_at,
                f"the API answered the create of {_quoted(name)} with id {_quoted(app.id)}, "
                "which another application already has (a malformed answer)",
            )
        if app.name != name:
            # What was created is recorded as what it is; the manifest's name stays free.
            self._keep(self._key_record(app.name, app.id, app.api_key, app.created_at), app.api_key)
            self._settle(name)
            return Done(
                name,
                Outcome.RENAMED,
                app_id=app.id,
                actual_name=app.name,
                customer_id=app.customer_id,
            )
        # The key is on disk when this returns: only then does the create count as done.
        self._keep(self._key_record(name, app.id, app.api_key, app.created_at), app.api_key)
        return Done(name, Outcome.CREATED, app_id=app.id, customer_id=app.customer_id)

    def _store_under_marker(self, name: str, key: SecretStr, received_at: str, why: str) -> Done:
        """A key whose id cannot be trusted: kept under an ``unknown-`` marker, reported."""
        marker = f"{UNKNOWN_ID_PREFIX}{uuid.uuid4().hex[:12]}"
        self._keep(self._key_record(name, marker, key, received_at))
        self.note(
            f"{why}; its key is stored with the id {marker}: look its id up in MiniVoice "
            f"and put it in {self.location}"
        )
        return Done(name, Outcome.CREATED, app_id=marker)

    def _store_issued_key(self, name: str, malformed: ApiResponseError) -> Done:
        """A malformed create answer that carries a key: the key goes to disk first."""
        assert malformed.issued_key is not None
        key = malformed.issued_key
        received_at = _now()
        if (
            malformed.app_id is not None
            and _usable_id(malformed.app_id)
            and self._claim(malformed.app_id)
        ):
            self._keep(self._key_record(name, malformed.app_id, key, received_at), key)
            self.note(
                f"the API's answer to the create of {_quoted(name)} was malformed ({malformed}); "
                "its key and id are stored"
            )
            return Done(name, Outcome.CREATED, app_id=malformed.app_id)
        # No usable id: store the key now under a marker (a kill must not lose it), then
        # look the id up; a found id replaces the marker in what this run folds.
        marker = f"{UNKNOWN_ID_PREFIX}{uuid.uuid4().hex[:12]}"
        record = self._key_record(name, marker, key, received_at)
        self._keep(record)
        found: list[RemoteApp] = []
        why = "the list could not be read"
        try:
            found = self._new_apps_named(name)
            why = f"the list shows {len(found) or 'no'} new application(s) of that name"
        except ApiError as listing:
            self.note(f"listing to find the id of {_quoted(name)} failed: {listing}")
        if len(found) == 1 and self._claim(found[0].id):
            app_id = found[0].id
            self.records.replace(record, replace(record, app_id=app_id))
            self.note(
                f"the API's answer to the create of {_quoted(name)} was malformed ({malformed}); "
                f"its key is stored, its id {_quoted(app_id)} was read from the list"
            )
            return Done(name, Outcome.CREATED, app_id=app_id)
        self.note(
            f"the API's answer to the create of {_quoted(name)} was malformed ({malformed}); its "
            f"key is stored with the id {marker} because {why}: look its id up in MiniVoice "
            f"and put it in {self.location}"
        )
        return Done(name, Outcome.CREATED, app_id=marker)

    def _created_without_key(self, name: str, malformed: ApiResponseError) -> Done:
        """A 2xx answer with no readable key: created, key lost; never POST it again."""
        doubt = f"probably created, key not captured: {malformed}"
        listed = self._record_if_listed(name, doubt=doubt)
        if listed is not None:
            return listed
        return Done(
            name,
            Outcome.FAILED,
            message=f"probably created, key not captured, not in the list yet: {malformed}; "
            "not sent again (the API answered success). Run mvsync plan later: once it is "
            "listed, issue a new key in MiniVoice",
        )

    def _new_apps_named(self, name: str) -> list[RemoteApp]:
        """The listed applications of that name that were not there before the creates."""
        return [
            a
            for a in self.client.list_applications()
            if a.name == name and a.id not in self.known_ids
        ]

    def _wait_for_listing(self, name: str, sent: float, *, doubt: str) -> Done | None:
        """``_record_if_listed`` with backoff until the lag window since ``sent`` (the
        POST) has passed, or the run is asked to stop; None while it is not listed."""
        window = self.settings.doubt_window
        delay = self.settings.unknown_wait
        waited = 0.0
        while True:
            found = self._record_if_listed(name, doubt=doubt, wait=delay)
            waited += delay
            if found is not None or self.stop.is_set() or self.halt.is_set():
                return found
            # Slept time counts even where sleeping is simulated (tests).
            remaining = window - max(waited, time.monotonic() - sent)
            if remaining <= 0:
                return None
            delay = min(max(delay, 0.05) * 2, LIST_BACKOFF_CAP, remaining)

    def _record_if_listed(self, name: str, *, doubt: str, wait: float | None = None) -> Done | None:
        """After an answer that leaves doubt: wait, list; a new application of that name is
        journalled "not captured". None when none is listed; a failed list ends this create
        (and halts the others: the next apply finds out)."""
        self.settings.sleep(self.settings.unknown_wait if wait is None else wait)
        try:
            found = self._new_apps_named(name)
        except ApiError as listing:
            self.halt.set()
            return Done(
                name,
                Outcome.FAILED,
                message=f"{doubt}; listing to find out failed too: {listing} "
                "(the next apply finds out)",
            )
        if not found:
            return None
        self._keep(journal.not_captured(name, found[0].id))
        return Done(name, Outcome.NOT_CAPTURED, app_id=found[0].id)
