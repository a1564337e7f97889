"""A secrets folder every user may write to is refused before anything is sent, also
when ``.mvsync`` is a symlink to it: anyone could swap the secrets file or its journal."""

from __future__ import annotations

from pathlib import Path

from mvsync.emulator import Emulator
from test_apply_faults import apply
from test_cli_apply import write_manifest


def test_a_symlink_to_a_folder_open_to_all_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (checkout / ".mvsync").symlink_to(shared)
    write_manifest(checkout, emulator.url)
    done = apply(checkout)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "writable by every user" in done.stderr and f"chmod o-w {shared}" in done.stderr
    assert emulator.request_count("POST") == 0 and emulator.request_count("GET") == 0
    assert list(shared.iterdir()) == []
    # With the sticky bit (as /tmp has), others cannot replace what is not theirs.
    shared.chmod(0o1777)
    assert apply(checkout).returncode == 0
