"""mvsync.store.journal: fsynced JSON lines; a torn last line is ignored, others refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from mvsync.errors import SecretsError
from mvsync.store import journal
from mvsync.store.journal import JournalWriter, read_journal

KEY = "mv_live_JOURNAL_CANARY"


def test_journal_path_is_beside_the_secrets_file(tmp_path: Path) -> None:
    assert journal.journal_path(tmp_path / "prod.secrets.yaml") == (
        tmp_path / "prod.secrets.yaml.journal"
    )


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    path = tmp_path / "j"
    written = [
        journal.intent("Support IVR"),
        journal.created("Support IVR", "app_1", SecretStr(KEY), "2026-05-29T12:00:00Z"),
        journal.intent("Sales"),
        journal.not_captured("Sales", "app_2"),
    ]
    with JournalWriter(path) as writer:
        for record in written:
            writer.append(record)
    assert read_journal(path) == written


def test_created_record_holds_the_key_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with JournalWriter(path) as writer:
        writer.append(journal.created("A", "app_1", SecretStr(KEY), "t"))
    assert KEY in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "absent") == []


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(journal.intent("A").to_line() + b'{"event": "created", "name": "A", "id"')
    path.chmod(0o600)
    assert [record.name for record in read_journal(path)] == ["A"]


def test_malformed_middle_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b'{"event": "created", "name": "A"\n' + journal.intent("B").to_line())
    path.chmod(0o600)
    with pytest.raises(SecretsError, match=r"j:1: not a JSON object"):
        read_journal(path)


def test_unknown_event_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b'{"event": "deleted", "name": "A"}\n')
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="unknown event"):
        read_journal(path)


def test_created_record_without_key_is_refused_without_quoting_the_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b'{"event": "created", "name": "A", "id": "app_1", "created_at": "t"}\n')
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="'api_key' is missing") as refused:
        read_journal(path)
    assert "app_1" not in str(refused.value)


def test_group_readable_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(journal.intent("A").to_line())
    path.chmod(0o640)
    with pytest.raises(SecretsError, match="chmod 600"):
        read_journal(path)


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with JournalWriter(path) as writer:

        def append_many(worker: int) -> None:
            for number in range(50):
                name = f"app {worker}-{number} " + "x" * 200
                writer.append(journal.created(name, f"id{worker}-{number}", SecretStr(KEY), "t"))

        threads = [threading.Thread(target=append_many, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(read_journal(path)) == 400


def test_a_journal_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    line = journal.intent("A").to_line()
    target.write_bytes(line)
    target.chmod(0o600)
    path = tmp_path / "j"
    path.symlink_to(target)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        read_journal(path)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        JournalWriter(path)
    assert target.read_bytes() == line


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep"),
        pytest.param(b'{"event": "intent", "name": "A", "ts": ' + b"9" * 5000 + b"}", id="bigint"),
    ],
)
def test_a_deep_or_huge_number_line_is_one_secrets_error(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "j"
    path.write_bytes(line + b"\n")
    path.chmod(0o600)
    with pytest.raises(SecretsError, match=r"j:1: not a JSON object"):
        read_journal(path)


def test_a_key_in_a_malformed_line_is_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(f'{{"event": "{KEY}", "name": "{KEY}"}}\n{{"{KEY}": 1}}\n'.encode())
    path.chmod(0o600)
    with pytest.raises(SecretsError) as refused:
        read_journal(path)
    for form in (KEY, KEY.upper(), KEY.lower()):  # as sent, upper, lower
        assert form not in str(refused.value)
