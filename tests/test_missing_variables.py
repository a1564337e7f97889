"""Every webhook-secret variable that is missing, at once, with the applications that need
it: ``apply`` refuses before the first POST naming all of them; ``plan`` warns of them in
text, Markdown and JSON, so a green pull request does not fail on main."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.manifest import missing_secret_variables, read_webhook_secrets
from mvsync.model import DesiredApp
from test_cli_apply import cli_env, command

MANIFEST = """\
version: 1
environments:
  dev:
    api_url: {url}
    api_key_env: MV_TEST_KEY
defaults:
  webhook_url: https://example.com/hooks
  webhook_secret: ${{MV_WEBHOOK_SECRET}}
applications:
  - name: Support IVR
    answer_url: https://example.com/support
  - name: Sales IVR
    answer_url: https://example.com/sales
  - name: Billing
    answer_url: https://example.com/billing
    webhook_secret: ${{MV_BILLING_SECRET}}
  - name: No hooks
    answer_url: https://example.com/plain
    webhook_url: null
    webhook_secret: null
"""


@pytest.fixture
def folder(tmp_path: Path, emulator: Emulator) -> Path:
    (tmp_path / "mvsync.yaml").write_text(MANIFEST.format(url=emulator.url))
    return tmp_path


def run(folder: Path, *args: str, **unset: bool) -> subprocess.CompletedProcess[str]:
    """mvsync with every variable set, but those named ``NAME=True``."""
    env = {**cli_env(), "MV_BILLING_SECRET": "whsec_BILLING_CANARY_77"}
    for name in unset:
        env.pop(name, None)
    done = subprocess.run(
        command(folder, *args),
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert_no_secrets(done.stdout + done.stderr)
    return done


def test_apply_names_every_missing_variable_and_its_applications_before_any_post(
    folder: Path, emulator: Emulator
) -> None:
    done = run(
        folder, "apply", "--env", "dev", "--yes", MV_WEBHOOK_SECRET=True, MV_BILLING_SECRET=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "mvsync: error: environment 'dev': webhook secret variables not set: MV_BILLING_SECRET "
        "(needed by 'Billing'); MV_WEBHOOK_SECRET (needed by 'Sales IVR', 'Support IVR'); "
        "set them where mvsync runs; nothing was created"
    )
    assert emulator.request_count("POST") == 0


def test_plan_warns_in_text_of_the_variables_apply_will_need(folder: Path) -> None:
    done = run(folder, "plan", MV_WEBHOOK_SECRET=True, MV_BILLING_SECRET=True)
    assert done.returncode == 0, done.stderr
    assert (
        "  warning: apply will need webhook secret variables not set here: MV_BILLING_SECRET "
        "(needed by 'Billing'); MV_WEBHOOK_SECRET (needed by 'Sales IVR', 'Support IVR')"
    ) in done.stdout


def test_plan_warns_in_json_and_markdown(folder: Path) -> None:
    document = json.loads(run(folder, "plan", "--format", "json", MV_WEBHOOK_SECRET=True).stdout)
    [warning] = document["environments"][0]["warnings"]
    assert "MV_WEBHOOK_SECRET (needed by 'Sales IVR', 'Support IVR')" in warning
    markdown = run(folder, "plan", "--format", "markdown", MV_WEBHOOK_SECRET=True).stdout
    assert "> [!WARNING]" in markdown
    assert "MV\\_WEBHOOK\\_SECRET" in markdown


def test_plan_warns_of_nothing_when_every_variable_is_set(folder: Path) -> None:
    done = run(folder, "plan", "--format", "json")
    assert "warnings" not in json.loads(done.stdout)["environments"][0]
    assert "warning" not in run(folder, "plan").stdout


def test_a_saved_plan_keeps_its_warnings_for_show(folder: Path) -> None:
    run(folder, "plan", "-o", str(folder / "plan.json"), MV_WEBHOOK_SECRET=True)
    shown = run(folder, "show", str(folder / "plan.json"))
    assert "warning: apply will need webhook secret variable not set here" in shown.stdout


def test_missing_secret_variables_lists_each_once_with_its_applications() -> None:
    apps = [
        DesiredApp("A", "https://e/a", None, "${ONE}"),
        DesiredApp("B", "https://e/b", None, "${ONE}"),
        DesiredApp("C", "https://e/c", None, "${TWO}"),
        DesiredApp("D", "https://e/d"),
    ]
    assert missing_secret_variables(apps, {"TWO": "x"}.get) == {"ONE": ["A", "B"]}
    assert missing_secret_variables(apps, {"ONE": "", "TWO": "x"}.get) == {"ONE": ["A", "B"]}


def test_read_webhook_secrets_reads_each_reference_once() -> None:
    reads: list[str] = []

    def secret_of(ref: str) -> str:
        reads.append(ref)
        return TEST_WEBHOOK_SECRET

    apps = [DesiredApp(n, "https://e/", None, "${ONE}") for n in "ABC"]
    assert read_webhook_secrets(apps, secret_of, "dev") == {"${ONE}": TEST_WEBHOOK_SECRET}
    assert reads == ["${ONE}"]
    assert TEST_API_KEY not in str(reads)


def test_plan_does_not_warn_of_variables_named_in_mvsync_apply_variables(folder: Path) -> None:
    env_unset = {"MV_WEBHOOK_SECRET": True, "MV_BILLING_SECRET": True}
    done = subprocess.run(
        command(folder, "plan"),
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in cli_env().items() if k not in env_unset},
            "MVSYNC_APPLY_VARIABLES": "MV_WEBHOOK_SECRET OTHER",
        },
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert "MV_BILLING_SECRET (needed by 'Billing')" in done.stdout
    assert "MV_WEBHOOK_SECRET" not in done.stdout
