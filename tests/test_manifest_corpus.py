"""The yaml-test-suite corpus: every input is refused cleanly by ``mvsync validate -f``.

None of the 352 inputs is a manifest, so each must end with exit status 1, messages
that name the file, nothing on stdout, no traceback and no hang. They run in-process
through ``mvsync.cli.main`` (a subprocess each would cost minutes) with a per-file alarm.
"""

from __future__ import annotations

import io
import signal
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import FrameType

import pytest

from mvsync.cli import main

PER_FILE_SECONDS = 10


class _Hung(Exception):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _Hung


def _validate(path: Path) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_FILE_SECONDS)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(["validate", "-f", str(path)])
                code: object = "returned without exiting"
            except SystemExit as exited:
                code = exited.code
    except _Hung:
        code = f"no answer within {PER_FILE_SECONDS} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def test_every_yaml_test_suite_input_is_refused_cleanly(
    shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    # Some cases hold their inputs one folder deeper (2G84/00/in.yaml): all 402 of them.
    inputs = sorted((shared_dir / "corpora" / "yaml-test-suite").rglob("in.yaml"))
    if not inputs:
        pytest.skip("the yaml-test-suite corpus is not there")
    failures = []
    for path in inputs:
        code, out, err = _validate(path)
        lines = err.splitlines()
        clean = (
            code == 1
            and out == ""
            and lines
            and all(line.startswith(f"{path}:") for line in lines)
            and "Traceback" not in err
            and "unexpected" not in err.replace("found unexpected", "")
        )
        if not clean:
            failures.append(f"{path.parent}: exit {code!r}, stdout {out!r}, stderr {err!r}")
    assert failures == []
    assert len(inputs) >= 400


def test_broken_yaml_in_the_corpus_is_located_by_line_and_column(shared_dir: Path) -> None:
    broken = sorted(
        path
        for path in (shared_dir / "corpora" / "yaml-test-suite").rglob("in.yaml")
        if (path.parent / "error").exists()
    )
    if not broken:
        pytest.skip("the yaml-test-suite corpus is not there")
    unlocated = []
    for path in broken:
        _code, _out, err = _validate(path)
        first = err.splitlines()[0] if err else ""
        place = first[len(str(path)) + 1 :].split(":")[:2]
        if not all(part.isdigit() for part in place) or len(place) != 2:
            unlocated.append(first)
    assert unlocated == []
