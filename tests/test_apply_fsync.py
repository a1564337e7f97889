"""fsync where durability is promised, counted in-process for one create and its fold.

``os.fsync`` and ``os.replace`` are wrapped (the real calls still run) while
``mvsync.apply.run.apply_environment`` creates one application against the emulator:
each journal line is fsynced before the next step, the new journal's folder too, the
secrets file's temporary file before it is renamed, and the folder after the rename and
before the journal is removed (``mvsync.files.fsync_dir`` is an ``os.fsync`` of the
folder, so it is counted as well).
Removing any one of these calls fails this test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator
from mvsync.store.journal import journal_path
from test_applier import desired_env, run_apply


def test_one_create_and_its_fold_fsync_each_journal_line_the_secrets_file_and_its_folder(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    folder = str(env.secrets_path.parent)
    journal = str(journal_path(env.secrets_path))
    # ("fsync", path), ("replace", "src -> dst") or ("unlink", path), in the order made
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    def unlink(path: str | Path, *args: object, **kwargs: object) -> None:
        events.append(("unlink", str(path)))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    result = run_apply(env, emulator)
    monkeypatch.undo()

    assert result.ok and len(emulator.applications(TEST_API_KEY)) == 1
    synced = [path for kind, path in events if kind == "fsync"]
    # Two journal lines (the intent before the POST, the key after it), each fsynced.
    assert synced.count(journal) == 2, events
    # The new journal's name made durable before its first line counts as written.
    assert folder in synced[: synced.index(journal)], events
    # The fold: the temporary file fsynced, renamed over the secrets file, the folder fsynced.
    [renamed] = [
        (i, move)
        for i, (kind, move) in enumerate(events)
        if kind == "replace" and move.endswith(f" -> {env.secrets_path}")
    ]
    at, move = renamed
    temp = move.split(" -> ")[0]
    assert ("fsync", temp) in events[:at], events
    # ... and that rename durable before the journal (its only other copy) is removed.
    removed = events.index(("unlink", journal))
    assert at < removed and ("fsync", folder) in events[at + 1 : removed], events
