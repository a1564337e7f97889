"""The tables of the PostgreSQL state (SPEC section 5.4), created and migrated on first use.

Everything lives in the schema ``mvsync``; docs/state.md documents each table. The
schema's version is recorded in ``mvsync.schema_version`` (one row per migration
applied). A database whose version is newer than this mvsync knows is refused: an
older mvsync must not write rows whose meaning has changed under it.

Two runners may meet an empty database at the same moment: the migration runs in one
transaction under an advisory lock, so one creates the tables and the other finds them.
"""

from __future__ import annotations

import psycopg

from mvsync.errors import StateError

Connection = psycopg.Connection[tuple[object, ...]]

SCHEMA = "mvsync"
# The version this mvsync writes; MIGRATIONS[n - 1] brings a database from n - 1 to n.
SCHEMA_VERSION = 3
# The advisory lock key of the migration (two int4: "mv" and "schema").
MIGRATION_LOCK = (0x6D76, 0x5C4E)
# The first int4 of every environment's session lock; the second is the environment's id.
ENVIRONMENT_LOCK_CLASS = 0x6D76

ARMOR_PREFIX = "-----BEGIN AGE ENCRYPTED FILE-----"

_V1 = (
    """
    CREATE TABLE mvsync.environments (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name       text NOT NULL,
        api_url    text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (name, api_url)
    )
    """,
    f"""
    CREATE TABLE mvsync.entries (
        env_id         bigint NOT NULL REFERENCES mvsync.environments (id),
        name           text NOT NULL,
        app_id         text NOT NULL,
        sealed_api_key text,
        created_at     text,
        key_captured   boolean NOT NULL,
        stored_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (env_id, name),
        UNIQUE (env_id, app_id),
        CHECK (key_captured = (sealed_api_key IS NOT NULL)),
        CHECK (sealed_api_key IS NULL OR starts_with(sealed_api_key, '{ARMOR_PREFIX}'))
    )
    """,
    f"""
    CREATE TABLE mvsync.journal (
        seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        env_id         bigint NOT NULL REFERENCES mvsync.environments (id),
        event          text NOT NULL
                       CHECK (event IN ('intent', 'created', 'not_captured', 'settled')),
        name           text NOT NULL,
        app_id         text,
        sealed_api_key text,
        created_at     text,
        ts             timestamptz NOT NULL DEFAULT clock_timestamp(),
        run_id         uuid NOT NULL,
        CHECK ((event = 'created') = (sealed_api_key IS NOT NULL)),
        CHECK ((event IN ('intent', 'settled')) = (app_id IS NULL)),
        CHECK (sealed_api_key IS NULL OR starts_with(sealed_api_key, '{ARMOR_PREFIX}'))
    )
    """,
    "CREATE INDEX journal_env ON mvsync.journal (env_id, seq)",
    """
    CREATE TABLE mvsync.locks (
        env_id      bigint PRIMARY KEY REFERENCES mvsync.environments (id),
        host        text NOT NULL,
        pid         integer NOT NULL,
        started     timestamptz NOT NULL,
        command     text NOT NULL,
        backend_pid integer NOT NULL
    )
    """,
)

# Version 2: state per account (SPEC 5.4). Entries and journal rows belong to an account
# row of their environment; a version-1 database's rows move to one row per environment
# whose customer is not known yet, which the first run of that account claims
# (mvsync.store.pg_accounts).
_V2 = (
    """
    CREATE TABLE mvsync.accounts (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        env_id          bigint NOT NULL REFERENCES mvsync.environments (id),
        customer_id     text,
        key_fingerprint text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (env_id, customer_id)
    )
    """,
    "INSERT INTO mvsync.accounts (env_id) SELECT id FROM mvsync.environments ORDER BY id",
    *(
        statement
        for table in ("entries", "journal")
        for statement in (
            f"ALTER TABLE mvsync.{table}"
            " ADD COLUMN account_id bigint REFERENCES mvsync.accounts (id)",
            f"UPDATE mvsync.{table} AS t SET account_id = a.id"
            " FROM mvsync.accounts AS a WHERE a.env_id = t.env_id",
            f"ALTER TABLE mvsync.{table} ALTER COLUMN account_id SET NOT NULL",
        )
    ),
    "ALTER TABLE mvsync.entries DROP CONSTRAINT entries_pkey, ADD PRIMARY KEY (account_id, name)",
    "ALTER TABLE mvsync.entries DROP CONSTRAINT entries_env_id_app_id_key,"
    " ADD UNIQUE (account_id, app_id)",
    "DROP INDEX mvsync.journal_env",
    "CREATE INDEX journal_account ON mvsync.journal (account_id, seq)",
)


