"""``FileStore``: an environment's keys in its secrets file, journal and lock beside it.

The default store (SPEC section 5.1): ``.mvsync/<env>.secrets.yaml`` (0600, rewritten
atomically), ``<secrets>.journal`` (fsynced appends) and ``<secrets>.lock`` (flock),
plus a machine-wide lock for the account and environment (``machine_lock``), so that two
checkouts of one manifest on one machine never both create.

A write that fails (a full disk, the folder removed while apply runs, a read-only
folder) is retried for a bounded time; a journal that cannot be appended to is
rewritten whole from what this run holds in memory (the folder created again if it was
removed), so that no record of a key lives only in an unlinked file.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mvsync.errors import SecretsError
from mvsync.store import journal, keys
from mvsync.store.durable import ensure_private_dir, refuse_open_folder, write_atomic
from mvsync.store.gitignore import ensure_ignored
from mvsync.store.journal import KEY_EVENTS, JournalRecord, JournalWriter
from mvsync.store.keys import SecretsFile
from mvsync.store.lock import EnvironmentLock, lock_path, machine_lock_path

if TYPE_CHECKING:
    from mvsync.model import Account

Sleep = Callable[[float], None]


def _retrying(deadline: float, sleep: Sleep, attempt: Callable[[], None]) -> None:
    """Run ``attempt`` until it succeeds or ``deadline`` seconds have passed (backoff)."""
    end = time.monotonic() + deadline
    delay = 0.05
    while True:
        try:
            attempt()
            return
        except SecretsError:
            if time.monotonic() + delay > end:
                raise
        sleep(delay)
        delay = min(delay * 2, 1.0)


class FileJournal:
    """The journal of one run: durable appends; on a failure, the whole journal rewritten
    from memory (all of this run's records and what it started from)."""

    def __init__(self, path: Path, retry_seconds: float, sleep: Sleep) -> None:
        self.path = path
        self._retry_seconds = retry_seconds
        self._sleep = sleep
        self._lock = threading.Lock()
        # What is already there (creates still in doubt, kept by the last fold) stays.
        self._records: list[JournalRecord] = journal.read_journal(path)
        self._writer: JournalWriter | None = JournalWriter(path)
        self.intact = True  # every record appended is in the journal on disk

    def append(self, record: JournalRecord) -> None:
        with self._lock:
            self._records.append(record)
            try:
                if self._writer is None:
                    raise SecretsError(f"{self.path}: not open")
                self._writer.append(record)
                return
            except SecretsError:
                self.intact = False
            try:
                _retrying(self._retry_seconds, self._sleep, self._rewrite)
            except SecretsError as error:
                raise SecretsError(f"cannot write the journal {error}") from None
            self.intact = True

    def _rewrite(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, b"".join(record.to_line() for record in self._records))
        self._writer = JournalWriter(self.path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> FileJournal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FileStore:
    """The files of one environment; see the module docstring."""

    def __init__(
        self,
        secrets_path: Path,
        environment: str,
        api_url: str,
        *,
        retry_seconds: float = 5.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.secrets_path = secrets_path
        self.journal_path = journal.journal_path(secrets_path)
        self.environment = environment
        self.api_url = api_url
        self.retry_seconds = retry_seconds
        self._sleep = sleep
        self._journal: FileJournal | None = None

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
        refuse_open_folder(self.secrets_path.parent)
        self._read()

    @contextlib.contextmanager
    def lock(self, *, timeout: float, command: str) -> Iterator[None]:
        # Machine-wide first: another checkout of this manifest (its own secrets folder)
        # applying the same account and environment waits here, not after its own lock.
        machine = EnvironmentLock(
            machine_lock_path(self.api_url, self.environment), timeout=timeout, command=command
        )
        ensure_private_dir(self.secrets_path.parent)
        ensure_ignored(self.secrets_path)  # a committed folder never takes in the lock
        local = EnvironmentLock(lock_path(self.secrets_path), timeout=timeout, command=command)
        with machine, local:
            yield

    def identify(self, account: Account) -> None:
        """A secrets file is one checkout's: its ``api_url`` is checked, not its account."""

    def read(self) -> tuple[SecretsFile, list[JournalRecord]]:
        # Another apply may have changed both while this one waited for the lock.
        ledger, leftover = self._read()
        keys.remove_stale_temps(self.secrets_path)
        return ledger, leftover

    def has_journal(self) -> bool:
        return self.journal_path.exists()

    def journal(self) -> FileJournal:
        ensure_private_dir(self.secrets_path.parent)
        self._journal = FileJournal(self.journal_path, self.retry_seconds, self._sleep)
        return self._journal

    def unjournalled(self, records: list[JournalRecord]) -> list[JournalRecord]:
        """Every key record of ``records`` once the journal on disk is not whole (a
        record that failed may have left a torn line): none is counted on."""
        if self._journal is None or (self._journal.intact and self.journal_path.exists()):
            return []
        return [r for r in records if r.event in KEY_EVENTS]

    def save(self, ledger: SecretsFile, pending: list[JournalRecord] | None = None) -> None:
        def attempt() -> None:
            ensure_private_dir(self.secrets_path.parent)  # created again if it was removed
            keys.write_secrets(self.secrets_path, ledger)
            if pending:
                # Creates whose outcome is still unknown stay journalled (see apply/run.py).
                write_atomic(self.journal_path, b"".join(r.to_line() for r in pending))
            else:
                keys.remove_journal(self.journal_path)

        # One atomic rewrite, then the journal goes: a crash in between folds again (a no-op).
        _retrying(self.retry_seconds, self._sleep, attempt)
