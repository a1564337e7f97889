"""The values that flow between mvsync's steps.

manifest file → ``DesiredEnvironment`` (mvsync.manifest) → ``RemoteApp`` list
(mvsync.api.client) → ``Plan`` (mvsync.planner) → apply (mvsync.apply.run).

These are plain, frozen values with no I/O. ``RemoteApp`` is a pydantic model
because it is parsed from API answers; the desired side is already validated by
the manifest loader and is kept as frozen dataclasses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from mvsync.errors import MvsyncError

DEFAULT_API_URL = "https://api.minivoice.eu"
DEFAULT_API_KEY_ENV = "MINIVOICE_API_KEY"

# The application fields mvsync compares with the remote list. webhook_secret is
# write-only in the API, so it can never be compared (SPEC section 1).
COMPARED_FIELDS: tuple[str, ...] = ("answer_url", "webhook_url")


@dataclass(frozen=True)
class DesiredApp:
    """One application as the manifest wants it in one environment.

    Every ``${}`` of ``name``, ``answer_url`` and ``webhook_url`` is already
    expanded. ``webhook_secret_ref`` is the *unexpanded* template (for example
    ``${MV_WEBHOOK_SECRET}``): literal secrets are refused by the loader, so the
    template is never itself a secret, and it is only expanded by apply, right
    before the create that sends it (``mvsync.manifest.expand_secret``).
    """

    name: str
    answer_url: str
    webhook_url: str | None = None
    webhook_secret_ref: str | None = None

    def compared(self) -> dict[str, str | None]:
        """The fields compared with the remote list, ``None`` for unset."""
        return {"answer_url": self.answer_url, "webhook_url": self.webhook_url or None}


@dataclass(frozen=True)
class DesiredEnvironment:
    """One environment of the manifest, resolved."""

    name: str
    api_url: str
    api_key_env: str
    secrets_path: Path
    apps: tuple[DesiredApp, ...]
    # age X25519 public keys every new key is sealed to (SPEC 5.2); empty: plain keys.
    recipients: tuple[str, ...] = ()
    # The ${} template of the PostgreSQL state (SPEC 5.4), expanded where it is used.
    state_url: str | None = None
    # The program each new key is handed to (SPEC 5.5); None: the key stays in the ledger.
    key_sink: KeySink | None = None


# The placeholders a key_sink argument may hold (SPEC 2), filled per application.
SINK_PLACEHOLDERS: tuple[str, ...] = ("name", "slug", "id", "environment")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_SLUG = re.compile(r"[^A-Z0-9]+")


def slug(name: str) -> str:
    """``Night Shift / Overflow`` → ``NIGHT_SHIFT_OVERFLOW``: upper case, every run of
    characters other than A-Z and 0-9 one ``_``, none at either end."""
    return _NOT_SLUG.sub("_", name.upper()).strip("_")


@dataclass(frozen=True)
class KeySink:
    """A ``key_sink`` with its ``${}`` expanded: per argument, its parts, literal text at
    even positions and a placeholder name at odd ones (a variable's value is literal:
    ``{name}`` inside it is not filled). Filled per application by ``fill``."""

    args: tuple[tuple[str, ...], ...]
    env_names: tuple[str, ...] = ()

    @property
    def program(self) -> str:
        return self.args[0][0]

    def fill(self, name: str, app_id: str, environment: str) -> tuple[str, ...]:
        """The argv for one application."""
        values = {"name": name, "slug": slug(name), "id": app_id, "environment": environment}
        return tuple(
            "".join(values[part] if odd else part for odd, part in _alternating(arg))
            for arg in self.args
        )

    def dash_made(self, name: str, app_id: str, environment: str) -> int | None:
        """The index of an argument that a placeholder makes start with ``-`` (it would
        read as an option), or ``None``."""
        filled = self.fill(name, app_id, environment)
        for index, arg in enumerate(self.args):
            if len(arg) > 1 and arg[0] == "" and filled[index].startswith("-"):
                return index
        return None

    def as_written(self) -> str:
        """The argv with its placeholders, for plans: ``gh secret set MINIVOICE_KEY_{slug}``."""
        return " ".join(
            "".join(f"{{{part}}}" if odd else part for odd, part in _alternating(arg))
            for arg in self.args
        )


def _alternating(parts: tuple[str, ...]) -> list[tuple[bool, str]]:
    return [(index % 2 == 1, part) for index, part in enumerate(parts)]


def split_placeholders(text: str) -> tuple[str, ...]:
    """``MINIVOICE_KEY_{slug}`` → ``("MINIVOICE_KEY_", "slug", "")`` (see ``KeySink``);
    an unknown ``{word}`` stays literal (the manifest refuses it)."""
    parts: list[str] = []
    literal: list[str] = []
    index = 0
    for match in PLACEHOLDER.finditer(text):
        if match.group(1) not in SINK_PLACEHOLDERS:
            continue
        literal.append(text[index : match.start()])
        parts.extend(["".join(literal), match.group(1)])
        literal = []
        index = match.end()
    literal.append(text[index:])
    parts.append("".join(literal))
    return tuple(parts)


def utc_stamp(timespec: Literal["seconds", "microseconds"] = "seconds") -> str:
    """Now, as the RFC 3339 UTC text mvsync writes everywhere (``2026-05-29T12:00:00Z``)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


