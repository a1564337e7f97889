"""``state push``: copy an environment's local secrets file into its ``state_url`` database.

Plain keys are sealed to the environment's recipients on the way (SPEC 5.2: no plaintext
key in the database); an entry whose id the database already has is left as it is — but for
an id it records "key not captured", whose key the local file brings (a key a run kept
locally when it lost the database: SPEC 5.4) — and a name the database holds for another
id is stored as "name (id)". The local file is only
read. The push holds the environment's lock, so it never interleaves with an apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mvsync.apply.stores import open_pg_store
from mvsync.errors import SecretsError, UsageError
from mvsync.manifest.interpolate import Lookup
from mvsync.model import Account, DesiredEnvironment
from mvsync.sealing import parse_recipient, seal
from mvsync.store import keys
from mvsync.store.keys import SecretEntry


@dataclass
class PushResult:
    """What ``push_state`` did."""

    source: Path
    location: str
    added: list[str] = field(default_factory=list)  # names as stored in the database
    filled: list[str] = field(default_factory=list)  # "not captured" entries given their key
    sealed: int = 0  # plain keys sealed on the way
    already: int = 0  # entries whose id the database had


def push_state(desired: DesiredEnvironment, lookup: Lookup, *, lock_timeout: float) -> PushResult:
    """Copy ``desired``'s secrets file into its database; see the module docstring."""
    store = open_pg_store(desired, lookup)
    if store is None:
        raise UsageError(
            f"environment '{desired.name}' has no state_url: there is no database to push to"
        )
    path = desired.secrets_path
    local = keys.read_secrets(path)
    if local is None:
        raise SecretsError(f"{path}: no secrets file to push")
    keys.check_matches(local, path, desired.name, desired.api_url)
    recipients = [parse_recipient(text) for text in desired.recipients]
    result = PushResult(source=path, location=store.location)
    entries: list[tuple[str, SecretEntry]] = []
    for name, entry in local.applications.items():
        if entry.api_key is not None:
            if not recipients:  # pragma: no cover - the manifest requires them with state_url
                raise UsageError(f"environment '{desired.name}' has no recipients to seal to")
            entry = SecretEntry(
                id=entry.id,
                sealed_api_key=seal(entry.api_key.get_secret_value(), recipients),
                created_at=entry.created_at,
            )
            result.sealed += 1
        entries.append((name, entry))
    store.check()
    api_key = lookup(desired.api_key_env)
    store.identify(Account.of(api_key))  # which account's ledger: by its key, never listed
    with store.lock(timeout=lock_timeout, command=f"mvsync state push --env {desired.name}"):
        result.added, result.filled = store.add_entries(entries)
    result.already = len(entries) - len(result.added) - len(result.filled)
    return result
