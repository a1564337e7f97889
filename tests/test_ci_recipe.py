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
from pyrage import x25519
from ruamel.yaml import YAML

from helpers import REPO_ROOT, assert_no_secrets
from mvsync.api.client import MiniVoiceClient
from mvsync.emulator import Emulator
from mvsync.model import CreateRequest

WORKFLOW = REPO_ROOT / "examples" / "ci" / "github-actions.yml"
ACTION = REPO_ROOT / "action.yml"
PRE_COMMIT_HOOKS = REPO_ROOT / ".pre-commit-hooks.yaml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
VENV_BIN = Path(sys.executable).parent

HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"  # the pull request's head
MERGE_SHA = "fedcba9876543210fedcba9876543210fedcba98"  # the push to main that merged it
STAGING_KEY = "mvtest_STAGING_CANARY_5d1e"
PROD_KEY = "mvtest_PROD_CANARY_9a0c"
WEBHOOK_SECRET = "whsec_CI_CANARY_61f0"

# dev is the local emulator, as in examples/minivoice.yaml: CI leaves it out. staging
# and prod reach this test's emulator through a variable (the validate job does not
# have it, so it cannot tell they are loopback too, as for any ${} it cannot expand).
MANIFEST = """\
version: 1
recipients: [{recipient}]
environments:
  dev:
    api_url: http://127.0.0.1:8787
  staging:
    api_url: ${{MVSYNC_TEST_API_URL}}
    api_key_env: MINIVOICE_API_KEY_STAGING
    key_sink: [gh, secret, set, "MINIVOICE_KEY_{{slug}}", --env, staging]
    key_sink_env: [GH_TOKEN]
  prod:
    api_url: ${{MVSYNC_TEST_API_URL}}
    api_key_env: MINIVOICE_API_KEY_PROD
    key_sink: [gh, secret, set, "MINIVOICE_KEY_{{slug}}", --env, prod]
    key_sink_env: [GH_TOKEN]
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
if args[:2] == ["secret", "set"]:  # gh secret set NAME --env ENV: the value on stdin
    assert args[3] == "--env" and len(args) == 5, args
    # A key sink's environment is its own (no FAKE_GH_STATE): the state beside fake-bin/.
    state_file = os.path.join(os.path.dirname(os.path.dirname(__file__)), "gh-state.json")
    import fcntl  # apply may run two sinks at once: one read-modify-write at a time

    value = sys.stdin.read()
    with open(state_file + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.load(open(state_file))
        secrets = state.setdefault("environment_secrets", {}).setdefault(args[4], {})
        secrets[args[2]] = {"value": value, "token": os.environ["GH_TOKEN"]}
        with open(state_file + ".tmp", "w") as out:
            json.dump(state, out)
        os.replace(state_file + ".tmp", state_file)
    sys.exit(0)
state_file = os.environ["FAKE_GH_STATE"]
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
state = json.load(open(state_file)) if os.path.exists(state_file) else {"comments": [], "calls": []}
state.setdefault("issues", [])
state.setdefault("calls", [])
state["calls"].append([method, path])
path, _, query = path.partition("?")
parts = path.split("/")
pulls = state.get("pulls", [])
if len(parts) == 5 and parts[3] == "pulls":  # repos/O/R/pulls/N
    [pull] = [p for p in pulls if p["number"] == int(parts[4])]
    print(json.dumps(pull))
elif len(parts) == 6 and parts[3] == "commits" and parts[5] == "pulls":
    print(json.dumps([p for p in pulls if parts[4] in (p["merge_commit_sha"], p["head"]["sha"])]))
elif parts[3:] == ["actions", "runs"]:
    head = dict(q.split("=") for q in query.split("&"))["head_sha"]
    runs = [r for r in state.get("runs", []) if r["head_sha"] == head]
    print(json.dumps({"workflow_runs": runs}))
elif parts[-1] == "issues":  # repos/O/R/issues: the drift issue
    if method == "GET":
        assert "labels=mvsync-drift" in query and "state=open" in query, query
        listed = [i for i in state["issues"] if i["state"] == "open"]
        print(json.dumps(listed))
    else:
        issue = json.load(sys.stdin)
        issue.update(number=len(state["issues"]) + 1, state="open")
        state["issues"].append(issue)
elif len(parts) == 5 and parts[3] == "issues" and method == "PATCH":  # an issue
    [issue] = [i for i in state["issues"] if i["number"] == int(parts[4])]
    issue.update(json.load(sys.stdin))
elif method == "GET":
    issue = int(parts[4])
    listed = [c for c in state["comments"] if c["issue"] == issue]
    # Two pages back to back, as --paginate prints them.
    print(json.dumps(listed[:1]))
    print(json.dumps(listed[1:]))
elif method == "POST" and any(i["number"] == int(parts[4]) for i in state["issues"]):
    [issue] = [i for i in state["issues"] if i["number"] == int(parts[4])]
    issue.setdefault("comments", []).append(json.load(sys.stdin)["body"])
elif method == "POST":
    body = json.load(sys.stdin)["body"]
    new_id = 1000 + len(state["comments"])
    state["comments"].append(
        {"id": new_id, "issue": int(parts[4]), "body": body,
         "user": {"login": "github-actions[bot]"}}
    )
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
            step_id = step.get("id", f"step{index}")
            results[step_id] = result
            for key, value in result.outputs.items():
                self.values[f"steps.{step_id}.outputs.{key}"] = value
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


def always_after_restore(results: dict[str, StepResult], _failed: bool) -> bool:
    return "restore" in results and results["restore"].status == 0


def github_values(env_name: str) -> dict[str, str]:
    return {
        "matrix.env": env_name,
        "secrets.MINIVOICE_API_KEY_STAGING": STAGING_KEY,
        "secrets.MINIVOICE_API_KEY_PROD": PROD_KEY,
        "secrets.MV_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "github.token": "ghs_fake_token",
        # The token with "Secrets: write" the apply step gives the key sink as GH_TOKEN.
        "secrets.MVSYNC_SECRETS_TOKEN": "github_pat_fake_secrets_write",
        "github.repository": "acme/voice",
        "github.event.pull_request.number": "42",
        "github.event.pull_request.head.sha": HEAD_SHA,
        "github.server_url": "https://github.com",
        "github.run_id": "1001",
        "vars.MVSYNC_APPLY_VARIABLES": "MV_WEBHOOK_SECRET",
        "needs.environments.outputs.names": json.dumps(["staging", "prod"]),
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
    # A team recipient: the secrets folder the workflow keeps then holds only ciphertext.
    recipient = str(x25519.Identity.generate().to_public())
    (workspace / "mvsync.yaml").write_text(MANIFEST.format(recipient=recipient), encoding="utf-8")
    (tmp_path / "emulator.json").write_text(json.dumps({"url": accounts.url}))
    # GitHub as the fake gh sees it: pull request 42 at HEAD_SHA, merged as MERGE_SHA,
    # and the run of this workflow on its head whose artifacts hold the plans.
    (tmp_path / "gh-state.json").write_text(json.dumps(GITHUB_STATE))
    return workspace


GITHUB_STATE: dict[str, Any] = {
    "comments": [],
    "calls": [],
    "pulls": [
        {
            "number": 42,
            "head": {"sha": HEAD_SHA},
            "merged_at": "2026-05-29T12:00:00Z",
            "merge_commit_sha": MERGE_SHA,
        }
    ],
    "runs": [
        {
            "id": 1001,
            "run_number": 7,
            "path": ".github/workflows/mvsync.yml",
            "status": "completed",
            "head_sha": HEAD_SHA,
        }
    ],
}


def gh_state(checkout: Path) -> dict[str, Any]:
    return dict(json.loads((checkout.parent / "gh-state.json").read_text()))


def set_gh_state(checkout: Path, **changes: Any) -> None:
    (checkout.parent / "gh-state.json").write_text(json.dumps({**gh_state(checkout), **changes}))


def runner_for(checkout: Path, env_name: str = "staging", **extra_env: str) -> Runner:
    """A runner for one job of the workflow; staging and prod reach the emulator."""
    url = json.loads((checkout.parent / "emulator.json").read_text())["url"]
    extra_env = {"MVSYNC_TEST_API_URL": url, **extra_env}
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
            "GITHUB_SHA": MERGE_SHA,
            "GITHUB_WORKFLOW_REF": "acme/voice/.github/workflows/mvsync.yml@refs/heads/main",
            **extra_env,
        },
        conditions={"always() && steps.restore.outcome == 'success'": always_after_restore},
    )


def run_pull_request_plans(
    checkout: Path, env_names: list[str], runners: dict[str, Runner] | None = None
) -> dict[str, StepResult]:
    """The plan job of each environment, then its artifact (if any) copied to plans/,
    as download-artifact would."""
    plans = checkout / "plans"
    plans.mkdir(exist_ok=True)
    results = {}
    for env_name in env_names:
        runner = (runners or {}).get(env_name) or runner_for(checkout, env_name)
        results[env_name] = runner.run_job("plan")["plan"]
        saved = checkout / f"plan-{env_name}.json"
        if saved.exists():
            shutil.copy(saved, plans)
            saved.unlink()  # a later job of the matrix runs on a fresh runner
        else:
            (plans / saved.name).unlink(missing_ok=True)
    return results


def merge_and_apply(checkout: Path, env_name: str = "staging") -> dict[str, StepResult]:
    """The pull request's plan of ``env_name`` (its artifact), then the apply job on the
    push that merged it, with that artifact downloaded to reviewed/ (download-artifact)."""
    run_pull_request_plans(checkout, [env_name])
    reviewed = checkout / "reviewed"
    reviewed.mkdir(exist_ok=True)
    shutil.copy(checkout / "plans" / f"plan-{env_name}.json", reviewed)
    try:
        return runner_for(checkout, env_name).run_job("apply")
    finally:
        shutil.rmtree(reviewed)  # the next job runs on a fresh runner


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


def test_validate_job_lists_the_environments_as_a_json_matrix_without_loopback(
    checkout: Path,
) -> None:
    runner = runner_for(checkout)
    del runner.extra_env["MVSYNC_TEST_API_URL"]  # the validate job has no such variable
    results = runner.run_job("environments")
    assert all(result.status == 0 for result in results.values()), results
    assert json.loads(results["list"].outputs["names"]) == ["staging", "prod"]  # no dev


def test_plan_job_succeeds_with_pending_changes_and_says_so(checkout: Path) -> None:
    result = run_pull_request_plans(checkout, ["staging"])["staging"]
    assert (result.status, result.outputs["exit-code"], result.outputs["changes"]) == (
        0,
        "2",
        "true",
    )
    saved = json.loads((checkout / "plans" / "plan-staging.json").read_text())
    assert saved["kind"] == "mvsync-plan"
    assert {c["name"] for c in saved["environments"][0]["changes"]} == {
        "Support IVR",
        "Receptionist",
    }


def test_plan_job_fails_on_an_error_and_leaves_no_plan(checkout: Path) -> None:
    runner = runner_for(checkout, "prod")
    runner.values["secrets.MINIVOICE_API_KEY_PROD"] = ""  # a fork's pull request: no secrets
    result = runner.run_job("plan")["plan"]
    assert (result.status, result.outputs["exit-code"]) == (1, "1")
    assert not (checkout / "plan-prod.json").exists()


def test_comment_job_posts_one_comment_and_updates_it_on_the_next_push(checkout: Path) -> None:
    state_file = checkout.parent / "gh-state.json"
    set_gh_state(
        checkout, comments=[{"id": 7, "issue": 42, "body": "LGTM", "user": {"login": "a"}}]
    )
    run_pull_request_plans(checkout, ["staging", "prod"])
    first = runner_for(checkout).run_job("comment")
    run_pull_request_plans(checkout, ["staging", "prod"])
    second = runner_for(checkout).run_job("comment")
    state = json.loads(state_file.read_text())
    ours = [c for c in state["comments"] if c["body"].startswith("<!-- mvsync-plan -->")]
    assert [r.status for r in (*first.values(), *second.values())] == [0, 0, 0, 0]
    assert len(ours) == 1
    assert [m for m, _ in state["calls"] if m != "GET"] == ["POST", "PATCH"]
    body = ours[0]["body"]
    # One document from both saved plans (mvsync show): one heading, one table.
    assert body.count("## mvsync plan") == 1
    assert body.count("| environment |") == 1
    assert "| staging | **2** |" in body and "| prod | **2** |" in body
    assert body.index("### staging") < body.index("### prod")
    # At which commit (the pull request's head), and what merging does.
    assert f"Planned at commit `{HEAD_SHA[:12]}` on " in body
    assert "**Merging applies staging, then prod: 4 creates (2 in staging, 2 in prod)**" in body
    assert "artifacts of [this run](https://github.com/acme/voice/actions/runs/1001)" in body
    assert "text plan" not in body
    assert_no_secrets(body, extra=[STAGING_KEY, PROD_KEY, WEBHOOK_SECRET])


def test_comment_names_an_environment_whose_plan_failed(checkout: Path) -> None:
    broken = runner_for(checkout, "prod")
    broken.values["secrets.MINIVOICE_API_KEY_PROD"] = ""
    run_pull_request_plans(checkout, ["staging", "prod"], runners={"prod": broken})
    results = runner_for(checkout).run_job("comment")
    assert [r.status for r in results.values()] == [0, 0], {k: r.output for k, r in results.items()}
    [comment] = json.loads((checkout.parent / "gh-state.json").read_text())["comments"]
    assert "### staging" in comment["body"]
    assert ":x: `mvsync plan` failed for **prod**: see its job log." in comment["body"]


def test_comment_of_a_plan_with_drift_shows_it_before_the_creates(
    checkout: Path, accounts: Emulator
) -> None:
    with MiniVoiceClient(accounts.url, PROD_KEY) as client:
        client.create_application(
            CreateRequest(name="Support IVR", answer_url="https://old.example.com/answer")
        )
    run_pull_request_plans(checkout, ["staging", "prod"])
    runner_for(checkout).run_job("comment")
    [comment] = json.loads((checkout.parent / "gh-state.json").read_text())["comments"]
    prod = comment["body"].split("### prod")[1]
    assert prod.index('~ drift "Support IVR"') < prod.index('+ create "Receptionist"')


def test_apply_job_creates_then_a_later_run_restores_the_secrets_and_creates_nothing(
    checkout: Path, accounts: Emulator
) -> None:
    first = merge_and_apply(checkout)
    assert [r.status for r in first.values()] == [0, 0, 0, 0], {
        k: r.output for k, r in first.items()
    }
    archive = checkout / "mvsync-state" / "state.tar"
    cache = checkout.parent / "cache"
    shutil.copytree(checkout / "mvsync-state", cache)
    # The next run starts on a fresh runner: only the cache survives.
    shutil.rmtree(checkout / ".mvsync")
    shutil.rmtree(checkout / "mvsync-state")
    shutil.copytree(cache, checkout / "mvsync-state")
    posts_before = accounts.request_count("POST")

    second = merge_and_apply(checkout)

    secrets_file = checkout / ".mvsync" / "staging.secrets.yaml"
    assert [r.status for r in second.values()] == [0, 0, 0, 0], {
        k: r.output for k, r in second.items()
    }
    assert "restored .mvsync" in second["restore"].output
    assert accounts.request_count("POST") == posts_before
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert len(accounts.applications(STAGING_KEY)) == 2
    # The saved folder holds only ciphertext: no issued key in it, in any form.
    issued = accounts.issued_keys(STAGING_KEY).values()
    assert issued
    assert_no_secrets(archive.read_bytes().decode("latin-1"), extra=issued)
    assert b"-----BEGIN AGE ENCRYPTED FILE-----" in archive.read_bytes()


def test_apply_job_hands_each_new_key_to_a_github_environment_secret(
    checkout: Path, accounts: Emulator
) -> None:
    results = merge_and_apply(checkout)
    assert results["apply"].status == 0, results["apply"].output
    keys = accounts.issued_keys(STAGING_KEY)
    by_name = {app["name"]: keys[app["id"]] for app in accounts.applications(STAGING_KEY)}
    # gh secret set got each key on stdin, with the apply step's token, not GITHUB_TOKEN.
    assert gh_state(checkout)["environment_secrets"] == {
        "staging": {
            "MINIVOICE_KEY_SUPPORT_IVR": {
                "value": by_name["Support IVR"],
                "token": "github_pat_fake_secrets_write",
            },
            "MINIVOICE_KEY_RECEPTIONIST": {
                "value": by_name["Receptionist"],
                "token": "github_pat_fake_secrets_write",
            },
        }
    }
    assert "Key sink: 2 keys delivered to gh secret set" in results["apply"].output
    assert_no_secrets(results["apply"].output, extra=by_name.values())


def test_apply_job_refuses_to_save_a_folder_that_holds_a_plain_key(checkout: Path) -> None:
    manifest = checkout / "mvsync.yaml"
    manifest.write_text(
        "\n".join(line for line in manifest.read_text().splitlines() if "recipients" not in line)
        + "\n"
    )
    results = merge_and_apply(checkout)
    assert results["apply"].status == 0
    assert results["save"].status != 0
    assert "holds plain keys" in results["save"].output
    assert not (checkout / "mvsync-state" / "state.tar").exists()


def test_a_clean_pull_request_after_apply_plans_no_changes(checkout: Path) -> None:
    merge_and_apply(checkout, "prod")
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
            "MVSYNC_TEST_API_URL": json.loads((checkout.parent / "emulator.json").read_text())[
                "url"
            ],
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


def test_action_takes_one_argument_a_line_and_writes_the_output_to_a_file(
    checkout: Path,
) -> None:
    [run_step] = [s for s in load_yaml(ACTION)["runs"]["steps"] if s.get("id") == "run"]
    folder = checkout / "saved plans"
    folder.mkdir()
    runner_for(checkout).run_job("plan")
    shutil.move(checkout / "plan-staging.json", folder / "plan of staging.json")
    runner = Runner({"jobs": {}}, checkout, values={})
    result = runner.run_step(
        {"run": run_step["run"]},
        {
            "MVSYNC_ARG_LINES": "show\nsaved plans/plan of staging.json\n--format\nmarkdown\n",
            "MVSYNC_OUTPUT_FILE": "the comment.md",
            "MVSYNC_ALLOWED_EXIT_CODES": "0",
        },
    )
    assert (result.status, result.outputs["exit-code"]) == (0, "0"), result.output
    assert result.outputs["output-file"] == "the comment.md"
    written = (checkout / "the comment.md").read_text()
    assert written.startswith("## mvsync plan")
    assert written in result.output  # still shown in the log


def test_every_action_the_recipes_use_is_pinned_by_commit() -> None:
    uses = [
        step["uses"]
        for document in (load_yaml(WORKFLOW)["jobs"].values(), [load_yaml(ACTION)["runs"]])
        for job in document
        for step in job["steps"]
        if "uses" in step
    ]
    assert len(uses) >= 10
    assert [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u)] == []


def test_the_comment_job_is_one_at_a_time_per_pull_request() -> None:
    concurrency = load_yaml(WORKFLOW)["jobs"]["comment"]["concurrency"]
    assert concurrency["group"] == "mvsync-comment-${{ github.event.pull_request.number }}"


def test_apply_runs_staging_before_prod_one_at_a_time_and_allows_drift() -> None:
    job = load_yaml(WORKFLOW)["jobs"]["apply"]
    assert (job["strategy"]["max-parallel"], job["strategy"]["fail-fast"]) == (1, True)
    [apply_step] = [s for s in job["steps"] if s.get("id") == "apply"]
    assert "--allow-drift" in apply_step["run"]


def test_plan_jobs_and_the_drift_check_read_keys_from_an_environment_without_reviewers() -> None:
    workflow = load_yaml(WORKFLOW)
    assert workflow["jobs"]["plan"]["environment"] == "mvsync-plan"
    assert workflow["jobs"]["drift"]["environment"] == "mvsync-plan"
    assert "WITHOUT required reviewers" in WORKFLOW.read_text()
    triggers = workflow["on"]
    assert "schedule" in triggers and "workflow_dispatch" in triggers


def test_pip_is_cached_wherever_mvsync_is_installed() -> None:
    for name, job in load_yaml(WORKFLOW)["jobs"].items():
        steps = job["steps"]
        installs = [i for i, s in enumerate(steps) if s.get("id") == "install"]
        if not installs or name == "comment":
            continue
        [setup] = [s for s in steps[: installs[0]] if "setup-python" in s.get("uses", "")]
        assert setup["with"]["cache"] == "pip", name


# -- the drift check -----------------------------------------------------------------------


def drift_issues(checkout: Path) -> list[dict[str, Any]]:
    state_file = checkout.parent / "gh-state.json"
    return json.loads(state_file.read_text())["issues"] if state_file.exists() else []


def test_drift_check_opens_an_issue_updates_it_then_closes_it(
    checkout: Path, accounts: Emulator
) -> None:
    with MiniVoiceClient(accounts.url, PROD_KEY) as client:
        client.create_application(
            CreateRequest(
                name="Support IVR",
                answer_url="https://old.example.com/answer",
                webhook_url="https://crm.example.com/minivoice/webhooks",
            )
        )
    first = runner_for(checkout).run_job("drift")
    assert [r.status for r in first.values()] == [0, 0], {k: r.output for k, r in first.items()}
    assert first["check"].outputs["exit-code"] == "2"
    [issue] = drift_issues(checkout)
    assert (issue["state"], issue["labels"]) == ("open", ["mvsync-drift"])
    assert '~ drift "Support IVR"' in issue["body"]
    assert issue["body"].count("| environment |") == 1
    assert_no_secrets(issue["body"], extra=[STAGING_KEY, PROD_KEY, WEBHOOK_SECRET])

    runner_for(checkout).run_job("drift")  # still differs: the same issue, updated
    assert len(drift_issues(checkout)) == 1

    # Make every environment equal the manifest: the manifest takes prod's remote value
    # (the API cannot update), then apply creates the rest.
    manifest = checkout / "mvsync.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "    answer_url: https://example.com/minivoice/answer\n",
            "    answer_url: https://example.com/minivoice/answer\n"
            "    overrides:\n      prod: {answer_url: 'https://old.example.com/answer'}\n",
        )
    )
    for env_name in ("staging", "prod"):
        applied = merge_and_apply(checkout, env_name)
        assert applied["apply"].status == 0, applied["apply"].output
        shutil.rmtree(checkout / "mvsync-state")
    last = runner_for(checkout).run_job("drift")
    assert last["check"].outputs["exit-code"] == "0"
    [issue] = drift_issues(checkout)
    assert issue["state"] == "closed"
    assert "equals the manifest again" in issue["comments"][-1]


# -- the apply on merge applies the reviewed plan ------------------------------------------


def test_apply_on_merge_applies_the_plan_the_pull_request_showed(checkout: Path) -> None:
    results = merge_and_apply(checkout)
    assert results["apply"].status == 0, results["apply"].output
    assert "pull request #42, head 0123456789ab: the plans of run 1001" in (
        results["reviewed"].output
    )
    [apply_step] = [
        s for s in load_yaml(WORKFLOW)["jobs"]["apply"]["steps"] if s.get("id") == "apply"
    ]
    assert '--plan "$plan"' in apply_step["run"]


def test_apply_on_merge_refuses_a_plan_made_before_the_remote_changed(
    checkout: Path, accounts: Emulator
) -> None:
    run_pull_request_plans(checkout, ["staging"])
    # After the review, someone creates one of the applications in the console.
    with MiniVoiceClient(accounts.url, STAGING_KEY) as client:
        client.create_application(
            CreateRequest(name="Support IVR", answer_url="https://example.com/minivoice/answer")
        )
    posts = accounts.request_count("POST")
    reviewed = checkout / "reviewed"
    reviewed.mkdir()
    shutil.copy(checkout / "plans" / "plan-staging.json", reviewed)
    result = runner_for(checkout).run_job("apply")["apply"]
    assert result.status == 1
    assert "::error::the plan reviewed in pull request #42 is stale for staging" in result.output
    assert "Re-plan" in result.output
    assert accounts.request_count("POST") == posts  # nothing created


def test_apply_on_merge_refuses_a_plan_of_another_manifest(
    checkout: Path, accounts: Emulator
) -> None:
    run_pull_request_plans(checkout, ["staging"])
    manifest = checkout / "mvsync.yaml"  # another pull request merged first
    manifest.write_text(
        manifest.read_text() + "  - name: Night line\n    answer_url: https://e.com/night\n"
    )
    (checkout / "reviewed").mkdir()
    shutil.copy(checkout / "plans" / "plan-staging.json", checkout / "reviewed")
    result = runner_for(checkout).run_job("apply")["apply"]
    assert (result.status, "is stale for staging" in result.output) == (1, True), result.output
    assert accounts.request_count("POST") == 0


def test_a_push_that_merged_no_pull_request_applies_nothing(
    checkout: Path, accounts: Emulator
) -> None:
    set_gh_state(checkout, pulls=[])  # pushed to main directly
    results = runner_for(checkout).run_job("apply")
    assert "merged no pull request" in results["reviewed"].output
    assert results["apply"].status == 1
    assert "no reviewed plan of staging for this commit" in results["apply"].output
    assert accounts.request_count("POST") == 0


# -- the comment: found by marker and author, never overwritten by an older run -----------

MARKER = "<!-- mvsync-plan -->"


def test_a_comment_with_the_marker_by_someone_else_is_left_alone(checkout: Path) -> None:
    forged = {"id": 7, "issue": 42, "body": f"{MARKER}\nfake plan", "user": {"login": "mallory"}}
    set_gh_state(checkout, comments=[forged])
    run_pull_request_plans(checkout, ["staging"])
    results = runner_for(checkout).run_job("comment")
    assert [r.status for r in results.values()] == [0, 0]
    comments = gh_state(checkout)["comments"]
    assert comments[0] == forged
    [ours] = [c for c in comments if c["user"]["login"] == "github-actions[bot]"]
    assert ours["body"].startswith(f"{MARKER}\n<!-- mvsync-head: {HEAD_SHA} -->\n## mvsync plan")


def test_an_older_run_never_overwrites_the_comment_of_a_newer_push(checkout: Path) -> None:
    run_pull_request_plans(checkout, ["staging"])
    runner_for(checkout).run_job("comment")
    newer = "aaaabbbbccccddddeeeeffff0000111122223333"
    state = gh_state(checkout)
    state["pulls"][0]["head"]["sha"] = newer  # pushed again while this run was going
    set_gh_state(checkout, pulls=state["pulls"], calls=[])
    results = runner_for(checkout).run_job("comment")
    [post] = [r for r in results.values() if "not posted" in r.output]
    assert post.status == 0
    assert "the pull request's head is now aaaabbbbcccc" in post.output
    assert [m for m, _ in gh_state(checkout)["calls"] if m != "GET"] == []


# -- each recipe, parsed: the defects of #22 item 5 -----------------------------------------

RECIPES = sorted((REPO_ROOT / "examples" / "ci").glob("*.yml"))
# The recipes of the whole plan/apply workflow (github-actions-check.yml runs only check).
PLAN_RECIPES = [p for p in RECIPES if "plan" in load_yaml(p)["jobs"]]


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_upload_artifact_step_overwrites(recipe: Path) -> None:
    # A re-run of a failed job is the same run: without overwrite its upload fails.
    uploads = [s for s in _steps(load_yaml(recipe)) if "upload-artifact" in s.get("uses", "")]
    assert uploads
    assert [s for s in uploads if s.get("with", {}).get("overwrite") is not True] == []


@pytest.mark.parametrize("recipe", PLAN_RECIPES, ids=lambda p: p.name)
def test_the_pull_request_jobs_are_the_same_in_every_recipe(recipe: Path) -> None:
    # So the behaviour tests above (run on github-actions.yml) hold for each recipe.
    ours, theirs = load_yaml(WORKFLOW)["jobs"], load_yaml(recipe)["jobs"]
    # Only the database's read-only URL may be added to the plan job's environment.
    theirs["plan"]["env"].pop("MVSYNC_STATE_URL", None)
    for name in ("environments", "plan", "comment", "drift"):
        assert theirs[name] == ours[name], name
    reviewed = [s for s in theirs["apply"]["steps"] if s.get("id") == "reviewed"]
    assert reviewed == [s for s in ours["apply"]["steps"] if s.get("id") == "reviewed"]
    [apply_step] = [s for s in theirs["apply"]["steps"] if s.get("id") == "apply"]
    assert '--plan "$plan"' in apply_step["run"] and "Re-plan" in apply_step["run"]
    assert theirs["apply"]["permissions"]["actions"] == "read"


@pytest.mark.parametrize("recipe", PLAN_RECIPES, ids=lambda p: p.name)
def test_every_concurrency_comment_says_what_github_does(recipe: Path) -> None:
    lines = recipe.read_text().splitlines()
    places = [i for i, line in enumerate(lines) if line.strip() == "concurrency:"]
    assert len(places) >= 2
    for index in places:
        if "mvsync-drift" in lines[index + 1]:
            continue  # a daily job: no pushes to queue
        above = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            above.append(line)
        said = " ".join(above)
        assert "one pending" in said and "third push cancels" in said, lines[index + 1]


@pytest.mark.parametrize("recipe", PLAN_RECIPES, ids=lambda p: p.name)
def test_the_drift_check_runs_only_from_the_default_branch(recipe: Path) -> None:
    condition = load_yaml(recipe)["jobs"]["drift"]["if"]
    assert condition == (
        "github.event_name == 'schedule' || (github.event_name == 'workflow_dispatch' "
        "&& github.ref_name == github.event.repository.default_branch)"
    )


@pytest.mark.parametrize("recipe", PLAN_RECIPES, ids=lambda p: p.name)
def test_fork_pull_requests_and_the_plan_key_are_said_plainly(recipe: Path) -> None:
    jobs = load_yaml(recipe)["jobs"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repo in jobs["plan"]["if"] and same_repo in jobs["comment"]["if"]
    text = " ".join(line.strip("# ") for line in WORKFLOW.read_text().splitlines())
    assert "cannot post a comment" in text and "`pull_request_target` is not the answer" in text
    assert "a FULL key" in text and "any branch of this repository can read it" in text
    if recipe != WORKFLOW:
        assert "a FULL key any branch of" in " ".join(recipe.read_text().split())
