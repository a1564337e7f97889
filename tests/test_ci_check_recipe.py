"""examples/ci/github-actions-check.yml runs here: its shell steps, with bash as a runner
runs them, against the emulator's sample receiver on loopback (the runner of
test_ci_recipe.py: ``uses:`` and install steps skipped, ``${{ }}`` given test values)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import REPO_ROOT, assert_no_secrets
from mvsync.emulator import Emulator
from test_ci_recipe import Runner, StepResult, load_yaml

RECIPE = REPO_ROOT / "examples" / "ci" / "github-actions-check.yml"
SECRET = "whsec_" + base64.b64encode(b"ci-check-recipe-canary").decode()


def manifest(receiver: Emulator, answer: str) -> str:
    base = f"{receiver.url}/_receiver"
    document = {
        "version": 1,
        "environments": {"staging": {"api_url": "${MVSYNC_TEST_API_URL}"}},
        "defaults": {"webhook_url": f"{base}/webhooks", "webhook_secret": "${MV_WEBHOOK_SECRET}"},
        "applications": [{"name": "Support IVR", "answer_url": f"{base}/{answer}"}],
    }
    return json.dumps(document)


def after_check(results: dict[str, StepResult], _failed: bool) -> bool:
    return "check" in results


@pytest.fixture
def receiver(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(receiver_secret=SECRET)


def run_recipe(
    tmp_path: Path, receiver: Emulator, answer: str
) -> tuple[dict[str, StepResult], str]:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    (workspace / "mvsync.yaml").write_text(manifest(receiver, answer))
    runner = Runner(
        load_yaml(RECIPE),
        workspace,
        {"matrix.env": "staging", "secrets.MV_WEBHOOK_SECRET": SECRET},
        conditions={"always() && steps.check.outcome != 'skipped'": after_check},
    )
    # The job that lists environments does not have the variable: it cannot tell that
    # staging's ${MVSYNC_TEST_API_URL} is loopback, so staging is kept.
    listed = runner.run_job("environments")
    assert json.loads(listed["list"].outputs["names"]) == ["staging"]
    runner.extra_env["MVSYNC_TEST_API_URL"] = receiver.url
    results = runner.run_job("check")
    summary = (
        (tmp_path / "step_summary.md").read_text()
        if (tmp_path / "step_summary.md").exists()
        else ""
    )
    return results, summary


def test_the_check_job_passes_when_every_backend_is_ready(
    tmp_path: Path, receiver: Emulator
) -> None:
    results, summary = run_recipe(tmp_path, receiver, "answer")
    assert results["check"].status == 0, results["check"].output
    assert "check: 2 passed, 0 failed, 0 not configured" in results["check"].output
    assert summary.startswith("## mvsync check\n**every check passed**")
    assert (tmp_path / "repo" / "check-staging.json").is_file()


def test_the_check_job_fails_and_still_writes_its_summary(
    tmp_path: Path, receiver: Emulator
) -> None:
    results, summary = run_recipe(tmp_path, receiver, "html")
    assert results["check"].status == 1
    assert "answered text/html, not JSON" in results["check"].output
    assert "**1 failed**" in summary
    assert_no_secrets(results["check"].output + summary, extra=[SECRET])
