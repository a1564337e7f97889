"""The emulator's data: customers, applications, issued keys, and the state file.

Customers are not stored: a seeded key (``--api-key``) maps to a customer id derived
from a hash of the key, so the same key finds the same applications after a restart
without the seeded key ever being written to disk. An issued key (``mv_live_...``)
authenticates as the customer of the application it was issued with.

The state file is an append-only log of JSON lines, one per created application,
written with one ``os.write`` per create (so a ``kill -9`` loses at most the create
in flight, never an earlier one). On load, a torn or corrupt *last* line is dropped
and cut off the file; a corrupt line before it is an error. The file holds issued
keys and webhook secrets, so it is created with mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvsync.emulator.errors import EmulatorError
from mvsync.files import MIB, UnreadableFileError, read_bounded

RECORD_VERSION = 1
MAX_STATE_BYTES = 256 * MIB
_NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class StoredApp:
    """One application as the emulator keeps it, secrets included."""

    id: str
    customer_id: str
    name: str
    answer_url: str
    webhook_url: str | None
    webhook_secret: str | None
    api_key: str
    created_at: str

    def listed(self) -> dict[str, Any]:
        """The application as ``GET /v1/applications`` shows it: no key, no secret."""
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "name": self.name,
            "answer_url": self.answer_url,
            "webhook_url": self.webhook_url,
            "created_at": self.created_at,
        }

    def created(self) -> dict[str, Any]:
        """The answer to the create: the only time ``api_key`` is shown (before
        ``created_at``, as the API page's example has it)."""
        listed = self.listed()
        created_at = listed.pop("created_at")
        return {**listed, "api_key": self.api_key, "created_at": created_at}

    def record(self) -> dict[str, Any]:
        """The state-file record (secrets included: the file is 0600)."""
        return {"v": RECORD_VERSION, "kind": "app", **asdict(self)}

    @classmethod
    def from_record(cls, record: Any) -> StoredApp:
        if not isinstance(record, dict) or record.get("kind") != "app":
            raise ValueError("not an application record")
        values = {name: record[name] for name in cls.__dataclass_fields__}
        for required in ("id", "customer_id", "name", "answer_url", "api_key", "created_at"):
            if not isinstance(values[required], str):
                raise ValueError(f"{required} is not a string")
        for optional in ("webhook_url", "webhook_secret"):
            if values[optional] is not None and not isinstance(values[optional], str):
                raise ValueError(f"{optional} is not a string")
        if app_id_ns(values["id"]) is None:
            raise ValueError("malformed id")
        return cls(**values)


def app_id_for(ns: int) -> str:
    """``app_20260529T120000.000000000`` for a UTC time in nanoseconds since the epoch."""
    seconds, nanos = divmod(ns, _NS_PER_SECOND)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%S")
    return f"app_{stamp}.{nanos:09d}"


def app_id_ns(app_id: str) -> int | None:
    """The nanoseconds an id was made from, or ``None`` when it is not such an id."""
    stamp, dot, nanos = app_id.removeprefix("app_").partition(".")
    if not app_id.startswith("app_") or not dot or len(nanos) != 9 or not nanos.isdigit():
        return None
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp()) * _NS_PER_SECOND + int(nanos)


