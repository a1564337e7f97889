"""examples/demo.py, the main job in one command, run end to end as ``make demo`` runs it."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from helpers import REPO_ROOT, assert_no_secrets
from mvsync.sealing import load_identities, unseal

DEMO = REPO_ROOT / "examples" / "demo.py"


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_plans_applies_and_replans_clean_then_names_the_secrets_file(
    tmp_path: Path,
) -> None:
    done = run_demo(tmp_path)
    secrets_file = tmp_path / ".mvsync-demo" / ".mvsync" / "dev.secrets.yaml"
    commands = re.findall(r"^\$ (mvsync .*)$", done.stdout, re.MULTILINE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert commands[1:6] == [
        "mvsync plan --env dev -o plan-dev.json",
        "mvsync show plan-dev.json --format markdown > pr-comment.md",
        "mvsync apply --env dev --yes --allow-drift",
        "mvsync plan --env dev --detailed-exitcode",
        "mvsync keys list --env dev",
    ]
    assert re.fullmatch(
        r'mvsync keys show --env dev ".+" -i demo-identity.txt > key.txt', commands[6]
    )
    assert f"The record is {secrets_file} (mode 0600)" in done.stdout
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_demo_shows_a_drift_an_unmanaged_application_with_a_rename_hint_and_the_comment(
    tmp_path: Path,
) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    first_plan = done.stdout.split("$ mvsync plan --env dev -o plan-dev.json")[1].split("$ ")[0]
    assert '~ drift "Reception IVR"' in first_plan
    assert '? unmanaged "Support IVR dev"' in first_plan
    assert 'hint: likely a rename of unmanaged "Support IVR dev"' in first_plan
    comment = tmp_path / ".mvsync-demo" / "pr-comment.md"
    assert f"is in {comment}" in done.stdout
    text = comment.read_text()
    assert text.startswith("## mvsync plan") and "| dev | **2** | **1** |" in text
    assert text.index('~ drift "Reception IVR"') < text.index("+ create ")
    # Only the drift is left: the last plan exits 2 and creates nothing.
    last_plan = done.stdout.split("$ mvsync plan --env dev --detailed-exitcode")[1]
    assert "(exit 2)" in last_plan and "+ create" not in last_plan


def test_demo_shows_no_key_and_no_webhook_secret(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    secrets = YAML(typ="safe").load(
        (tmp_path / ".mvsync-demo/.mvsync/dev.secrets.yaml").read_text()
    )
    identities = load_identities(tmp_path / ".mvsync-demo" / "demo-identity.txt")
    entries = secrets["applications"].values()
    assert all("api_key" not in entry for entry in entries)
    issued = [unseal(entry["sealed_api_key"], identities) for entry in entries]
    assert len(issued) == 2  # Support IVR (dev), Appointment reminders
    # keys show put one of them, and a newline, in a 0600 file, and nowhere in the output.
    key_file = tmp_path / ".mvsync-demo" / "key.txt"
    assert key_file.read_text().removesuffix("\n") in issued
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    every_file = "".join(
        p.read_text(errors="replace")
        for p in (tmp_path / ".mvsync-demo" / ".mvsync").rglob("*")
        if p.is_file()
    )
    assert_no_secrets(every_file, extra=issued)
    assert_no_secrets(done.stdout + done.stderr, extra=issued)
    # The demo's random bearer key and webhook secret have these shapes.
    assert not re.search(r"demo_[0-9a-f]{32}|whsec_demo_[0-9a-f]{16}", done.stdout + done.stderr)


def test_demo_wipes_its_scratch_folder_before_starting(tmp_path: Path) -> None:
    stale = tmp_path / ".mvsync-demo" / "left-over.txt"
    stale.parent.mkdir()
    stale.write_text("from an earlier run")
    assert run_demo(tmp_path).returncode == 0
    assert not stale.exists()


def test_demo_fails_when_a_step_does_not_do_what_it_says(tmp_path: Path) -> None:
    # A manifest whose dev environment has nothing to create: "the plan shows the creates" fails.
    empty = tmp_path / "empty.yaml"
    empty.write_text(
        "version: 1\nenvironments:\n  dev:\n    api_url: ${MVSYNC_DEV_API_URL}\n"
        "    api_key_env: MINIVOICE_API_KEY_DEV\napplications: []\n"
    )
    done = run_demo(tmp_path, "--manifest", str(empty))
    assert done.returncode == 1
    assert "demo FAILED: the first plan shows no create" in done.stdout
    assert "emulator stopped (exit 0)" in done.stdout


def test_demo_shows_one_passing_and_one_failing_check(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    commands = re.findall(r"^\$ (mvsync .*)$", done.stdout, re.MULTILINE)
    assert commands[7] == "mvsync -f check.yaml check"
    section = done.stdout.split("$ mvsync -f check.yaml check\n", 1)[1].split("(exit 1)", 1)[0]
    assert "passed  Reception IVR (ready)  answer_url" in section
    assert "passed  Reception IVR (ready)  webhook_url" in section
    assert "answered text/html, not JSON" in section
    assert "check: 2 passed, 2 failed, 0 not configured" in section


def test_demo_delivers_each_new_key_to_its_key_sink_without_showing_it(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / ".mvsync-demo"
    secrets = YAML(typ="safe").load((folder / ".mvsync/dev.secrets.yaml").read_text())
    identities = load_identities(folder / "demo-identity.txt")
    issued = {
        name: unseal(entry["sealed_api_key"], identities)
        for name, entry in secrets["applications"].items()
    }
    # examples/sinks/to-file.py got each key on stdin and wrote it exactly, 0600.
    delivered = {path.name: path for path in (folder / "delivered").iterdir()}
    assert sorted(delivered) == ["APPOINTMENT_REMINDERS.key", "SUPPORT_IVR_DEV.key"]
    assert delivered["SUPPORT_IVR_DEV.key"].read_text() == issued["Support IVR (dev)"]
    assert delivered["APPOINTMENT_REMINDERS.key"].read_text() == issued["Appointment reminders"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in delivered.values())
    assert all(entry.get("delivered_at") for entry in secrets["applications"].values())
    assert "Key sink: 2 keys delivered to " in done.stdout
    assert "delivered/SUPPORT_IVR_DEV.key  mode 0600" in done.stdout
    assert_no_secrets(done.stdout + done.stderr, extra=issued.values())
