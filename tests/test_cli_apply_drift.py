"""``mvsync apply --allow-drift`` (SPEC section 4): drift the API cannot fix does not keep
every later apply red, yet it is still reported; a create not done still fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.api.client import MiniVoiceClient
from mvsync.apply.settings import ApplyResult
from mvsync.emulator import Emulator
from mvsync.model import CreateRequest
from test_cli_apply import run, write_manifest


@pytest.fixture
def drifted(tmp_path: Path, emulator: Emulator) -> Path:
    """App 0 exists with another answer_url (drift), App 1 twice (ambiguous), App 2 is new."""
    write_manifest(tmp_path, emulator.url, count=3)
    for name, answer_url in [
        ("App 0", "https://old.example.com/0"),
        ("App 1", "https://example.com/1/answer"),
        ("App 1", "https://example.com/1/answer"),
    ]:
        with MiniVoiceClient(emulator.url, TEST_API_KEY) as client:
            client.create_application(CreateRequest(name=name, answer_url=answer_url))
    return tmp_path


def test_without_allow_drift_apply_creates_yet_exits_1(drifted: Path, emulator: Emulator) -> None:
    done = run(drifted, "apply", "--env", "dev", "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Apply incomplete" in done.stdout
    assert "App 2" in {app["name"] for app in emulator.applications(TEST_API_KEY)}


def test_allow_drift_exits_0_when_every_create_is_done_and_still_reports_the_drift(
    drifted: Path, emulator: Emulator
) -> None:
    done = run(drifted, "apply", "--env", "dev", "-y", "--allow-drift")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '~ "App 0"' in done.stdout and "drifted" in done.stdout
    assert '! "App 1": 2 applications have this name' in done.stdout
    assert "allowed by --allow-drift" in done.stdout
    assert "1 created" in done.stdout
    assert_no_secrets(done.stdout + done.stderr)
    [created] = [a for a in emulator.applications(TEST_API_KEY) if a["name"] == "App 2"]
    assert created["id"] in (drifted / ".mvsync" / "dev.secrets.yaml").read_text()


def test_allow_drift_on_an_environment_already_applied_exits_0(drifted: Path) -> None:
    run(drifted, "apply", "--env", "dev", "--yes")
    again = run(drifted, "apply", "--env", "dev", "--yes", "--allow-drift")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 created" in again.stdout


@pytest.mark.parametrize(
    "left",
    [
        {"failed": [("App 2", "400 invalid_request")]},
        {"not_captured": [("App 2", "app_1")]},
        {"not_created": ["App 2"]},
        {"unconfirmed": [("App 2", "app_1")]},
        {"skipped": ["App 2"]},
        {"interrupted": True},
    ],
)
def test_a_create_not_done_or_a_key_not_stored_is_never_allowed(left: dict[str, object]) -> None:
    result = ApplyResult("dev", Path("s.yaml"), **left)  # type: ignore[arg-type]
    assert (result.creates_done, result.ok) == (False, False)


def test_drift_alone_is_allowed_but_not_ok() -> None:
    result = ApplyResult("dev", Path("s.yaml"), drift=[object()], ambiguous=[object()])  # type: ignore[list-item]
    assert (result.creates_done, result.ok) == (True, False)
