"""A real, throwaway PostgreSQL server for the tests (``pg_server`` in conftest.py).

``initdb`` + ``pg_ctl`` from Debian's server packages (``/usr/lib/postgresql/<ver>/bin``,
installed by ``.ci/run``), in a fresh folder under the system temp dir:

- it listens on a Unix socket only, in its own socket folder (``listen_addresses = ''``):
  no TCP port, nothing another process on the machine can collide with;
- ``trust`` authentication, superuser ``postgres``;
- durability as in production: ``fsync``, ``synchronous_commit`` and
  ``full_page_writes`` stay at their defaults (on). Only ``initdb --no-sync`` is used,
  which skips syncing the fresh, throwaway cluster's files once at creation (about a
  third of the start-up); the server syncs everything it writes from then on, and
  syncs the whole data folder itself before recovering from a crash (``stop("immediate")``);
- PostgreSQL refuses to run as root, and CI runs as root: then every server binary runs
  as the ``postgres`` user (``runuser -u postgres --``), in a folder chowned to it. Client
  connections (tests, mvsync subprocesses) may come from any user: auth is ``trust``.

Connect with ``server.dsn(dbname)``, a ``postgresql://`` URL (what ``state_url`` takes);
``server.create_database()`` gives each test its own database.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
SERVER_USER = "postgres"  # the OS user the server runs as when we are root
PORT = 5432  # names the socket file only: no TCP listener exists


def find_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def why_unavailable() -> str | None:
    """Why no server can be started here (a skip reason), or None when one can."""
    if find_bindir() is None:
        return (
            "no PostgreSQL server binaries (initdb, pg_ctl); install Debian's "
            "'postgresql' package (.ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is missing (util-linux)"
    return None


class PgServerError(RuntimeError):
    """A server command failed; carries its output (a throwaway test cluster holds no secret)."""


class PgServer:
    """One PostgreSQL cluster in its own temp folder; ``start()`` after ``init()``."""

    def __init__(self, bindir: Path, root: Path | None = None) -> None:
        self.bindir = bindir
        self._as_server_user = os.geteuid() == 0
        if root is None:
            # As root, under /tmp (not $TMPDIR): the server user must reach every parent.
            parent = "/tmp" if self._as_server_user else None
            root = Path(tempfile.mkdtemp(prefix="mvsync-pg-", dir=parent))
        self.root = root
        self.data_dir = root / "data"
        self.socket_dir = root / "socket"
        self.log_file = root / "server.log"
        self.port = PORT
        self.init_seconds = 0.0
        self.start_seconds = 0.0
        if self._as_server_user:
            # mkdtemp made it 0700 root; /tmp itself is traversable by everyone.
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)

    # -- running server binaries -------------------------------------------------------

    def _command(self, name: str, *args: str) -> list[str]:
        command = [str(self.bindir / name), *args]
        if self._as_server_user:
            return ["runuser", "-u", SERVER_USER, "--", *command]
        return command

    def _run(self, name: str, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            self._command(name, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        if result.returncode != 0:
            log = ""
            if self.log_file.exists():
                log = self.log_file.read_text(errors="replace")[-4000:]
            raise PgServerError(
                f"{name} {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\n--- server log ---\n{log}"
            )
        return result.stdout

    # -- life cycle ----------------------------------------------------------------------

    def init(self) -> None:
        """``initdb`` a fresh cluster that listens on its own Unix socket only."""
        started = time.monotonic()
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        self._mkdir_for_server(self.socket_dir)
        settings = (
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"port = {self.port}\n"
            "max_connections = 200\n"
        )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\n# tests/pgserver.py\n" + settings)
        self.init_seconds = time.monotonic() - started

    def _mkdir_for_server(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        if self._as_server_user:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # Clients of any user reach the socket (trust auth decides, not the mode).
        path.chmod(0o755)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        started = time.monotonic()
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--wait",
            "--timeout",
            "120",
        )
        self.start_seconds = time.monotonic() - started

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (sessions ended, clean) or ``immediate`` (as a crash)."""
        if not self.is_running():
            return
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait")

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            self._command("pg_ctl", "status", "--pgdata", str(self.data_dir)),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        """Stop at once (``immediate``) and remove every file of the cluster."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- connecting ----------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL to ``dbname`` over the Unix socket, e.g. for ``state_url``."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={self.port}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (a fresh name unless given); returns its ``dsn``."""
        import psycopg
        from psycopg import sql

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def kill_connections(self, dbname: str | None = None) -> int:
        """Terminate every client backend (of ``dbname``, or all) but the caller's; how many."""
        import psycopg

        query = (
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        params: tuple[str, ...] = ()
        if dbname is not None:
            query += " AND datname = %s"
            params = (dbname,)
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            row = connection.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    def pg_dump(self, dbname: str) -> str:
        """``pg_dump`` of ``dbname`` as SQL text (to scan it for plaintext keys)."""
        return self._run(
            "pg_dump",
            "--host",
            str(self.socket_dir),
            "--port",
            str(self.port),
            "--username",
            SUPERUSER,
            "--no-password",
            dbname,
        )
