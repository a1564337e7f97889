"""Handing stored keys to the key sink (SPEC 5.5): right after each create, and later.

A key is handed on only once it is stored — its ``created`` record durable in the journal
(fsynced, or committed) — so a sink that fails, hangs, is killed or kills mvsync loses
nothing. Exit 0 of the sink is journalled as a ``delivered`` record, which the fold turns
into the entry's ``delivered_at``. Delivery is at least once: killed between the sink's
exit and that record, the key is handed on again.

- ``hand_on``: one key, from ``create_once`` (the plaintext is still in memory);
- ``after_apply``: at the end of an apply, under its lock: the plain keys of earlier runs
  not delivered yet are handed on, and every key still undelivered is named;
- ``deliver_stored``: ``mvsync keys deliver``, every undelivered entry (or those named);
  a sealed key is opened with the identity.

A key read back from a secrets file (not this run's own create) is vouched for first
(``vouch_for``: one list call with it as the bearer, ``apply/verify.py``): the file may
be committed, and a pull request must not have its own key shipped to the sink. A
database ledger is written by mvsync alone and is not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from mvsync.apply.settings import UNKNOWN_ID_PREFIX, ApplyResult, ApplySettings
from mvsync.apply.verify import ClientFor, ForeignKeyError, verify_key
from mvsync.errors import MvsyncError, SecretsError
from mvsync.escape import escape
from mvsync.model import Account
from mvsync.sealing import Identity, unseal
from mvsync.sink import SinkRunner
from mvsync.store import journal, keys
from mvsync.store.base import JournalSink, KeyStore
from mvsync.store.files import FileStore
from mvsync.store.journal import JournalRecord
from mvsync.store.keys import SecretEntry, SecretsFile

Note = Callable[[str], None]
# Loads the age identities that open sealed keys (``cli/identity.py``: -i, stdin, variables).
IdentitySource = Callable[[], Sequence[Identity]]
# Raises (``ForeignKeyError``) unless MiniVoice vouches for a key: (name, id, key).
KeyCheck = Callable[[str, str, str], None]


def _advice(environment: str) -> str:
    return f"the key is stored: mvsync keys deliver --env {environment} hands it on"


def hand_on(
    sink: SinkRunner,
    writer: JournalSink,
    keep: Callable[[JournalRecord], None],
    name: str,
    app_id: str,
    key: SecretStr,
    note: Note,
) -> bool:
    """Run the sink for one stored key; journal ``delivered`` when it took it. ``keep``
    records the record in memory first (the fold writes it even if the append fails)."""
    if app_id.startswith(UNKNOWN_ID_PREFIX):
        return False  # its id is not known: delivered once it is put in the entry
    done = sink.deliver(name, app_id, key.get_secret_value())
    if not done.ok:
        note(
            f'the key sink did not take the key of "{name}" ({app_id}): {done.problem}; '
            f"{_advice(sink.environment)}"
        )
        return False
    record = journal.delivered(name, app_id)
    keep(record)
    try:
        writer.append(record)
    except MvsyncError as error:
        note(f'"{name}" ({app_id}) was delivered; recording it failed ({error})')
    return True


def _undelivered(stored: SecretsFile) -> list[tuple[str, SecretEntry]]:
    return [
        (name, entry)
        for name, entry in stored.applications.items()
        if entry.key_captured and entry.delivered_at is None
    ]


def after_apply(
    store: KeyStore,
    stored: SecretsFile,
    result: ApplyResult,
    settings: ApplySettings,
    customer_id: str | None,
    note: Note,
) -> ApplyResult:
    """Under the apply's lock, once its records are folded into ``stored``: hand on the
    plain keys of earlier runs the sink has not taken, then name every key not delivered.
    A key a secrets file holds is vouched for first (``customer_id``: the account's)."""
    sink = settings.sink
    if sink is None:
        return result
    result.key_sink = sink.described
    if result.store_problem or result.interrupted:
        result.undelivered = [(n, e.id) for n, e in _undelivered(stored)]
        return result
    # This run's own keys were handed on once already: a failing sink is not run twice.
    this_run = {app_id for _name, app_id in result.created}
    earlier = [
        (name, entry)
        for name, entry in _undelivered(stored)
        if entry.api_key is not None
        and entry.id not in this_run
        and not entry.id.startswith(UNKNOWN_ID_PREFIX)
    ]
    if earlier:
        vouch = vouch_for(store, settings.client_for, lambda: customer_id)
        records: list[JournalRecord] = []
        with store.journal() as writer:
            for name, entry in earlier:
                assert entry.api_key is not None
                problem = _refused(vouch, name, entry.id, entry.api_key)
                if problem is not None:
                    note(f"{describe_failure(name, entry.id, problem)}; it was not delivered")
                    continue
                if hand_on(sink, writer, records.append, name, entry.id, entry.api_key, note):
                    result.delivered_later.append((name, entry.id))
        keys.add_records(stored, records)
        try:
            store.save(stored)
        except MvsyncError as error:
            note(f"{error}; the deliveries are in the journal of {store.location}")
    result.undelivered = [(n, e.id) for n, e in _undelivered(stored)]
    return result


def vouch_for(
    store: KeyStore, client_for: ClientFor | None, customer_id: Callable[[], str | None]
) -> KeyCheck | None:
    """How a stored key is vouched for before the sink gets it: ``None`` for a database
    ledger (only mvsync writes it); for a secrets file, which anyone who may change the
    repository may have edited, one list call with the key (``verify_key``). The
    account's ``customer_id`` is asked once, when the first key needs it."""
    if not isinstance(store, FileStore):
        return None
    known: list[str | None] = []

    def check(name: str, app_id: str, key: str) -> None:
        if client_for is None:
            raise ForeignKeyError(
                f'the key of "{escape(name)}" ({escape(app_id)}) cannot be checked here'
            )
        if not known:
            known.append(customer_id())
        verify_key(client_for, key, known[0], name, app_id)

    return check


def _refused(vouch: KeyCheck | None, name: str, app_id: str, key: SecretStr) -> str | None:
    """Why ``key`` may not be handed on (None: it may); never the key."""
    if vouch is None:
        return None
    try:
        vouch(name, app_id, key.get_secret_value())
    except MvsyncError as error:  # ForeignKeyError, or a key no request can carry
        return str(error)
    return None


@dataclass
class DeliverResult:
    """What ``mvsync keys deliver`` did."""

    environment: str
    location: str
    sink: str
    delivered: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # name, id, why

    @property
    def ok(self) -> bool:
        return not self.failed


def deliver_stored(
    store: KeyStore,
    sink: SinkRunner,
    names: Sequence[str],
    identity: IdentitySource | None,
    *,
    account: Account,
    client_for: ClientFor,
    customer_id: Callable[[], str | None],
    lock_timeout: float,
    ways: str = "-i",
) -> DeliverResult:
    """``mvsync keys deliver``: under the environment's lock, hand every stored key the
    sink has not taken (or the ``names`` given) to it again. The keys a killed apply left
    in the journal count: they are stored. A key from a secrets file is vouched for first
    (``vouch_for``); a sealed one is opened with ``identity`` (loaded once, at the first
    sealed key; ``ways`` says how to give one). The ``delivered`` records are journalled;
    the next apply folds them (``keys list`` reads them already)."""
    sink.check()
    store.check()
    store.identify(account)
    result = DeliverResult(sink.environment, store.location, sink.described)
    vouch = vouch_for(store, client_for, customer_id)
    with store.lock(timeout=lock_timeout, command=f"mvsync keys deliver --env {sink.environment}"):
        stored, leftover = store.read()
        keys.add_records(stored, leftover)  # a copy of what the next fold holds
        pending = _undelivered(stored)
        if names:
            pending = _chosen(stored, pending, names, sink.environment)
        opener = _Opener(identity, sink.environment, ways)
        with store.journal() as writer:
            for name, entry in pending:
                if entry.id.startswith(UNKNOWN_ID_PREFIX):
                    why = "its id is not known: put its id in the entry first"
                    result.failed.append((name, entry.id, why))
                    continue
                try:
                    key = opener.plain(name, entry)
                except SecretsError as error:
                    result.failed.append((name, entry.id, str(error)))
                    continue
                problem = _refused(vouch, name, entry.id, key)
                if problem is not None:
                    result.failed.append((name, entry.id, problem))
                    continue
                done = sink.deliver(name, entry.id, key.get_secret_value())
                if not done.ok:
                    result.failed.append((name, entry.id, f"the key sink {done.problem}"))
                    continue
                writer.append(journal.delivered(name, entry.id))
                result.delivered.append((name, entry.id))
    return result


def _chosen(
    stored: SecretsFile, pending: list[tuple[str, SecretEntry]], names: Sequence[str], env: str
) -> list[tuple[str, SecretEntry]]:
    import difflib

    by_name = dict(pending)
    chosen = []
    for name in dict.fromkeys(names):
        if name in by_name:
            chosen.append((name, by_name[name]))
            continue
        entry = stored.applications.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, list(stored.applications), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
            raise SecretsError(f"environment {env!r}: no key ledger entry named {name!r}{hint}")
        if not entry.key_captured:
            raise SecretsError(
                f"environment {env!r}: {name!r} has no key to deliver (its key was never "
                "captured): issue a new key in MiniVoice"
            )
        # Already delivered: handed on again, as asked (a sink is idempotent).
        chosen.append((name, entry))
    return chosen


class _Opener:
    """The plain key of an entry: as stored, or unsealed with the identity, which is
    loaded once, at the first sealed key (stdin is read once; a bad one fails each)."""

    def __init__(self, identity: IdentitySource | None, environment: str, ways: str) -> None:
        self.identity = identity
        self.environment = environment
        self.ways = ways
        self._loaded: list[Identity] | SecretsError | None = None

    def plain(self, name: str, entry: SecretEntry) -> SecretStr:
        if entry.api_key is not None:
            return entry.api_key
        assert entry.sealed_api_key is not None
        where = f"environment {self.environment!r}, entry {name!r}"
        if self.identity is None:
            raise SecretsError(
                f"{where}: the key is sealed; give the age identity that opens it: {self.ways}"
            )
        if self._loaded is None:
            try:
                self._loaded = list(self.identity())
            except SecretsError as error:
                self._loaded = error
        if isinstance(self._loaded, SecretsError):
            raise self._loaded
        try:
            return SecretStr(unseal(entry.sealed_api_key, self._loaded))
        except SecretsError as error:
            raise SecretsError(f"{where}: {error}") from None


def describe_failure(name: str, app_id: str, why: str) -> str:
    """One line naming a key not delivered and why (already masked), escaped."""
    return f'"{escape(name)}" ({escape(app_id)}): {why}'