def _delivery_step() -> tuple[str, ...]:
    """Version 3, key sinks and keys added by hand (SPEC 5.5, 5.3): each entry records when
    the sink took its key and the keys ``keys add --replace`` replaced (``history``, a JSON
    array of ``{"sealed_api_key", "created_at", "replaced_at"}``); the journal may say a
    key was delivered (``delivered``) or added (``added``, which holds a sealed key)."""
    return (
        "ALTER TABLE mvsync.entries ADD COLUMN delivered_at timestamptz",
        "ALTER TABLE mvsync.entries ADD COLUMN history jsonb NOT NULL DEFAULT '[]'::jsonb",
        "ALTER TABLE mvsync.journal DROP CONSTRAINT journal_event_check",
        "ALTER TABLE mvsync.journal ADD CONSTRAINT journal_event_check CHECK"
        " (event IN ('intent', 'created', 'not_captured', 'settled', 'delivered', 'added'))",
        # Version 1's unnamed "a key exactly in created records", found by what it says.
        """
        DO $$
        DECLARE old text;
        BEGIN
            SELECT conname INTO STRICT old FROM pg_constraint
            WHERE conrelid = 'mvsync.journal'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid)
                  LIKE '%''created''::text) = (sealed_api_key IS NOT NULL)%';
            EXECUTE format('ALTER TABLE mvsync.journal DROP CONSTRAINT %I', old);
        END $$
        """,
        "ALTER TABLE mvsync.journal ADD CONSTRAINT journal_key_check CHECK"
        " ((event IN ('created', 'added')) = (sealed_api_key IS NOT NULL))",
    )


MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _delivery_step())
assert len(MIGRATIONS) == SCHEMA_VERSION


def current_version(connection: Connection) -> int:
    """The recorded version; 0 for a database without our schema."""
    row = connection.execute("SELECT to_regclass('mvsync.schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    version = connection.execute("SELECT max(version) FROM mvsync.schema_version").fetchone()
    return int(str(version[0])) if version and version[0] is not None else 0


def refuse_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{where}: the mvsync tables are at schema version {version}, newer than this "
            f"mvsync knows ({SCHEMA_VERSION}): a newer mvsync uses this database; upgrade "
            "mvsync (nothing was changed)"
        )


def ensure_schema(connection: psycopg.Connection[tuple[object, ...]], where: str) -> None:
    """Create or migrate the tables to ``SCHEMA_VERSION``; refuse a newer schema.

    ``connection`` is in autocommit mode; the migration is one transaction.
    """
    version = current_version(connection)
    refuse_newer(version, where)
    if version == SCHEMA_VERSION:
        return
    # A session lock taken in a statement of its own: the transaction after it starts
    # fresh, so its catalog caches see the tables another runner committed meanwhile (a
    # transaction-level lock taken inside the migration's transaction would not).
    connection.execute("SELECT pg_advisory_lock(%s, %s)", MIGRATION_LOCK)
    try:
        with connection.transaction():
            version = current_version(connection)  # another runner may have migrated meanwhile
            refuse_newer(version, where)
            if version == 0:
                connection.execute("CREATE SCHEMA IF NOT EXISTS mvsync")
                connection.execute(
                    "CREATE TABLE mvsync.schema_version ("
                    " version integer PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now(),"
                    " mvsync_version text NOT NULL)"
                )
            from mvsync import __version__

            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO mvsync.schema_version (version, mvsync_version) VALUES (%s, %s)",
                    (number, __version__),
                )
    finally:
        if not connection.broken:
            connection.execute("SELECT pg_advisory_unlock(%s, %s)", MIGRATION_LOCK)
