"""The one small interface between apply and where an environment's keys live.

Two implementations: ``files.FileStore`` (the secrets file, its journal and its lock
beside the manifest: SPEC section 5.1) and the PostgreSQL store (section 5.4). Apply
talks to ``KeyStore`` only, so the guarantees it keeps — an intent durable before each
POST, each key durable before its create counts as done, a killed run reconciled by the
next — are written once, whatever holds the records.

The ledger in memory is a ``keys.SecretsFile`` (entries by name, only ever added to);
what a run appends is ``journal.JournalRecord`` values.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from mvsync.store.journal import JournalRecord
from mvsync.store.keys import SecretsFile

if TYPE_CHECKING:
    from mvsync.model import Account


class JournalSink(Protocol):
    """Where one run appends its records; ``append`` returns once the record is durable."""

    def append(self, record: JournalRecord) -> None: ...


class KeyStore(Protocol):
    """The ledger, journal and lock of one environment."""

    @property
    def location(self) -> str:
        """Where the keys are, for messages (a path, or a database without its password)."""
        ...

    def check(self) -> None:
        """Refuse a malformed or unsafe ledger or journal before anything is locked or sent."""
        ...

    def lock(self, *, timeout: float, command: str) -> AbstractContextManager[object]:
        """The environment's exclusive lock, held for the whole apply."""
        ...

    def identify(self, account: Account) -> None:
        """Whose ledger this is: before ``read``, what the run knows of its MiniVoice
        account (a shared database keeps one ledger per account; a secrets file belongs
        to one checkout and ignores it). Called again when a create answer names the
        customer, the store records it."""
        ...

    def read(self) -> tuple[SecretsFile, list[JournalRecord]]:
        """Under the lock: the ledger and what a previous run left in the journal."""
        ...

    def has_journal(self) -> bool:
        """Whether a journal (even an empty one) is left to fold."""
        ...

    def journal(self) -> AbstractContextManager[JournalSink]:
        """Open the journal for this run's appends."""
        ...

    def save(self, ledger: SecretsFile, pending: list[JournalRecord] | None = None) -> None:
        """Make ``ledger`` (entries only ever added) durable, then clear the journal but for
        ``pending``: intents still in doubt, kept for the next run. Retried for a bounded
        time; raises ``MvsyncError`` (naming what failed) when it cannot."""
        ...

    def unjournalled(self, records: list[JournalRecord]) -> list[JournalRecord]:
        """The records of ``records`` holding a key that are not durable in the journal
        (empty when every one is: a failed ``save`` then loses nothing, the next run
        folds them)."""
        ...
