"""``mvsync show`` renders a saved ``check -o`` result beside the saved plans: one
document, one pull-request comment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import TEST_API_KEY
from mvsync.emulator import Emulator

SECRET = "whsec_c2hvdy10ZXN0LXNlY3JldA=="


@pytest.fixture
def saved(make_emulator: Callable[..., Emulator], tmp_path: Path) -> tuple[Path, Path]:
    server = make_emulator(receiver_secret=SECRET)
    apps = [
        {"name": "Good", "answer_url": f"{server.url}/_receiver/answer"},
        {"name": "Bad", "answer_url": f"{server.url}/_receiver/html"},
    ]
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        json.dumps(
            {"version": 1, "environments": {"dev": {"api_url": server.url}}, "applications": apps}
        )
    )
    env = {**os.environ, "MINIVOICE_API_KEY": TEST_API_KEY}
    for args in (["plan", "-o", "plan.json"], ["check", "-o", "check.json"]):
        subprocess.run(
            [sys.executable, "-m", "mvsync", "-f", str(manifest), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
        )
    return tmp_path / "plan.json", tmp_path / "check.json"


def show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "show", *args], capture_output=True, text=True, timeout=60
    )


def test_markdown_puts_the_check_results_after_the_plans_in_one_comment(
    saved: tuple[Path, Path],
) -> None:
    plan, check = saved
    done = show(str(plan), str(check), "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("## mvsync plan") < done.stdout.index("## mvsync check")
    assert "**1 failed**" in done.stdout
    assert "answered text/html, not JSON" in done.stdout
    assert len(done.stdout) < 65_535


def test_a_check_result_alone_is_shown_in_every_format(saved: tuple[Path, Path]) -> None:
    _plan, check = saved
    text = show(str(check))
    assert text.returncode == 0
    assert "check: 1 passed, 1 failed, 2 not configured" in text.stdout
    document = json.loads(show(str(check), "--format", "json").stdout)
    assert document == json.loads(check.read_text())


def test_json_of_plans_and_checks_is_one_document(saved: tuple[Path, Path]) -> None:
    plan, check = saved
    document = json.loads(show(str(plan), str(check), "--format", "json").stdout)
    assert [env["name"] for env in document["environments"]] == ["dev"]
    assert document["check"]["summary"]["failed"] == 1


def test_a_file_that_is_neither_is_refused_as_before(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"kind": "something"}')
    done = show(str(other))
    assert done.returncode == 1
    assert "not a saved plan" in done.stderr


def test_a_malformed_check_result_is_refused_in_words(tmp_path: Path) -> None:
    broken = tmp_path / "check.json"
    broken.write_text(
        '{"kind": "mvsync-check", "format_version": 1, "environments": [{"name": 3}]}'
    )
    done = show(str(broken))
    assert done.returncode == 1
    assert "an environment has no name" in done.stderr
    assert "Traceback" not in done.stderr
