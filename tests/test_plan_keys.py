"""Key status in plans (SPEC section 4): held, not_captured, missing; counted, never a change.

An application created outside mvsync (here: straight in the emulator, as in the
console) has no ledger entry: the plan reports it ``missing`` in JSON, text and Markdown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from mvsync.model import DesiredApp
from mvsync.planner import Action, Change, EnvironmentPlan, Plan, with_key_status
from mvsync.render import render_markdown, render_text
from test_cli_apply import cli_env, create_out_of_band, run, secrets_path, write_manifest


def add_to_manifest(folder: Path, name: str, answer_url: str = "https://x.example/a") -> None:
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        manifest.read_text()
        + f"  - name: {name}\n    answer_url: {answer_url}\n    webhook_url: null\n"
    )


def plan_json(folder: Path, *args: str) -> dict[str, object]:
    done = run(folder, "plan", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    document: dict[str, object] = json.loads(done.stdout)
    return document


def env_of(document: dict[str, object]) -> dict[str, object]:
    environments = document["environments"]
    assert isinstance(environments, list)
    env: dict[str, object] = environments[0]
    return env


def test_an_app_created_outside_mvsync_is_missing_in_json_text_and_markdown(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=2)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    add_to_manifest(tmp_path, "Console IVR")
    create_out_of_band(emulator, "Console IVR")
    console_id = next(
        app["id"] for app in emulator.applications(TEST_API_KEY) if app["name"] == "Console IVR"
    )

    env = env_of(plan_json(tmp_path))
    text = run(tmp_path, "plan")
    markdown = run(tmp_path, "plan", "--format", "markdown")
    detailed = run(tmp_path, "plan", "--detailed-exitcode")

    changes = env["changes"]
    assert isinstance(changes, list)
    keyed = {c["name"]: c["key"] for c in changes}
    assert keyed == {"App 0": "held", "App 1": "held", "Console IVR": "missing"}
    assert env["summary"] == {
        "create": 0,
        "drift": 0,
        "unchanged": 3,
        "unmanaged": 0,
        "ambiguous": 0,
        "key_missing": 1,
    }
    for done in (text, markdown):
        assert done.returncode == 0, done.stderr
        assert f'missing       "Console IVR" ({console_id})' in done.stdout
        assert '"App 0"' not in done.stdout  # unchanged and held: only counted
    assert "1 key missing" in text.stdout
    assert "**Key not held** (1)" in markdown.stdout
    assert "| key missing |" in markdown.stdout
    # A missing key is not a change.
    assert detailed.returncode == 0, detailed.stdout
    assert_no_secrets(
        text.stdout + markdown.stdout + json.dumps(env),
        extra=emulator.issued_keys(TEST_API_KEY).values(),
    )


def test_without_a_ledger_the_plan_has_no_key_field(tmp_path: Path, emulator: Emulator) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    create_out_of_band(emulator, "App 0")

    env = env_of(plan_json(tmp_path))
    text = run(tmp_path, "plan")

    assert not secrets_path(tmp_path).exists()
    changes = env["changes"]
    assert isinstance(changes, list) and changes
    assert all("key" not in change for change in changes)
    summary = env["summary"]
    assert isinstance(summary, dict) and "key_missing" not in summary
    assert "key" not in text.stdout.replace("keys", "")


def test_a_not_captured_entry_is_reported_and_counted(tmp_path: Path, emulator: Emulator) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    create_out_of_band(emulator, "App 0")
    app_id = emulator.applications(TEST_API_KEY)[0]["id"]
    path = secrets_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    path.write_text(
        f'environment: "dev"\napi_url: "{emulator.url}"\napplications:\n'
        f'  "App 0":\n    id: "{app_id}"\n    key_captured: false\n'
    )
    path.chmod(0o600)

    env = env_of(plan_json(tmp_path))
    text = run(tmp_path, "plan")

    changes = env["changes"]
    assert isinstance(changes, list)
    assert [c.get("key") for c in changes] == ["not_captured"]
    summary = env["summary"]
    assert isinstance(summary, dict) and summary["key_missing"] == 1
    assert f'not captured  "App 0" ({app_id})' in text.stdout


def test_an_unreadable_ledger_is_a_warning_not_an_error(tmp_path: Path, emulator: Emulator) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    secrets_path(tmp_path).chmod(0o644)

    env = env_of(plan_json(tmp_path))

    assert all("key" not in c for c in env["changes"])  # type: ignore[union-attr]
    warnings = env.get("warnings")
    assert isinstance(warnings, list) and "key status unknown" in warnings[0]
    assert_no_secrets(json.dumps(env), extra=emulator.issued_keys(TEST_API_KEY).values())


def test_a_saved_plan_keeps_the_key_field_for_show_and_apply_still_accepts_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    add_to_manifest(tmp_path, "Console IVR")
    create_out_of_band(emulator, "Console IVR")
    add_to_manifest(tmp_path, "New IVR", "https://x.example/new")
    saved = tmp_path / "plan.json"

    made = run(tmp_path, "plan", "-o", str(saved))
    shown = run(tmp_path, "show", str(saved), "--format", "json")
    shown_md = run(tmp_path, "show", str(saved), "--format", "markdown")
    applied = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(saved))

    assert made.returncode == 0, made.stderr
    document = json.loads(saved.read_text())
    keyed = {c["name"]: c.get("key") for c in document["environments"][0]["changes"]}
    assert keyed == {"App 0": "held", "Console IVR": "missing", "New IVR": None}
    assert shown.returncode == 0, shown.stderr
    assert env_of(json.loads(shown.stdout))["summary"]["key_missing"] == 1  # type: ignore[index]
    assert '"Console IVR"' in shown_md.stdout and "Key not held" in shown_md.stdout
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "New IVR" in {app["name"] for app in emulator.applications(TEST_API_KEY)}


def test_with_key_status_is_pure_and_keys_only_unchanged_and_drift() -> None:
    want = DesiredApp("A", "https://a.example")
    plan = EnvironmentPlan(
        name="dev",
        api_url="https://api.example",
        changes=(
            Change(Action.CREATE, "C", desired=want),
            Change(Action.DRIFT, "D", id="app_d", desired=want),
            Change(Action.UNCHANGED, "H", id="app_h", desired=want),
            Change(Action.UNCHANGED, "N", id="app_n", desired=want),
            Change(Action.UNMANAGED, "U", id="app_u"),
        ),
        manifest_fingerprint="0" * 64,
        remote_fingerprint="0" * 64,
    )

    keyed = with_key_status(plan, {"app_h": True, "app_n": False, "app_u": True})

    assert [c.key for c in keyed.changes] == [None, "missing", "held", "not_captured", None]
    assert keyed.summary["key_missing"] == 2 and "key_missing" not in plan.summary
    assert all(c.key is None for c in plan.changes)
    assert keyed.has_changes == plan.has_changes
    assert (keyed.manifest_fingerprint, keyed.remote_fingerprint) == (
        plan.manifest_fingerprint,
        plan.remote_fingerprint,
    )


def test_markdown_lists_at_most_ten_keys_not_held_and_counts_the_rest() -> None:
    import io

    want = DesiredApp("A", "https://a.example")
    plan = EnvironmentPlan(
        name="dev",
        api_url="https://api.example",
        changes=tuple(
            Change(Action.UNCHANGED, f"App {n:03}", id=f"app_{n}", desired=want) for n in range(500)
        ),
        manifest_fingerprint="0" * 64,
        remote_fingerprint="0" * 64,
    )
    keyed = Plan((with_key_status(plan, {}),))
    markdown, text = io.StringIO(), io.StringIO()

    render_markdown(keyed, markdown)
    render_text(keyed, text)

    assert markdown.getvalue().count('missing       "App ') == 10
    assert "… and 490 more" in markdown.getvalue()
    assert text.getvalue().count('missing       "App ') == 500


def _plan_loading(folder: Path) -> tuple[str, list[str]]:
    """``mvsync plan --format json`` in a fresh interpreter: its output, and which of the
    ledger's modules it imported."""
    code = (
        "import sys\n"
        "from mvsync.cli import main\n"
        "try:\n"
        f"    main(['-f', {str(folder / 'mvsync.yaml')!r}, 'plan', '--format', 'json'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "ledger = ('mvsync.apply.ledger', 'mvsync.store.keys', 'pyrage')\n"
        "print('LOADED ' + ','.join(m for m in ledger if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    out, _, loaded = done.stdout.rpartition("LOADED ")
    return out, [name for name in loaded.strip().split(",") if name]


def test_without_a_secrets_folder_the_plan_loads_no_ledger_module(
    tmp_path: Path, emulator: Emulator
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    create_out_of_band(emulator, "App 0")

    out, loaded = _plan_loading(tmp_path)

    assert not secrets_path(tmp_path).parent.exists()
    assert loaded == []
    changes = env_of(json.loads(out))["changes"]
    assert isinstance(changes, list) and changes
    assert all("key" not in change for change in changes)


def test_a_folder_with_only_a_journal_still_gives_key_status(
    tmp_path: Path, emulator: Emulator
) -> None:
    # The fast path skips the ledger only when the folder is absent: a journal a killed
    # run left (no secrets file yet) is a ledger, and the plan reads it.
    write_manifest(tmp_path, emulator.url, count=1)
    create_out_of_band(emulator, "App 0")
    secrets = secrets_path(tmp_path)
    secrets.parent.mkdir()
    journal = secrets.with_name(secrets.name + ".journal")
    journal.write_text("")
    journal.chmod(0o600)

    out, loaded = _plan_loading(tmp_path)

    assert "mvsync.apply.ledger" in loaded
    changes = env_of(json.loads(out))["changes"]
    assert isinstance(changes, list)
    assert [change["key"] for change in changes] == ["missing"]


def test_a_plan_not_saved_computes_no_fingerprint_and_a_saved_one_does(
    tmp_path: Path, emulator: Emulator
) -> None:
    # The fast path of ``mvsync plan`` without -o: the fingerprints' JSON and hashes are
    # skipped (here they would raise); with -o the saved plan holds the real ones.
    write_manifest(tmp_path, emulator.url, count=2)
    create_out_of_band(emulator, "App 0")
    manifest = str(tmp_path / "mvsync.yaml")
    saved = tmp_path / "plan.json"
    code = (
        "import sys\n"
        "from mvsync import planner\n"
        "real = planner.manifest_fingerprint\n"
        "def refuse(*_args):\n"
        "    raise AssertionError('a fingerprint was computed')\n"
        "planner.manifest_fingerprint = planner.remote_fingerprint = refuse\n"
        "from mvsync.cli import main\n"
        "try:\n"
        f"    main(['-f', {manifest!r}, 'plan', '--format', 'json'])\n"
        "except SystemExit as done:\n"
        "    print('STATUS', done.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert done.stdout.splitlines()[-1] == "STATUS 0", done.stderr
    shown = json.loads(done.stdout.rpartition("STATUS")[0])
    changes = env_of(shown)["changes"]
    assert isinstance(changes, list)
    assert sorted(c["name"] for c in changes) == ["App 0", "App 1"]
    assert run(tmp_path, "plan", "-o", str(saved)).returncode == 0
    fingerprints = json.loads(saved.read_text())["environments"][0]
    assert len(fingerprints["manifest_fingerprint"]) == 64
    assert len(fingerprints["remote_fingerprint"]) == 64
