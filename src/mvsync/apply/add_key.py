"""``mvsync keys add``: a key from outside mvsync's own create recorded in the ledger.

The way "key missing" and "key not captured" are ever cleared: a key the console made, or
one a run received but could not record. Under the environment's lock, in this order:

1. the application's id: ``--id``, else the entry's, else the one application of that
   name in the environment's list (one ``GET`` with its API key, which also names the
   account's ``customer_id``);
2. an entry that holds a key is refused unless ``replace``;
3. MiniVoice vouches for the key (``verify.verify_key``: one list with it as the bearer);
4. an ``added`` record is journalled (sealed when the environment has recipients), which
   ``keys list`` and ``plan`` read at once and the next apply folds: it fills the entry,
   adds one, or replaces the key and keeps the replaced record in the entry's history;
5. the key sink, if any, gets it (``deliver.hand_on``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import SecretStr

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.deliver import Note, hand_on
from mvsync.apply.verify import ClientFor, verify_key
from mvsync.errors import MvsyncError
from mvsync.escape import escape
from mvsync.model import Account, RemoteApp
from mvsync.sink import SinkRunner
from mvsync.store import journal, keys
from mvsync.store.base import KeyStore
from mvsync.store.journal import JournalRecord
from mvsync.store.keys import SecretEntry, SecretsFile


@dataclass
class AddResult:
    """What ``keys add`` recorded, and whether the key sink took it."""

    name: str
    app_id: str
    location: str
    sealed: bool
    filled: bool  # the entry had no key (not captured)
    replaced: bool  # the entry's key was replaced (kept in its history)
    delivered: bool | None = None  # None: no key sink


@dataclass(frozen=True)
class AddRequest:
    """One ``keys add``: the application, the key (from stdin), and how to treat it."""

    name: str
    key: SecretStr
    app_id: str | None = None
    replace: bool = False


def add_key(
    request: AddRequest,
    store: KeyStore,
    client: MiniVoiceClient,
    client_for: ClientFor,
    *,
    seal: Callable[[SecretStr], str] | None,
    sink: SinkRunner | None,
    lock_timeout: float,
    environment: str,
    note: Note,
) -> AddResult:
    """Record ``request.key`` for ``request.name`` (see the module docstring)."""
    store.check()
    with store.lock(timeout=lock_timeout, command=f"mvsync keys add --env {environment}"):
        remote = client.list_applications()
        account = Account.of(None, remote)
        store.identify(replace(account, fingerprint=client.key_fingerprint))
        stored, leftover = store.read()
        ledger = SecretsFile(
            environment=stored.environment,
            api_url=stored.api_url,
            applications=dict(stored.applications),
        )
        keys.add_records(ledger, leftover)  # what the next fold holds
        entry = ledger.applications.get(request.name)
        app_id = _app_id(request, entry, ledger, remote, environment)
        if entry is not None and entry.key_captured and not request.replace:
            raise MvsyncError(
                f'environment {environment!r}: "{escape(request.name)}" ({escape(app_id)}) '
                "already holds a key: nothing was recorded. Give --replace to replace it "
                "(the replaced key is kept, sealed, in the entry's history)"
            )
        verify_key(
            client_for, request.key.get_secret_value(), account.customer_id, request.name, app_id
        )
        record = journal.added(
            request.name,
            app_id,
            None if seal is not None else request.key,
            seal(request.key) if seal is not None else None,
        )
        result = AddResult(
            request.name,
            app_id,
            store.location,
            sealed=seal is not None,
            filled=entry is not None and not entry.key_captured,
            replaced=entry is not None and entry.key_captured,
        )
        kept: list[JournalRecord] = []
        with store.journal() as writer:
            writer.append(record)
            if sink is not None:
                result.delivered = hand_on(
                    sink, writer, kept.append, request.name, app_id, request.key, note
                )
    return result


def _app_id(
    request: AddRequest,
    entry: SecretEntry | None,
    ledger: SecretsFile,
    remote: list[RemoteApp],
    environment: str,
) -> str:
    """The id the key is for: ``--id``, the entry's, or the one listed application."""
    name = escape(request.name)
    if entry is not None:
        if request.app_id is not None and request.app_id != entry.id:
            raise MvsyncError(
                f'environment {environment!r}: the entry "{name}" is application '
                f"{escape(entry.id)}, not {escape(request.app_id)}: nothing was recorded"
            )
        return entry.id
    app_id = request.app_id
    if app_id is None:
        ids = sorted(app.id for app in remote if app.name == request.name)
        if len(ids) != 1:
            found = "no application" if not ids else f"{len(ids)} applications"
            raise MvsyncError(
                f'environment {environment!r}: {found} named "{name}" in MiniVoice\'s '
                "list: nothing was recorded. Give its id with --id"
            )
        app_id = ids[0]
    other = next((n for n, e in ledger.applications.items() if e.id == app_id), None)
    if other is not None:
        raise MvsyncError(
            f"environment {environment!r}: application {escape(app_id)} is the entry "
            f'"{escape(other)}" of the ledger: give that name'
        )
    return app_id
