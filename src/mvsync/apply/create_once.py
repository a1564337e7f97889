"""Create one application exactly once, and never lose the key its answer carries.

One ``CreateOnce`` serves every create of one apply (its workers share it): an intent
is journalled before each POST, the key after it — the create counts as done only
then. An answer that leaves doubt (outcome unknown, a 2xx without a readable key) is
settled by listing, never by POSTing blindly again (SPEC guarantee 2); a key in a
malformed answer is stored before anything else is tried (guarantee 3).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from pydantic import SecretStr

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.settings import ApplySettings
from mvsync.errors import ApiError, ApiResponseError, OutcomeUnknownError
from mvsync.model import CreateRequest, RemoteApp
from mvsync.store import journal
from mvsync.store.base import JournalSink
from mvsync.store.journal import JournalRecord

# The id stored with a key whose create answer held no usable id (and the list none either).
UNKNOWN_ID_PREFIX = "unknown-"
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
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _quoted(name: str) -> str:
    # Raw: whoever prints the message escapes it (mvsync.escape).
    return f'"{name}"'


class Outcome(Enum):
    CREATED = "created"
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


class Records:
    """The journal records of one run, kept in memory too: the fold writes them even if
    an append failed, so a key is never only in a failed journal write. Thread-safe."""

    def __init__(self) -> None:
        self._records: list[JournalRecord] = []
        self._lock = threading.Lock()

    def add(self, record: JournalRecord) -> None:
        with self._lock:
            self._records.append(record)

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

    def _append(self, record: JournalRecord) -> None:
        if record.event != "intent":
            self.records.add(record)
        self.writer.append(record)

    def _key_record(self, name: str, app_id: str, key: SecretStr, created_at: str) -> JournalRecord:
        """The record of a received key: sealed in memory first when there are recipients,
        so that only its ciphertext is ever written (SPEC 5.2)."""
        if self.seal is None:
            return journal.created(name, app_id, key, created_at)
        return journal.created(name, app_id, None, created_at, sealed_api_key=self.seal(key))

    def run(self, request: CreateRequest) -> Done:
        """Create one application; its key on disk before this returns CREATED."""
        name = request.name
        attempts = self.settings.max_post_attempts
        for attempt in range(1, attempts + 1):
            if self.stop.is_set() or self.halt.is_set():
                return Done(name, Outcome.SKIPPED)
            self._append(journal.intent(name))
            try:
                app = self.client.create_application(request)
            except ApiResponseError as malformed:
                # A 2xx: the API says it created the application. Never POST it again.
                if malformed.issued_key is not None:
                    return self._store_issued_key(name, malformed)
                return self._created_without_key(name, malformed)
            except OutcomeUnknownError as unknown:
                # It may exist now: look before deciding (SPEC guarantee 2).
                listed = self._record_if_listed(name, doubt=str(unknown))
                if listed is not None:
                    return listed
                if attempt == attempts:
                    return Done(
                        name,
                        Outcome.FAILED,
                        message=f"{unknown}; not in the list after {attempts} attempts, so "
                        "probably not created (the next apply finds out)",
                    )
                continue
            except ApiError as error:
                if error.status not in (400, 404, 409, 413, 422):
                    self.halt.set()  # 401, 403, no connection...: every create would meet it
                return Done(name, Outcome.FAILED, message=f"not created: {error}")
            # The key is on disk when this returns: only then does the create count as done.
            self._append(self._key_record(name, app.id, app.api_key, app.created_at))
            return Done(name, Outcome.CREATED, app_id=app.id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_issued_key(self, name: str, malformed: ApiResponseError) -> Done:
        """A malformed create answer that carries a key: the key goes to disk first."""
        assert malformed.issued_key is not None
        key = malformed.issued_key
        received_at = _now()
        if malformed.app_id is not None and _usable_id(malformed.app_id):
            self._append(self._key_record(name, malformed.app_id, key, received_at))
            self.note(
                f"the API's answer to the create of {_quoted(name)} was malformed ({malformed}); "
                "its key and id are stored"
            )
            return Done(name, Outcome.CREATED, app_id=malformed.app_id)
        # No usable id: store the key now under a marker (a kill must not lose it), then
        # look the id up; a found id replaces the marker in what this run folds.
        marker = f"{UNKNOWN_ID_PREFIX}{uuid.uuid4().hex[:12]}"
        record = self._key_record(name, marker, key, received_at)
        self._append(record)
        found: list[RemoteApp] = []
        why = "the list could not be read"
        try:
            found = self._new_apps_named(name)
            why = f"the list shows {len(found) or 'no'} new application(s) of that name"
        except ApiError as listing:
            self.note(f"listing to find the id of {_quoted(name)} failed: {listing}")
        if len(found) == 1:
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

    def _record_if_listed(self, name: str, *, doubt: str) -> Done | None:
        """After an answer that leaves doubt: wait, list; a new application of that name is
        journalled "not captured". None when none is listed; a failed list ends this create
        (and halts the others: the next apply finds out)."""
        self.settings.sleep(self.settings.unknown_wait)
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
        self._append(journal.not_captured(name, found[0].id))
        return Done(name, Outcome.NOT_CAPTURED, app_id=found[0].id)
