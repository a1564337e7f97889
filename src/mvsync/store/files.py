"""``FileStore``: an environment's keys in its secrets file, journal and lock beside it.

The default store (SPEC section 5.1): ``.mvsync/<env>.secrets.yaml`` (0600, rewritten
atomically), ``<secrets>.journal`` (fsynced appends) and ``<secrets>.lock`` (flock).
"""

from __future__ import annotations

from pathlib import Path

from mvsync.store import journal, keys
from mvsync.store.durable import ensure_private_dir
from mvsync.store.journal import JournalRecord, JournalWriter
from mvsync.store.keys import SecretsFile
from mvsync.store.lock import EnvironmentLock, lock_path


class FileStore:
    """The files of one environment; see the module docstring."""

    def __init__(self, secrets_path: Path, environment: str, api_url: str) -> None:
        self.secrets_path = secrets_path
        self.journal_path = journal.journal_path(secrets_path)
        self.environment = environment
        self.api_url = api_url

    @property
    def location(self) -> str:
        return str(self.secrets_path)

    def _read(self) -> tuple[SecretsFile, list[JournalRecord]]:
        stored = keys.read_secrets(self.secrets_path)
        if stored is None:
            stored = keys.empty(self.environment, self.api_url)
        else:
            keys.check_matches(stored, self.secrets_path, self.environment, self.api_url)
        return stored, journal.read_journal(self.journal_path)

    def check(self) -> None:
        self._read()

    def lock(self, *, timeout: float, command: str) -> EnvironmentLock:
        ensure_private_dir(self.secrets_path.parent)
        return EnvironmentLock(lock_path(self.secrets_path), timeout=timeout, command=command)

    def read(self) -> tuple[SecretsFile, list[JournalRecord]]:
        # Another apply may have changed both while this one waited for the lock.
        ledger, leftover = self._read()
        keys.remove_stale_temps(self.secrets_path)
        return ledger, leftover

    def has_journal(self) -> bool:
        return self.journal_path.exists()

    def journal(self) -> JournalWriter:
        return JournalWriter(self.journal_path)

    def save(self, ledger: SecretsFile) -> None:
        # One atomic rewrite, then the journal goes: a crash in between folds again (a no-op).
        keys.write_secrets(self.secrets_path, ledger)
        keys.remove_journal(self.journal_path)
