"""``PgStore``: an environment's ledger, journal and lock in PostgreSQL (SPEC section 5.4).

The tables (``mvsync.pg_schema``, docs/state.md) are shared by every machine that
applies the environment, keyed by its name and ``api_url``, and within it by account
(``pg_accounts``: two MiniVoice accounts never share a ledger):

- the lock is a session-level advisory lock ``(28022, environment id)`` held on a
  connection of its own for the whole apply, with a ``mvsync.locks`` row naming the
  holder. A killed holder's session ends with its connection, and the lock with it;
  nothing ever force-unlocks.
- every append is its own committed transaction (autocommit, ``synchronous_commit``
  never off): on the server's disk when ``append`` returns. An intent is written only
  while this run's lock session still holds the lock — checked in the same statement —
  so a run whose lock was lost starts no new create. A key record is retried on a new
  connection for ``retry_for`` seconds, then ``StateError``: the caller keeps the key.
- ``save`` adds the entries (never overwrites: a name taken by another id is stored as
  "name (id)") and deletes exactly the journal rows this run read or wrote, but for the
  intents still in doubt (written again with their time), in one transaction: a row a
  stray run wrote meanwhile stays for the next fold. ``unjournalled`` names each key
  record that could not be committed (apply then writes it to the local secrets folder,
  else prints it sealed).

No plaintext key is ever sent to the database: a record or entry holding only a plain
key is refused (``StateError``) before any row is written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from mvsync.errors import LockError, StateError
from mvsync.model import Account
from mvsync.store import pg_accounts, pg_url
from mvsync.store.journal import KEY_EVENTS, JournalRecord
from mvsync.store.keys import SecretEntry, SecretsFile
from mvsync.store.pg_entries import Inserted, insert_entries, refuse_plain, refuse_unsealed, to_save
from mvsync.store.pg_lock import PgLock
from mvsync.store.pg_rows import ENTRY_COLUMNS, ledger_of, records_of
from mvsync.store.pg_schema import (
    ENVIRONMENT_LOCK_CLASS,
    Connection,
    current_version,
    ensure_schema,
    refuse_newer,
)
from mvsync.store.pg_session import PgSession
from mvsync.urls import account_url

T = TypeVar("T")

CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
RETRY_FOR = 5.0  # seconds a key record or the final save is retried on new connections

_LOCK_HELD = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 2 AND pid = %s)"
)


def redact_url(url: str) -> str:
    """``url`` as ``postgresql://USER@HOST:PORT/DB``, for messages (no secret of it)."""
    return pg_url.describe(url)