# The HMAC key of an account's fingerprint: a fixed label, so the fingerprint is the
# same on every machine yet is no plain hash of the key (nothing to look up elsewhere).
_FINGERPRINT_LABEL = b"mvsync account fingerprint v1"


def key_fingerprint(api_key: str) -> str:
    """A one-way fingerprint of an API key (SPEC 5.4): recognises an account before it has
    an application, never reveals the key."""
    digest = hmac.new(_FINGERPRINT_LABEL, api_key.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class Account:
    """What a run knows of the MiniVoice account behind an environment: whose ledger in a
    shared database is its own (SPEC 5.4). Every part may be unknown: an account with no
    application lists no ``customer_id``; ``keys list`` may run without the API key."""

    customer_id: str | None = None
    fingerprint: str | None = None
    # The ids the list showed (None: not listed), to claim a ledger older than accounts.
    remote_ids: frozenset[str] | None = None

    @classmethod
    def of(cls, api_key: str | None, remote: Iterable[RemoteApp] | None = None) -> Account:
        apps = None if remote is None else list(remote)
        customers = sorted({app.customer_id for app in apps or ()})
        if len(customers) > 1:
            raise MvsyncError(
                f"the list of applications names {len(customers)} customer ids, not one: "
                "an API key lists its own account only; nothing was changed"
            )
        return cls(
            customers[0] if customers else None,
            None if not api_key else key_fingerprint(api_key),
            None if apps is None else frozenset(app.id for app in apps),
        )


@dataclass(frozen=True)
class LedgerPlace:
    """Where one environment's key ledger is (SPEC 5.3): all ``mvsync keys`` needs.

    Resolved leniently (``mvsync.manifest.resolve_ledger_place``): only the variables of
    ``secrets_file`` must be set; ``api_url`` is ``None`` when its own are not.
    """

    environment: str
    secrets_path: Path
    api_url: str | None = None
    recipients: tuple[str, ...] = ()
    state_url: str | None = None
    # The variable of the API key: with a shared database, it tells whose ledger is read.
    api_key_env: str | None = None

    @classmethod
    def of(cls, desired: DesiredEnvironment) -> LedgerPlace:
        return cls(
            desired.name,
            desired.secrets_path,
            desired.api_url,
            desired.recipients,
            desired.state_url,
            desired.api_key_env,
        )


class RemoteApp(BaseModel):
    """One application as ``GET /v1/applications`` lists it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    customer_id: str
    name: str
    answer_url: str
    webhook_url: str | None = None
    created_at: str

    def compared(self) -> dict[str, str | None]:
        """The fields compared with the manifest, ``None`` for unset or empty."""
        return {"answer_url": self.answer_url, "webhook_url": self.webhook_url or None}


class CreateRequest(BaseModel):
    """The body of ``POST /v1/applications``."""

    model_config = ConfigDict(frozen=True)

    name: str
    answer_url: str
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    def body(self) -> dict[str, str]:
        """The JSON body to send, secret included, unset fields left out."""
        body = {"name": self.name, "answer_url": self.answer_url}
        if self.webhook_url:
            body["webhook_url"] = self.webhook_url
        if self.webhook_secret is not None:
            body["webhook_secret"] = self.webhook_secret.get_secret_value()
        return body


class CreatedApp(RemoteApp):
    """The answer to a create: the listed fields and, the only time it is shown, the key."""

    api_key: SecretStr
