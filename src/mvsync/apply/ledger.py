"""The read side of an environment's key ledger (SPEC 5.3): ``mvsync keys`` and key status.

The ledger is what the next apply would hold once it folded the journal: the entries of
the secrets file, plus the ``created`` and ``not_captured`` records a killed run left in
the journal (pending intents are not entries). It is read without the lock and without
writing anything (no fold, no temporary file removed): reading while an apply runs sees
the file before or after one of its atomic rewrites, and the journal up to a torn last
line, which is ignored.

Where the ledger lives is pluggable: a ``LedgerSource`` gives the secrets file's value and
the journal's records. ``FileLedger`` reads the files beside the manifest; a PostgreSQL
store (``state_url``, SPEC 5.4) plugs in as another source::

    ledger = read_ledger(LedgerPlace.of(desired))          # None: no ledger yet
    ledger = read_ledger(place, store=some_source)         # any LedgerSource
    key = open_key(ledger, "Support IVR", identity_file)   # the one place a key is opened

With ``state_url`` the CLI is to pass the PostgreSQL store as ``store`` (SPEC 5.4: "plan
and keys list read the ledger from the database"); until that store exists, the files
are read. Nothing here prints; no message it raises holds a key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from mvsync.errors import SecretsError
from mvsync.manifest.interpolate import Lookup
from mvsync.model import Account, LedgerPlace
from mvsync.sealing import Identity, load_identities, unseal
from mvsync.store import journal, keys
from mvsync.store.journal import JournalRecord
from mvsync.store.keys import SecretEntry, SecretsFile

EntryState = Literal["plain", "sealed", "not_captured"]


class LedgerSource(Protocol):
    """Where one environment's entries are kept (files, or a database)."""

    @property
    def location(self) -> str:
        """Where the ledger is, for messages (a path, or a database without its password)."""
        ...

    def snapshot(self) -> tuple[SecretsFile, list[JournalRecord]] | None:
        """The stored entries and the journal left to fold; ``None`` when there is no
        ledger at all yet (nothing was ever applied there). Reads only."""
        ...


class FileLedger:
    """The secrets file and its journal (SPEC 5.1): the default ``LedgerSource``."""

    def __init__(self, place: LedgerPlace) -> None:
        self.place = place
        self.journal_path = journal.journal_path(place.secrets_path)

    @property
    def location(self) -> str:
        return str(self.place.secrets_path)

    def snapshot(self) -> tuple[SecretsFile, list[JournalRecord]] | None:
        path = self.place.secrets_path
        stored = keys.read_secrets(path)
        records = journal.read_journal(self.journal_path)
        if stored is None:
            if not self.journal_path.exists():
                return None
            return keys.empty(self.place.environment, self.place.api_url or ""), records
        # The account is checked only when the manifest's api_url could be expanded.
        api_url = self.place.api_url if self.place.api_url is not None else stored.api_url
        keys.check_matches(stored, path, self.place.environment, api_url)
        return stored, records


@dataclass(frozen=True)
class LedgerEntry:
    """One entry: an application mvsync created, and what the ledger holds of its key."""

    name: str
    id: str
    created_at: str | None
    state: EntryState
    _entry: SecretEntry = field(repr=False, compare=False)

    @property
    def held(self) -> bool:
        return self.state != "not_captured"

    @property
    def delivered_at(self) -> str | None:
        """When the key sink took its key (SPEC 5.5); None: not (yet) delivered."""
        return self._entry.delivered_at

    def to_json(self, *, delivery: bool = False) -> dict[str, str | bool | None]:
        """The entry for ``keys list --format json``; with ``delivery`` (an environment
        with a key sink) also ``delivered`` and ``delivered_at``."""
        document: dict[str, str | bool | None] = {
            "name": self.name,
            "id": self.id,
            "created_at": self.created_at,
            "state": self.state,
        }
        if delivery:
            document.update(delivered=self.delivered_at is not None, delivered_at=self.delivered_at)
        return document