class PgStore(PgSession):
    """The PostgreSQL state of one environment; see the module docstring."""

    def __init__(
        self,
        url: str,
        environment: str,
        api_url: str,
        *,
        retry_for: float = RETRY_FOR,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(url, f"environment '{environment}': state_url", sleep)
        self.environment = environment
        self.api_url = api_url.rstrip("/")
        # The environment's row (its lock, its accounts) is keyed by one spelling of the URL.
        self.account_url = account_url(api_url)
        self.retry_for = retry_for
        self.run_id = uuid.uuid4()
        self._env_id: int | None = None
        # Whose ledger this run reads and writes (pg_accounts): set by identify().
        self._owner = Account()
        self._account_id: int | None = None
        self._legacy = False  # a reader of a database an older mvsync made (no accounts)
        self.lock_backend_pid: int | None = None
        self._seqs: set[int] = set()  # journal rows this run read or wrote
        self._lost: list[JournalRecord] = []  # key records that could not be committed
        self._stored: set[str] = set()  # entry names in the database at read()

    # --- the KeyStore interface --------------------------------------------------------

    @property
    def env_id(self) -> int:
        if self._env_id is None:
            self.check()
        assert self._env_id is not None
        return self._env_id

    def check(self) -> None:
        """Connect, create or migrate the tables, register the environment."""

        def work(connection: Connection) -> int:
            ensure_schema(connection, self.location)
            connection.execute(
                "INSERT INTO mvsync.environments (name, api_url) VALUES (%s, %s)"
                " ON CONFLICT (name, api_url) DO NOTHING",
                (self.environment, self.account_url),
            )
            row = connection.execute(
                "SELECT id FROM mvsync.environments WHERE name = %s AND api_url = %s",
                (self.environment, self.account_url),
            ).fetchone()
            assert row is not None
            return int(str(row[0]))

        self._env_id = self._run("cannot use the database", work)

    def identify(self, account: Account) -> None:
        """Whose ledger this run reads and writes (``pg_accounts``). Called again with
        more (a customer a create answer named), it records that on the account's row."""
        self._owner = Account(
            account.customer_id or self._owner.customer_id,
            account.fingerprint or self._owner.fingerprint,
            account.remote_ids if account.remote_ids is not None else self._owner.remote_ids,
        )
        if self._account_id is not None:
            account_id = self._account_id
            self._run(
                "cannot record the account",
                lambda c: pg_accounts.bind(c, account_id, self._owner),
                retry_for=self.retry_for,
            )

    @property
    def account_id(self) -> int:
        """The account row of this run (found or added: apply holds the lock)."""
        if self._account_id is None:
            env_id = self.env_id

            def work(connection: Connection) -> int:
                with connection.transaction():
                    return pg_accounts.claim(connection, env_id, self._owner)

            self._account_id = self._run("cannot use the database", work)
        return self._account_id

    def read_only(self) -> tuple[SecretsFile, list[JournalRecord]]:
        """The ledger and journal by SELECTs alone, for ``plan`` and ``keys list/show``:
        nothing is created, migrated or registered (a role that may only SELECT reads it),
        and a database without the schema or without this environment is an empty ledger."""

        def work(connection: Connection) -> tuple[int, int | None, bool] | None:
            version = current_version(connection)
            refuse_newer(version, self.location)
            if version == 0:
                return None
            row = connection.execute(
                "SELECT id FROM mvsync.environments WHERE name = %s AND api_url = %s",
                (self.environment, self.account_url),
            ).fetchone()
            if row is None:
                return None
            env_id = int(str(row[0]))
            if version < 2:  # not migrated yet: one ledger per environment, read as it is
                return env_id, None, True
            return env_id, self._account_to_read(connection, env_id), False

        found = self._run("cannot read the ledger", work)
        if found is None or (found[1] is None and not found[2]):
            return SecretsFile(environment=self.environment, api_url=self.api_url), []
        self._env_id, self._account_id, self._legacy = found
        return self.read()

    def _account_to_read(self, connection: Connection, env_id: int) -> int | None:
        """The account row a reader reads (``pg_accounts.locate``), None when it has none."""
        try:
            return pg_accounts.locate(connection, env_id, self._owner)
        except StateError as error:
            raise StateError(f"environment '{self.environment}': {error}") from None

    def _owned(self) -> tuple[str, int]:
        """The column and value that select this run's rows of entries and journal."""
        if self._legacy:
            return "env_id", self.env_id
        return "account_id", self.account_id

    def lock(self, *, timeout: float, command: str) -> PgLock:
        return PgLock(self, timeout=timeout, command=command, sleep=self._sleep)

    def read(self) -> tuple[SecretsFile, list[JournalRecord]]:
        column, owner = self._owned()

        def work(connection: Connection) -> tuple[list[tuple[object, ...]], ...]:
            with connection.transaction():  # one snapshot for both
                entries = connection.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM mvsync.entries e"
                    f" WHERE {column} = %s ORDER BY stored_at, name",
                    (owner,),
                ).fetchall()
                rows = connection.execute(
                    "SELECT seq, event, name, app_id, sealed_api_key, created_at, ts"
                    f" FROM mvsync.journal WHERE {column} = %s ORDER BY seq",
                    (owner,),
                ).fetchall()
            return entries, rows

        entries, rows = self._run("cannot read the ledger", work)
        ledger = ledger_of(entries, self.environment, self.api_url, self.location)
        self._stored = set(ledger.applications)
        leftover = []
        for seq, record in records_of(rows):
            self._seqs.add(seq)
            leftover.append(record)
        return ledger, leftover

    def has_journal(self) -> bool:
        column, owner = self._owned()
        row = self._run(
            "cannot read the journal",
            lambda c: c.execute(
                f"SELECT EXISTS (SELECT 1 FROM mvsync.journal WHERE {column} = %s)", (owner,)
            ).fetchone(),
        )
        return bool(row and row[0])

    def journal(self) -> PgJournal:
        return PgJournal(self)

    def append(self, record: JournalRecord) -> None:
        """Commit ``record``; see the module docstring for intents and key records."""
        env_id, account_id = self.env_id, self.account_id
        if record.event in KEY_EVENTS and record.sealed_api_key is None:
            raise refuse_plain(record.name, self.location)
        if record.event == "intent":
            holder = self.lock_backend_pid
            if holder is None:
                raise LockError(f"{self.location}: an intent needs the environment's lock")

            def intent(connection: Connection) -> object:
                return connection.execute(
                    "INSERT INTO mvsync.journal (env_id, account_id, event, name, ts, run_id)"
                    " SELECT %s, %s, 'intent', %s,"
                    " COALESCE(%s::timestamptz, clock_timestamp()), %s"
                    f" WHERE {_LOCK_HELD} RETURNING seq",
                    (
                        env_id,
                        account_id,
                        record.name,
                        record.ts,
                        self.run_id,
                        ENVIRONMENT_LOCK_CLASS,
                        env_id,
                        holder,
                    ),
                ).fetchone()

            row = self._run("cannot record an intent (no new create starts)", intent)
            if row is None:
                raise LockError(
                    f"{self.location}: this apply lost the lock of environment "
                    f"'{self.environment}' (its database session ended); no new create starts"
                )
        else:
            try:
                row = self._run(
                    f"cannot store the {record.event} record of '{record.name}'",
                    lambda c: self._insert_record(c, record),
                    retry_for=self.retry_for,
                )
            except StateError:
                if record.event in KEY_EVENTS:
                    with self._guard:
                        self._lost.append(record)
                raise
        assert isinstance(row, tuple)
        with self._guard:
            self._seqs.add(int(str(row[0])))

    def unjournalled(self, records: list[JournalRecord]) -> list[JournalRecord]:
        """The key records of ``records`` this run could not commit to ``mvsync.journal``
        (each append is its own transaction: the others are durable). Called once the
        appends are over."""
        return [r for r in records if r in self._lost]

    def save(self, ledger: SecretsFile, pending: list[JournalRecord] | None = None) -> None:
        """Add the new entries, then delete the journal rows this run read or wrote but for
        ``pending`` (intents in doubt, written again with their time), in one transaction."""
        new = [(n, e) for n, e in ledger.applications.items() if to_save(n, e, self._stored)]
        refuse_unsealed(new, self.location)
        with self._guard:
            seqs = sorted(self._seqs)

        owner = (self.env_id, self.account_id)

        def work(connection: Connection) -> list[int]:
            with connection.transaction():
                insert_entries(connection, owner, new)
                connection.execute(
                    "DELETE FROM mvsync.journal WHERE account_id = %s AND seq = ANY(%s)",
                    (owner[1], seqs),
                )
                kept = [self._insert_record(connection, r) for r in pending or ()]
            return [int(str(row[0])) for row in kept if row is not None]

        kept = self._run("cannot store the ledger", work, retry_for=self.retry_for)
        self._stored.update(name for name, _ in new)
        with self._guard:
            self._seqs.difference_update(seqs)
            self._seqs.update(kept)

    def _insert_record(
        self, connection: Connection, record: JournalRecord
    ) -> tuple[object, ...] | None:
        return connection.execute(
            "INSERT INTO mvsync.journal (env_id, account_id, event, name, app_id,"
            " sealed_api_key, created_at, ts, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " COALESCE(%s::timestamptz, clock_timestamp()), %s) RETURNING seq",
            (
                self.env_id,
                self.account_id,
                record.event,
                record.name,
                record.app_id,
                record.sealed_api_key,
                record.created_at,
                record.ts,
                self.run_id,
            ),
        ).fetchone()

    # --- beyond the interface: state push ----------------------------------------------

    def add_entries(self, entries: Iterable[tuple[str, SecretEntry]]) -> Inserted:
        """Add entries whose id the database does not hold yet, and fill in the keys of
        those it holds as "key not captured" (the journal untouched)."""
        wanted = list(entries)
        refuse_unsealed(wanted, self.location)

        owner = (self.env_id, self.account_id)

        def work(connection: Connection) -> Inserted:
            with connection.transaction():
                return insert_entries(connection, owner, wanted)

        return self._run("cannot store the entries", work, retry_for=self.retry_for)


class PgJournal:
    """The journal sink of one run: each ``append`` committed when it returns."""

    def __init__(self, store: PgStore) -> None:
        self._store = store

    def append(self, record: JournalRecord) -> None:
        self._store.append(record)

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None
