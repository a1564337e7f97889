"""The fold at the end of a run: this run's records into the ledger, and — when no disk
takes them — where each key is: still in the journal, or only in memory (the last resort
the CLI prints)."""

from __future__ import annotations

from mvsync.apply.settings import ApplyResult
from mvsync.errors import MvsyncError
from mvsync.store import journal, keys
from mvsync.store.base import KeyStore
from mvsync.store.journal import JournalRecord


def fold_at_end(
    store: KeyStore,
    stored: keys.SecretsFile,
    records: list[JournalRecord],
    result: ApplyResult,
) -> None:
    """Write this run's records into the ledger; if no disk takes them, say where
    each key is: still in the journal, or — the last resort — only in memory."""
    folded = keys.add_records(stored, records)
    result.renamed.extend(folded.renamed)
    # Every intent still in doubt stays journalled: only a later run's list decides
    # (listed: not captured; absent past the lag window: sent again).
    doubtful = journal.in_doubt(records)
    try:
        store.save(stored, doubtful)
    except MvsyncError as error:
        if store.journal_intact:
            result.store_problem = (
                f"{error}; every key received is safe in the journal beside it: the next "
                "apply stores them"
            )
            return
        result.store_problem = str(error)
        by_id = {r.app_id: r for r in records if r.event == "created"}
        for name, app_id in folded.stored:
            record = by_id.get(app_id)
            sealed = record.sealed_api_key if record is not None else None
            result.unstored.append((name, app_id, sealed))
