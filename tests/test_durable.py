"""mvsync.store.durable: secret-bearing files are 0600 from birth and replaced atomically."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mvsync.errors import SecretsError
from mvsync.store.durable import (
    DurableAppender,
    append_durable,
    check_private,
    ensure_private_dir,
    read_private,
    write_atomic,
)


@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_write_atomic_creates_0600_under_any_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "s.yaml"
    with umask(mask):
        write_atomic(target, b"key: mv_live_x\n")
    assert mode_of(target) == 0o600


@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_append_durable_creates_0600_under_any_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "s.journal"
    with umask(mask):
        append_durable(target, b"line\n")
    assert mode_of(target) == 0o600


def test_write_atomic_replaces_a_lax_file_with_a_0600_one(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    target.write_bytes(b"old\n")
    target.chmod(0o644)
    write_atomic(target, b"new\n")
    assert (target.read_bytes(), mode_of(target)) == (b"new\n", 0o600)


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    write_atomic(target, b"one\n")
    write_atomic(target, b"two\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_write_atomic_that_fails_raises_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    # The rename fails (the target is a folder): the temp file holding the data is removed.
    target = tmp_path / "s.yaml"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    with pytest.raises(SecretsError, match="cannot write"):
        write_atomic(target, b"key\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_append_durable_appends_after_existing_lines(tmp_path: Path) -> None:
    target = tmp_path / "j"
    append_durable(target, b"a\n")
    append_durable(target, b"b\n")
    assert target.read_bytes() == b"a\nb\n"


def test_appender_refuses_an_existing_group_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "j"
    target.write_bytes(b"")
    target.chmod(0o640)
    with pytest.raises(SecretsError, match="chmod 600"):
        DurableAppender(target)


@pytest.mark.parametrize("lax_mode", [0o640, 0o604, 0o660, 0o606])
def test_check_private_refuses_group_or_other_access(tmp_path: Path, lax_mode: int) -> None:
    target = tmp_path / "s.yaml"
    target.write_bytes(b"")
    target.chmod(lax_mode)
    with pytest.raises(SecretsError, match=f"mode {lax_mode:04o}"):
        check_private(target)


def test_check_private_accepts_0600_and_a_missing_file(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    check_private(target)
    target.write_bytes(b"")
    target.chmod(0o600)
    check_private(target)
    assert mode_of(target) == 0o600


def test_ensure_private_dir_creates_0700_under_a_lax_umask(tmp_path: Path) -> None:
    folder = tmp_path / "a" / ".mvsync"
    with umask(0o000):
        ensure_private_dir(folder)
    assert mode_of(folder) == 0o700


def test_ensure_private_dir_leaves_an_existing_folder_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_private_dir(tmp_path)
    assert mode_of(tmp_path) == 0o755


def _linked(tmp_path: Path) -> tuple[Path, Path]:
    """A 0600 file holding a key and a symbolic link to it."""
    target = tmp_path / "real.yaml"
    target.write_bytes(b"key: mv_live_old\n")
    target.chmod(0o600)
    link = tmp_path / "s.yaml"
    link.symlink_to(target)
    return target, link


def test_check_private_refuses_a_symbolic_link(tmp_path: Path) -> None:
    _target, link = _linked(tmp_path)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        check_private(link)


def test_write_atomic_refuses_a_symbolic_link_and_keeps_it(tmp_path: Path) -> None:
    target, link = _linked(tmp_path)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        write_atomic(link, b"key: mv_live_new\n")
    assert (link.is_symlink(), target.read_bytes()) == (True, b"key: mv_live_old\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.yaml", "s.yaml"]


def test_appender_refuses_a_symbolic_link_even_a_dangling_one(tmp_path: Path) -> None:
    link = tmp_path / "j"
    link.symlink_to(tmp_path / "absent")
    with pytest.raises(SecretsError, match="is a symbolic link"):
        DurableAppender(link)
    assert not (tmp_path / "absent").exists()


def test_read_private_reads_a_file_and_none_when_missing(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    assert read_private(target) is None
    write_atomic(target, b"data\n")
    assert read_private(target) == b"data\n"


def test_read_private_refuses_a_symbolic_link(tmp_path: Path) -> None:
    _target, link = _linked(tmp_path)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        read_private(link)
