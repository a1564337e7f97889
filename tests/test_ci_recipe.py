"""The CI recipes run here, so they cannot rot.

The GitHub Actions workflow's shell steps (``run:``) are taken from the YAML and run
with bash as a runner would (``bash --noprofile --norc -eo pipefail``), in a scratch
checkout, against the emulator. What GitHub itself provides is stood in for: the
``${{ }}`` expressions of ``env:`` get test values (an expression the test does not
know fails it), ``uses:`` steps are skipped (the artifact/cache hand-over is done by
copying folders), ``gh`` is a small fake that keeps pull-request comments in a JSON
file, and the install step is skipped (mvsync is already in this venv).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from helpers import REPO_ROOT, assert_no_secrets
from mvsync.emulator import Emulator

WORKFLOW = REPO_ROOT / "examples" / "ci" / "github-actions.yml"
ACTION = REPO_ROOT / "action.yml"
PRE_COMMIT_HOOKS = REPO_ROOT / ".pre-commit-hooks.yaml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
VENV_BIN = Path(sys.executable).parent

STAGING_KEY = "mvtest_STAGING_CANARY_5d1e"
PROD_KEY = "mvtest_PROD_CANARY_9a0c"
WEBHOOK_SECRET = "whsec_CI_CANARY_61f0"
PASSPHRASE = "ci-test-passphrase-not-secret"

MANIFEST = """\
version: 1
environments:
  staging:
    api_url: {url}
    api_key_env: MINIVOICE_API_KEY_STAGING
  prod:
    api_url: {url}
    api_key_env: MINIVOICE_API_KEY_PROD
defaults:
  webhook_url: https://crm.example.com/minivoice/webhooks
  webhook_secret: ${{MV_WEBHOOK_SECRET}}
applications:
  - name: Support IVR
    answer_url: https://example.com/minivoice/answer
  - name: Receptionist
    answer_url: https://example.com/minivoice/reception
"""

FAKE_GH = """\
import json, os, sys

args = sys.argv[1:]
if not os.environ.get("GH_TOKEN"):
    sys.exit("gh: GH_TOKEN is not set")
assert args[0] == "api", args
args = args[1:]
method, path, has_input = "GET", None, False
while args:
    arg = args.pop(0)
    if arg == "--method":
        method = args.pop(0)
    elif arg == "--input":
        has_input = args.pop(0) == "-"
    elif arg == "--paginate":
        pass
    else:
        path = arg
state_file = os.environ["FAKE_GH_STATE"]
state = json.load(open(state_file)) if os.path.exists(state_file) else {"comments": [], "calls": []}
state["calls"].append([method, path])
parts = path.split("/")
if method == "GET":
    issue = int(parts[4])
    listed = [c for c in state["comments"] if c["issue"] == issue]
    # Two pages back to back, as --paginate prints them.
    print(json.dumps(listed[:1]))
    print(json.dumps(listed[1:]))
elif method == "POST":
    body = json.load(sys.stdin)["body"]
    new_id = 1000 + len(state["comments"])
    state["comments"].append({"id": new_id, "issue": int(parts[4]), "body": body})
elif method == "PATCH":
    body = json.load(sys.stdin)["body"]
    [comment] = [c for c in state["comments"] if c["id"] == int(parts[-1])]
    comment["body"] = body