@dataclass(frozen=True)
class Ledger:
    """Every entry of one environment, in the secrets file's order, then the journal's."""

    environment: str
    location: str
    entries: tuple[LedgerEntry, ...]

    def held_by_id(self) -> dict[str, bool]:
        """Application id → whether its key is held (``planner.with_key_status``)."""
        held: dict[str, bool] = {}
        for entry in self.entries:
            held[entry.id] = held.get(entry.id, False) or entry.held
        return held

    def undelivered(self) -> list[tuple[str, str]]:
        """(name, id) of each entry holding a key the key sink has not taken (SPEC 5.5)."""
        return [(e.name, e.id) for e in self.entries if e.held and e._entry.delivered_at is None]

    def entry(self, name: str) -> LedgerEntry:
        """The entry named ``name``; SecretsError (suggesting close names) when none is."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        names = [entry.name for entry in self.entries]
        # Case-insensitively: "main ivr" finds "Main IVR" (names are compared exactly).
        folded: dict[str, list[str]] = {}
        for known in names:
            folded.setdefault(known.casefold(), []).append(known)
        near = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
        close = [known for key in near for known in folded[key]][:3]
        hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
        if not names:
            hint = " (the ledger has no entries)"
        raise SecretsError(
            f"environment {self.environment!r}: no key ledger entry named {name!r} in "
            f"{self.location}{hint}"
        )


def _state(entry: SecretEntry) -> EntryState:
    if entry.sealed_api_key is not None:
        return "sealed"
    return "plain" if entry.api_key is not None else "not_captured"


def read_ledger(
    place: LedgerPlace,
    store: LedgerSource | None = None,
    lookup: Lookup = os.environ.get,
    account: Account | None = None,
) -> Ledger | None:
    """The ledger of ``place`` (from ``store``; by default its ``state_url`` database, else
    the files beside the manifest, and in a database the ledger of ``account``, else of
    the key in the API key variable); ``None`` when there is none yet. SecretsError or
    StateError for a malformed, unsafe or unreachable one."""
    from mvsync.apply.stores import database_ledger  # psycopg only with state_url

    source = store
    if source is None:
        source = database_ledger(place, lookup, account) or FileLedger(place)
    found = source.snapshot()
    if found is None:
        return None
    stored, records = found
    # Folded into a copy, exactly as the next apply will fold it: same names, same order.
    folded = SecretsFile(
        environment=stored.environment,
        api_url=stored.api_url,
        applications=dict(stored.applications),
    )
    keys.add_records(folded, records)
    entries = tuple(
        LedgerEntry(name, entry.id, entry.created_at, _state(entry), entry)
        for name, entry in folded.applications.items()
    )
    return Ledger(place.environment, source.location, entries)


def local_only(place: LedgerPlace, ledger: Ledger | SecretsFile | None) -> list[str]:
    """With ``state_url``: the ids whose key the local secrets file holds and ``ledger``
    (the database's) does not — keys a run kept locally when it lost the database, or an
    environment moved to ``state_url`` — for ``mvsync state push``. Empty without them,
    or when the local file cannot be read (apply reports that when it needs it)."""
    if place.state_url is None or not place.secrets_path.exists():
        return []
    try:
        local = keys.read_secrets(place.secrets_path)
    except SecretsError:
        return []
    if local is None:
        return []
    if isinstance(ledger, Ledger):
        held = {entry.id for entry in ledger.entries if entry.held}
    elif ledger is not None:
        held = {e.id for e in ledger.applications.values() if e.key_captured}
    else:
        held = set()
    return [
        entry.id
        for entry in local.applications.values()
        if entry.key_captured and entry.id not in held
    ]


def push_advice(place: LedgerPlace, count: int) -> str:
    """What to do about ``count`` keys only in the local secrets file."""
    return (
        f"{place.secrets_path} holds {count} key(s) the database does not: "
        f"mvsync state push --env {place.environment} copies them in (no new key is needed)"
    )


def local_file_note(place: LedgerPlace, stored: SecretsFile) -> tuple[str | None, frozenset[str]]:
    """With ``state_url``, what apply says of the local secrets file (None: there is
    none), and the ids whose key only it holds."""
    if not place.secrets_path.exists():
        return None, frozenset()
    local = local_only(place, stored)
    if local:
        return push_advice(place, len(local)), frozenset(local)
    return (
        f"every key of {place.secrets_path} is in the database already (pushed): the "
        "local file may be deleted"
    ), frozenset()


def move_entry_advice(fallback: object | None) -> str:
    """How to free a name whose entry blocks its create (``fallback``: with state_url)."""
    if fallback is None:
        return "move that entry out of the secrets file (keep its key if you still need it)"
    return (
        "give the application another name in the manifest, or delete its row from "
        "mvsync.entries (docs/state.md; keep its sealed key if you still need it)"
    )


def open_key(
    ledger: Ledger,
    name: str,
    identity_file: Path | Callable[[], Sequence[Identity]] | None,
    ways: str = "-i",
) -> str:
    """The key of entry ``name``: plain as stored, or unsealed with ``identity_file`` (a
    path, or a loader called only for a sealed key: stdin, a variable).

    SecretsError, holding no secret, for an unknown name, an entry without a key, a sealed
    entry without an identity (``ways`` says how to give one), or one that does not open it.
    """
    found = ledger.entry(name)
    secret = found._entry
    where = f"environment {ledger.environment!r}, entry {name!r} ({found.id})"
    if found.state == "not_captured":
        raise SecretsError(
            f"{where}: its key was never captured (key_captured: false); issue a new key "
            "in MiniVoice"
        )
    if secret.api_key is not None:
        return secret.api_key.get_secret_value()
    assert secret.sealed_api_key is not None
    if identity_file is None:
        raise SecretsError(
            f"{where}: the key is sealed; give the age identity that opens it: {ways}"
        )
    if isinstance(identity_file, Path):
        identities = load_identities(identity_file)
    else:
        identities = list(identity_file())
    try:
        return unseal(secret.sealed_api_key, identities)
    except SecretsError as error:
        raise SecretsError(f"{where}: {error}") from None
