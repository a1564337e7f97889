"""What an apply is told (``ApplySettings``), whom it tells (``Reporter``), what it returns.

Values only: imported by ``run`` and ``create_once`` alike, importing neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mvsync.errors import MvsyncError
from mvsync.planner import Change, EnvironmentPlan
from mvsync.sink import SinkRunner

if TYPE_CHECKING:
    from mvsync.api.client import MiniVoiceClient

NOT_CAPTURED_ADVICE = "created, key not captured — issue a new key in MiniVoice"
# The id stored with a key whose create answer held no usable id (and the list none either).
UNKNOWN_ID_PREFIX = "unknown-"


@dataclass(frozen=True)
class ApplySettings:
    """How one apply behaves; the CLI fills it from flags and MVSYNC_* variables."""

    concurrency: int = 4
    max_creates: int | None = None
    lock_timeout: float = 0.0
    command: str = "mvsync apply"
    # After a POST whose outcome is unknown: wait, then list, before deciding.
    unknown_wait: float = 0.5
    # A create whose outcome was unknown is POSTed again only once a list made this long
    # after it still lacks it (a list can lag behind creates); None: the confirm deadline.
    lag_window: float | None = None
    # How long a failed write of the journal or the secrets file is retried.
    store_retry: float = 5.0
    # Listing until every new application is visible (the seed's test procedure).
    confirm_deadline: float = 30.0
    confirm_backoff: float = 0.2
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    # The environment's key sink (SPEC 5.5): each new key is handed to it once stored.
    sink: SinkRunner | None = field(default=None, compare=False)
    # A client with another bearer, to vouch for a key a secrets file holds before the
    # sink gets it (``apply/verify.py``); None: such a key is not handed on.
    client_for: Callable[[str], MiniVoiceClient] | None = field(default=None, compare=False)

    @property
    def doubt_window(self) -> float:
        """Seconds a create in doubt waits for the list before it may be sent again."""
        return self.confirm_deadline if self.lag_window is None else self.lag_window


class Reporter(Protocol):
    """What the applier tells its caller while it runs (the CLI renders it)."""

    def plan_ready(self, plan: EnvironmentPlan) -> None: ...
    def not_captured(self, name: str, app_id: str) -> None: ...
    def creating(self, total: int) -> None: ...
    def created(self, name: str, app_id: str) -> None: ...
    def failed(self, name: str, message: str) -> None: ...
    def note(self, message: str) -> None: ...


class NullReporter:
    """A reporter that says nothing."""

    def plan_ready(self, plan: EnvironmentPlan) -> None:
        return None

    def not_captured(self, name: str, app_id: str) -> None:
        return None

    def creating(self, total: int) -> None:
        return None

    def created(self, name: str, app_id: str) -> None:
        return None

    def failed(self, name: str, message: str) -> None:
        return None

    def note(self, message: str) -> None:
        return None


Confirm = Callable[[EnvironmentPlan], bool]
SecretOf = Callable[[str], str]  # a webhook_secret reference → its value


def confirm_always(_plan: EnvironmentPlan) -> bool:
    """The default ``Confirm``: yes."""
    return True


def no_secret(ref: str) -> str:
    """The default ``SecretOf``: no secret can be read."""
    raise MvsyncError(f"no way to read the webhook secret {ref}")


@dataclass
class ApplyResult:
    """What one apply did and left; ``ok`` is the SPEC's exit-0 condition."""

    environment: str
    secrets_path: Path
    plan: EnvironmentPlan | None = None
    created: list[tuple[str, str]] = field(default_factory=list)
    already_existed: list[str] = field(default_factory=list)
    unchanged: int = 0
    drift: list[Change] = field(default_factory=list)
    ambiguous: list[Change] = field(default_factory=list)
    not_created: list[str] = field(default_factory=list)
    not_captured: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unconfirmed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    # (name in the manifest, name the API gave it, id): recorded under the API's name.
    renamed_by_api: list[tuple[str, str, str]] = field(default_factory=list)
    # (name, since): a create in doubt from an earlier run, held back until the list
    # has had time to show it.
    held_back: list[tuple[str, str]] = field(default_factory=list)
    # Keys received that could not be stored anywhere on disk: (name, id, sealed armor
    # or None). The last resort: the CLI prints the armor, or names the application.
    unstored: list[tuple[str, str, str | None]] = field(default_factory=list)
    # Keys the store (the state_url database) could not take, written sealed to the
    # local secrets folder instead: (name, id), all in ``kept_locally_at``.
    kept_locally: list[tuple[str, str]] = field(default_factory=list)
    kept_locally_at: Path | None = None
    # Why the ledger could not be saved (the keys then are in the journal, kept locally
    # or unstored).
    store_problem: str | None = None
    interrupted: bool = False
    sealed: bool = False  # new keys are sealed to recipients (age)
    keys_location: str | None = None  # where the store keeps them, when not the file
    # With a key sink (SPEC 5.5): the sink as written, the keys of earlier runs this one
    # handed on, and every stored key the sink has not taken: (name, id).
    key_sink: str | None = None
    delivered_later: list[tuple[str, str]] = field(default_factory=list)
    undelivered: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The environment equals the manifest and every new key is stored."""
        return self.creates_done and not (self.drift or self.ambiguous)

    @property
    def creates_done(self) -> bool:
        """Every create was done and every key stored and delivered (``apply
        --allow-drift``'s exit 0): drift and ambiguous names, which apply cannot fix, may
        remain."""
        return not (
            self.undelivered
            or self.not_created
            or self.not_captured
            or self.failed
            or self.unconfirmed
            or self.skipped
            or self.renamed_by_api
            or self.held_back
            or self.unstored
            or self.store_problem
            or self.interrupted
        )