json.dump(state, open(state_file, "w"))
"""


def load_yaml(path: Path) -> Any:
    # ruamel (YAML 1.2) keeps the workflow's `on:` a string key.
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@dataclass
class StepResult:
    status: int
    output: str
    outputs: dict[str, str]


@dataclass
class Runner:
    """Runs one workflow job's shell steps in ``workspace``, in order, like a runner."""

    workflow: dict[str, Any]
    workspace: Path
    values: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, Callable[[dict[str, StepResult], bool], bool]] = field(
        default_factory=dict
    )

    def substitute(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression not in self.values:
                pytest.fail(f"the workflow uses ${{{{ {expression} }}}}: give the test a value")
            return self.values[expression]

        return EXPRESSION.sub(value, text)

    def env_of(self, *blocks: Mapping[str, Any] | None) -> dict[str, str]:
        merged: dict[str, str] = {}
        for block in blocks:
            merged.update({k: self.substitute(str(v)) for k, v in (block or {}).items()})
        return merged

    def run_job(self, job_name: str) -> dict[str, StepResult]:
        job = self.workflow["jobs"][job_name]
        job_env = self.env_of(self.workflow.get("env"), job.get("env"))
        results: dict[str, StepResult] = {}
        failed = False
        for index, step in enumerate(job["steps"]):
            if "run" not in step or step.get("id") == "install":
                continue
            condition = step.get("if")
            if condition is not None:
                if condition not in self.conditions:
                    pytest.fail(f"the test does not know the condition {condition!r}")
                if not self.conditions[condition](results, failed):
                    continue
            elif failed:
                continue
            result = self.run_step(step, job_env)
            results[step.get("id", f"step{index}")] = result
            failed = failed or result.status != 0
        return results

    def run_step(self, step: Mapping[str, Any], job_env: dict[str, str]) -> StepResult:
        output_file = self.workspace.parent / "github_output"
        output_file.write_text("")
        script = self.workspace.parent / "step.sh"
        script.write_text(step["run"], encoding="utf-8")
        env = {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.workspace.parent),
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(self.workspace.parent / "step_summary.md"),
            **job_env,
            **self.env_of(step.get("env")),
            **self.extra_env,
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
        return StepResult(done.returncode, done.stdout + done.stderr, outputs)


def always_after_decrypt(results: dict[str, StepResult], _failed: bool) -> bool:
    return "decrypt" in results and results["decrypt"].status == 0


def github_values(env_name: str) -> dict[str, str]:
    return {
        "matrix.env": env_name,
        "secrets.MINIVOICE_API_KEY_STAGING": STAGING_KEY,
        "secrets.MINIVOICE_API_KEY_PROD": PROD_KEY,
        "secrets.MV_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "secrets.MVSYNC_STATE_PASSPHRASE": PASSPHRASE,
        "github.token": "ghs_fake_token",
        "github.repository": "acme/voice",
        "github.event.pull_request.number": "42",
        "github.server_url": "https://github.com",
        "github.run_id": "1001",
    }


@pytest.fixture
def accounts(make_emulator: Callable[..., Emulator]) -> Emulator:
    """One emulator, two customers: staging's key and prod's key."""
    return make_emulator(api_keys=[STAGING_KEY, PROD_KEY])


@pytest.fixture
def checkout(tmp_path: Path, accounts: Emulator) -> Path:
    """A scratch clone of a user's repository holding mvsync.yaml."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    (workspace / "mvsync.yaml").write_text(MANIFEST.format(url=accounts.url), encoding="utf-8")
    return workspace


def runner_for(checkout: Path, env_name: str = "staging", **extra_env: str) -> Runner:
    fake_bin = checkout.parent / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    gh = fake_bin / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
    gh.chmod(0o755)
    return Runner(
        workflow=load_yaml(WORKFLOW),
        workspace=checkout,
        values=github_values(env_name),
        extra_env={
            "PATH": f"{fake_bin}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_GH_STATE": str(checkout.parent / "gh-state.json"),
            **extra_env,
        },
        conditions={"always() && steps.decrypt.outcome == 'success'": always_after_decrypt},
    )


def run_pull_request_plans(checkout: Path, env_names: list[str]) -> dict[str, StepResult]:
    """The plan job of each environment, then its artifact copied to plans/."""
    plans = checkout / "plans"
    plans.mkdir(exist_ok=True)
    results = {}
    for env_name in env_names:
        results[env_name] = runner_for(checkout, env_name).run_job("plan")["plan"]
        shutil.copy(checkout / f"plan-{env_name}.md", plans)
    return results


def test_no_run_script_of_the_workflow_holds_an_expression() -> None:
    # Expressions inside a script are a script-injection hole; env: is the safe path.
    workflow = load_yaml(WORKFLOW)
    scripts = [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]
    assert scripts
    assert [script for script in scripts if "${{" in script] == []


def test_apply_jobs_queue_per_environment_and_never_cancel() -> None:
    concurrency = load_yaml(WORKFLOW)["jobs"]["apply"]["concurrency"]
    assert concurrency == {"group": "mvsync-apply-${{ matrix.env }}", "cancel-in-progress": False}


def test_validate_job_lists_the_environments_as_a_json_matrix(checkout: Path) -> None:
    results = runner_for(checkout).run_job("environments")
    assert all(result.status == 0 for result in results.values()), results
    assert json.loads(results["list"].outputs["names"]) == ["staging", "prod"]


def test_plan_job_succeeds_with_pending_changes_and_says_so(checkout: Path) -> None:
    result = run_pull_request_plans(checkout, ["staging"])["staging"]
    assert (result.status, result.outputs["exit-code"], result.outputs["changes"]) == (
        0,
        "2",
        "true",
    )
    assert "Support IVR" in (checkout / "plan-staging.md").read_text()


def test_plan_job_fails_on_an_error_and_leaves_a_note_for_the_comment(checkout: Path) -> None:
    runner = runner_for(checkout, "prod")
    runner.values["secrets.MINIVOICE_API_KEY_PROD"] = ""  # a fork's pull request: no secrets
    result = runner.run_job("plan")["plan"]
    assert (result.status, result.outputs["exit-code"]) == (1, "1")
    assert "`mvsync plan` failed (exit 1)" in (checkout / "plan-prod.md").read_text()


def test_comment_job_posts_one_comment_and_updates_it_on_the_next_push(checkout: Path) -> None:
    state_file = checkout.parent / "gh-state.json"
    state_file.write_text(
        json.dumps({"comments": [{"id": 7, "issue": 42, "body": "LGTM"}], "calls": []})
    )
    run_pull_request_plans(checkout, ["staging", "prod"])
    first = runner_for(checkout).run_job("comment")
    run_pull_request_plans(checkout, ["staging", "prod"])
    second = runner_for(checkout).run_job("comment")
    state = json.loads(state_file.read_text())
    ours = [c for c in state["comments"] if c["body"].startswith("<!-- mvsync-plan -->")]
    assert [r.status for r in (*first.values(), *second.values())] == [0, 0]
    assert len(ours) == 1
    assert [m for m, _ in state["calls"] if m != "GET"] == ["POST", "PATCH"]
    assert "staging" in ours[0]["body"]
    assert "prod" in ours[0]["body"]
    assert_no_secrets(ours[0]["body"], extra=[STAGING_KEY, PROD_KEY, WEBHOOK_SECRET])


def test_apply_job_creates_then_a_later_run_restores_the_secrets_and_creates_nothing(
    checkout: Path, accounts: Emulator
) -> None:
    first = runner_for(checkout).run_job("apply")
    assert [r.status for r in first.values()] == [0, 0, 0], {k: r.output for k, r in first.items()}
    archive = checkout / "mvsync-state" / "state.tar.enc"
    cache = checkout.parent / "cache"
    shutil.copytree(checkout / "mvsync-state", cache)
    # The next run starts on a fresh runner: only the cache survives.
    shutil.rmtree(checkout / ".mvsync")
    shutil.rmtree(checkout / "mvsync-state")
    shutil.copytree(cache, checkout / "mvsync-state")
    posts_before = accounts.request_count("POST")

    second = runner_for(checkout).run_job("apply")

    secrets_file = checkout / ".mvsync" / "staging.secrets.yaml"
    assert [r.status for r in second.values()] == [0, 0, 0], {
        k: r.output for k, r in second.items()
    }
    assert "restored .mvsync" in second["decrypt"].output
    assert accounts.request_count("POST") == posts_before
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert len(accounts.applications(STAGING_KEY)) == 2
    assert b"mv_live_" not in archive.read_bytes()


def test_apply_job_refuses_to_run_without_the_state_passphrase(checkout: Path) -> None:
    runner = runner_for(checkout)
    runner.values["secrets.MVSYNC_STATE_PASSPHRASE"] = ""
    results = runner.run_job("apply")
    assert list(results) == ["decrypt"]
    assert results["decrypt"].status != 0
    assert "MVSYNC_STATE_PASSPHRASE" in results["decrypt"].output


def test_a_clean_pull_request_after_apply_plans_no_changes(checkout: Path) -> None:
    runner_for(checkout, "prod").run_job("apply")
    result = run_pull_request_plans(checkout, ["prod"])["prod"]
    assert (result.status, result.outputs["changes"]) == (0, "false")


def test_action_is_a_composite_that_runs_a_real_mvsync_command(checkout: Path) -> None:
    action = load_yaml(ACTION)
    [run_step] = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    assert action["runs"]["using"] == "composite"
    runner = Runner({"jobs": {}}, checkout, values={})
    step = {"run": run_step["run"], "env": {}}
    result = runner.run_step(
        step,
        {
            "MVSYNC_ARGS": "plan --env staging --detailed-exitcode",
            "MVSYNC_ALLOWED_EXIT_CODES": "0 2",
            "MINIVOICE_API_KEY_STAGING": STAGING_KEY,
        },
    )
    assert (result.status, result.outputs["exit-code"]) == (0, "2")


def test_action_fails_on_an_exit_status_not_allowed(checkout: Path) -> None:
    [run_step] = [s for s in load_yaml(ACTION)["runs"]["steps"] if s.get("id") == "run"]
    runner = Runner({"jobs": {}}, checkout, values={})
    result = runner.run_step(
        {"run": run_step["run"]},
        {"MVSYNC_ARGS": "no-such-command", "MVSYNC_ALLOWED_EXIT_CODES": "0 2"},
    )
    assert (result.status, result.outputs["exit-code"]) == (1, "1")


def test_pre_commit_hook_runs_mvsync_validate_on_the_example() -> None:
    [hook] = load_yaml(PRE_COMMIT_HOOKS)
    assert (hook["id"], hook["entry"], hook["pass_filenames"]) == (
        "mvsync-validate",
        "mvsync validate",
        False,
    )
    assert re.search(hook["files"], "deploy/mvsync.yaml")
    done = subprocess.run(
        [str(VENV_BIN / "mvsync"), *hook["entry"].split()[1:], "-f", "examples/minivoice.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
