"""The fold at the end of a run: this run's records into the ledger, and — when the store
does not take them — where each key went (SPEC 5.4):

- still in the store's journal: the next apply, on any machine, stores it;
- a key record the store never took (the database lost mid-run): written sealed to the
  local secrets folder (``fallback``), for ``mvsync state push`` to copy in later;
- else only in memory: the last resort the CLI prints (sealed armor, or the application
  named when the key is plain).
"""

from __future__ import annotations

from mvsync.apply.settings import ApplyResult
from mvsync.errors import MvsyncError
from mvsync.store import journal, keys
from mvsync.store.base import KeyStore
from mvsync.store.files import FileStore
from mvsync.store.journal import JournalRecord

# Seconds the local folder's lock is waited for when the database could not take a key.
FALLBACK_LOCK_TIMEOUT = 5.0


def fold_at_end(
    store: KeyStore,
    stored: keys.SecretsFile,
    records: list[JournalRecord],
    result: ApplyResult,
    fallback: FileStore | None = None,
) -> None:
    """Write this run's records into the ledger; if the store does not take them, say
    where each key is (see the module docstring)."""
    folded = keys.add_records(stored, records)
    result.renamed.extend(folded.renamed)
    # Every intent still in doubt stays journalled: only a later run's list decides
    # (listed: not captured; absent past the lag window: sent again).
    doubtful = journal.in_doubt(records)
    try:
        store.save(stored, doubtful)
        return
    except MvsyncError as error:
        problem = str(error)
    lost = store.unjournalled(records)
    lost_ids = {r.app_id for r in lost}
    safe = sum(1 for _name, app_id in folded.stored if app_id not in lost_ids)
    if safe:
        which = f"{safe} key(s) received are" if lost else "every key received is"
        problem += f"; {which} safe in the journal of {store.location}: the next apply stores them"
    result.store_problem = problem
    if not lost:
        return
    if fallback is not None and _keep_locally(fallback, lost, result):
        return
    by_id = {r.app_id: r for r in lost}
    for name, app_id in folded.stored:
        record = by_id.get(app_id)
        if record is not None:
            result.unstored.append((name, app_id, record.sealed_api_key))


def _keep_locally(fallback: FileStore, lost: list[JournalRecord], result: ApplyResult) -> bool:
    """Add the key records ``lost`` to the local secrets file (sealed: a store that
    refuses plain keys never held any); whether they are there now."""
    try:
        fallback.check()
        with fallback.lock(
            timeout=FALLBACK_LOCK_TIMEOUT, command="mvsync apply (keys the database did not take)"
        ):
            local, leftover = fallback.read()
            added = keys.add_records(local, lost)
            # A journal already in that folder (an earlier run without state_url) stays.
            fallback.save(local, leftover)
    except MvsyncError as error:
        result.store_problem = (
            f"{result.store_problem}; nor could the local secrets folder take them: {error}"
        )
        return False
    there = {app_id for _name, app_id in added.stored}
    result.kept_locally.extend(added.stored)
    # Already in that file (the same key): there all the same.
    result.kept_locally.extend(
        (r.name, r.app_id) for r in lost if r.app_id is not None and r.app_id not in there
    )
    result.kept_locally_at = fallback.secrets_path
    return True