def created_at_for(ns: int) -> str:
    """RFC 3339 UTC to the second, as the seed shows: ``2026-05-29T12:00:00Z``."""
    return datetime.fromtimestamp(ns // _NS_PER_SECOND, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def customer_id_for_key(api_key: str) -> str:
    """The customer a seeded key stands for: stable across restarts, reveals nothing usable."""
    return "cust_" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def issue_key() -> str:
    return "mv_live_" + secrets.token_urlsafe(24)


class StateLog:
    """The append-only JSON-lines file behind ``--state``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def load(self) -> list[StoredApp]:
        """Every application recorded, in creation order; repairs a torn last line."""
        try:
            data = read_bounded(self.path, MAX_STATE_BYTES)  # a FIFO or a device: refused
        except FileNotFoundError:
            return []
        except UnreadableFileError as exc:
            raise EmulatorError(f"cannot read state file {self.path}: {exc.reason}") from None
        lines = data.split(b"\n")
        last_content = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        apps: list[StoredApp] = []
        good_end = 0
        offset = 0
        for index, line in enumerate(lines):
            end = min(offset + len(line) + 1, len(data))
            offset += len(line) + 1
            if not line.strip():
                continue
            try:
                apps.append(StoredApp.from_record(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                if index != last_content:
                    raise EmulatorError(
                        f"{self.path}:{index + 1}: not an emulator state record ({exc})"
                    ) from exc
                # A create torn by a crash: it was never answered, so drop it.
                break
            good_end = end
        if good_end < len(data):
            self._cut(good_end)
        if good_end and not data[:good_end].endswith(b"\n"):
            # A whole record without its newline: finish the line so the next append
            # starts a line of its own.
            self.append_raw(b"\n")
        return apps

    def _cut(self, size: int) -> None:
        try:
            os.truncate(self.path, size)
        except OSError as exc:
            raise EmulatorError(f"cannot repair state file {self.path}: {exc.strerror}") from exc

    def append(self, app: StoredApp) -> None:
        self.append_raw((json.dumps(app.record(), separators=(",", ":")) + "\n").encode("utf-8"))

    def append_raw(self, line: bytes) -> None:
        # One write of the whole line (looping only on a short write): a crash
        # leaves at most this one line torn.
        fd = self.open()
        view = memoryview(line)
        try:
            size_before = os.fstat(fd).st_size
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            # Disk full or the like: take back a partial line so the log stays readable.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size_before)
            raise EmulatorError(f"cannot write state file {self.path}: {exc.strerror}") from exc

    def open(self) -> int:
        """Open (creating it 0600, or making it 0600) for appending; idempotent."""
        if self._fd is None:
            try:
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
                )
                os.fchmod(fd, 0o600)
            except OSError as exc:
                raise EmulatorError(f"cannot open state file {self.path}: {exc.strerror}") from exc
            self._fd = fd
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Store:
    """Customers and applications, safe to use from many request threads."""

    def __init__(
        self,
        api_keys: tuple[str, ...] = (),
        state_file: Path | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._customer_of_key: dict[str, str] = {}
        self._apps_of_customer: dict[str, list[StoredApp]] = {}
        self._app_by_id: dict[str, StoredApp] = {}
        self._last_ns = 0
        for api_key in api_keys:
            self.add_customer(api_key)
        self._log = StateLog(state_file) if state_file is not None else None
        if self._log is not None:
            for app in self._log.load():
                self._remember(app)
                self._last_ns = max(self._last_ns, app_id_ns(app.id) or 0)
            self._log.open()  # an unwritable path fails now, not at the first create

    def add_customer(self, api_key: str) -> str:
        """Accept ``api_key`` as the bearer of one customer; returns its id."""
        if not api_key:
            raise EmulatorError("an API key cannot be empty")
        customer_id = customer_id_for_key(api_key)
        with self._lock:
            self._customer_of_key[api_key] = customer_id
            self._apps_of_customer.setdefault(customer_id, [])
        return customer_id

    def customer_of(self, api_key: str) -> str | None:
        return self._customer_of_key.get(api_key)

    def create(
        self,
        customer_id: str,
        *,
        name: str,
        answer_url: str,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> StoredApp:
        with self._lock:
            # Unique and increasing even when two creates share a nanosecond.
            ns = max(self._clock(), self._last_ns + 1)
            app = StoredApp(
                id=app_id_for(ns),
                customer_id=customer_id,
                name=name,
                answer_url=answer_url,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                api_key=issue_key(),
                created_at=created_at_for(ns),
            )
            if self._log is not None:
                self._log.append(app)  # on disk (in the OS) before anyone sees it
            self._last_ns = ns
            self._remember(app)
        return app

    def _remember(self, app: StoredApp) -> None:
        self._apps_of_customer.setdefault(app.customer_id, []).append(app)
        self._app_by_id[app.id] = app
        self._customer_of_key[app.api_key] = app.customer_id

    def apps_of(self, customer_id: str) -> list[StoredApp]:
        with self._lock:
            return list(self._apps_of_customer.get(customer_id, ()))

    def app(self, app_id: str) -> StoredApp | None:
        return self._app_by_id.get(app_id)

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
