"""The rate an account accepted, kept for the next run (SPEC guarantee 2).

``mvsync apply`` wraps its run in ``remembered_pace``. An apply that learned its
account's rate — announced by the API, or found by being refused — leaves it for the
next: one small JSON file, written atomically, holding the rate, whether the API
announced it, when it was learned and a one-way fingerprint of the account (URL and key
digest; never the key)::

    {"format": 1, "account": "3f1c...", "rate": 100.0, "announced": true,
     "learned_at": "2026-05-29T12:00:00Z"}

The next apply of that account, within ``MAX_AGE`` of then, paces from its first
request at that rate instead of starting unpaced and meeting a burst of 429s. A file of
another account, older than that, from the future or malformed is ignored: the rate is
an optimisation, never a reason to fail. For the same reason a file that cannot be
written is left as it was.

Where: beside the secrets file (``<secrets file>.pace``; the folder's ``.gitignore`` keeps
it out of git) — the folder CI keeps between runs. With ``state_url`` nothing is written
beside the manifest: the file goes to this user's machine-wide lock folder instead, named
by the fingerprint (so a shared database's runners each learn it once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mvsync import files
from mvsync.api.client import MiniVoiceClient
from mvsync.api.ratelimit import Learned
from mvsync.errors import LockError
from mvsync.model import DesiredEnvironment, utc_stamp
from mvsync.store.lock import machine_lock_dir

PACE_SUFFIX = ".pace"
FORMAT = 1
MAX_AGE = timedelta(hours=1)
MAX_BYTES = 4096
# Bounds on a rate read back: a file is data, not trusted to be sane.
MIN_RATE = 0.5
MAX_RATE = 100_000.0


def pace_path(desired: DesiredEnvironment, account: str) -> Path | None:
    """Where this account's rate is kept for ``desired``; ``None`` when nowhere can be."""
    if desired.state_url is None:
        return desired.secrets_path.with_name(desired.secrets_path.name + PACE_SUFFIX)
    try:
        return machine_lock_dir() / f"{account}{PACE_SUFFIX}"
    except LockError:
        return None  # the lock will say so; the rate is not worth a second message


@contextmanager
def remembered_pace(desired: DesiredEnvironment, client: MiniVoiceClient) -> Iterator[None]:
    """Start ``client``'s account from the rate kept for it, and keep what it learned."""
    path = pace_path(desired, client.account)
    if path is not None:
        learned = read_pace(path, client.account, datetime.now(UTC))
        if learned is not None:
            client.limiter.start_from(learned)
    try:
        yield
    finally:
        found = client.limiter.learned()
        if path is not None and found is not None:
            write_pace(path, client.account, found)


def read_pace(path: Path, account: str, now: datetime) -> Learned | None:
    """The rate kept in ``path`` for ``account``, learned within ``MAX_AGE`` of ``now``."""
    try:
        raw = files.read_bounded(path, MAX_BYTES, follow_symlinks=False)
        data = json.loads(raw)
        learned_at = datetime.fromisoformat(data["learned_at"])
    except (OSError, files.UnreadableFileError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    rate, announced = data.get("rate"), data.get("announced")
    if data.get("account") != account or not isinstance(announced, bool):
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return None
    if not MIN_RATE <= rate <= MAX_RATE or learned_at.tzinfo is None:
        return None
    if not timedelta(0) <= now - learned_at <= MAX_AGE:
        return None
    return Learned(float(rate), announced=announced)


def write_pace(path: Path, account: str, learned: Learned) -> None:
    """Keep ``learned`` for ``account`` in ``path`` (atomically; a failure changes nothing)."""
    if not path.parent.is_dir():
        return  # no secrets folder (nothing was stored): nothing to keep it beside
    record = {
        "format": FORMAT,
        "account": account,
        "rate": round(learned.rate, 3),
        "announced": learned.announced,
        "learned_at": utc_stamp(),
    }
    try:
        files.write_atomic(path, (json.dumps(record) + "\n").encode(), 0o600)
    except files.UnwritableFileError:
        return  # the next run starts unpaced, as it would without this file
