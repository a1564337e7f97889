"""``mvsync import`` keeps what it cannot see remotely, as real processes: ``--into FILE``
keeps FILE's recipients, the environment's settings and defaults; a ``webhook_url`` that
every application shares is written once, in defaults. Each output validates and plans
as all-unchanged against the emulator it was read from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyrage import x25519

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator
from test_cli_import import HOOKS, create

OTHER_HOOKS = "https://other.example.com/hooks"


def mvsync(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MV", "MINIVOICE"))}
    env.update(NO_COLOR="1", MV_KEY=TEST_API_KEY, **variables)
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert_no_secrets(done.stdout + done.stderr)
    return done


def plans_all_unchanged(folder: Path, manifest: Path, count: int, **variables: str) -> None:
    assert mvsync(folder, "validate", "-f", str(manifest)).returncode == 0
    done = mvsync(
        folder, "plan", "-f", str(manifest), "--format", "json", "--detailed-exitcode", **variables
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [environment] = json.loads(done.stdout)["environments"]
    assert environment["summary"]["unchanged"] == count, environment


def bare_manifest(folder: Path, url: str) -> Path:
    path = folder / "mvsync.yaml"
    path.write_text(
        f"version: 1\nenvironments:\n  prod:\n    api_url: {url}\n    api_key_env: MV_KEY\n"
        "applications: []\n"
    )
    return path


def test_a_webhook_url_every_application_shares_goes_into_defaults(
    emulator: Emulator, tmp_path: Path
) -> None:
    create(
        emulator,
        ("Support IVR", "https://example.com/a", HOOKS),
        ("Sales IVR", "https://example.com/b", HOOKS),
        ("Night IVR", "https://example.com/c", HOOKS),
    )
    bare_manifest(tmp_path, emulator.url)
    done = mvsync(tmp_path, "import", "--env", "prod", "-o", "imported.yaml")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "imported.yaml").read_text()
    assert text.count(HOOKS) == 1
    assert text.count("${MV_WEBHOOK_SECRET}") == 2  # the header's mention, and defaults
    loaded = yaml.safe_load(text)
    assert loaded["defaults"] == {"webhook_url": HOOKS, "webhook_secret": "${MV_WEBHOOK_SECRET}"}
    assert all(set(app) == {"name", "answer_url"} for app in loaded["applications"])
    plans_all_unchanged(tmp_path, tmp_path / "imported.yaml", 3)


def test_webhook_urls_that_differ_stay_with_their_applications(
    emulator: Emulator, tmp_path: Path
) -> None:
    create(
        emulator,
        ("Support IVR", "https://example.com/a", HOOKS),
        ("Sales IVR", "https://example.com/b", None),
    )
    bare_manifest(tmp_path, emulator.url)
    done = mvsync(tmp_path, "import", "--env", "prod")
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load(done.stdout)
    assert "defaults" not in loaded
    by_name = {app["name"]: app for app in loaded["applications"]}
    assert by_name["Support IVR"]["webhook_url"] == HOOKS
    assert "webhook_url" not in by_name["Sales IVR"]


def base_manifest(folder: Path, url: str, team: str, offline: str) -> Path:
    path = folder / "mvsync.yaml"
    path.write_text(
        "version: 1\n"
        "recipients:\n"
        f"  - {team}   # platform team\n"
        f"  - {offline}   # break-glass\n"
        "environments:\n"
        "  staging:\n"
        "    api_url: http://127.0.0.1:9\n"
        "  prod:\n"
        f"    api_url: {url}\n"
        "    api_key_env: MV_KEY\n"
        "    secrets_file: keys/prod.secrets.yaml\n"
        f"    recipients: [{team}]\n"
        "defaults:\n"
        f"  webhook_url: {HOOKS}\n"
        "  webhook_secret: ${CRM_WEBHOOK_SECRET}\n"
        "applications:\n"
        "  - name: Not yet created\n"
        "    answer_url: https://example.com/new\n"
    )
    return path


def test_into_keeps_recipients_settings_and_defaults_and_plans_unchanged(
    emulator: Emulator, tmp_path: Path
) -> None:
    team, offline = (str(x25519.Identity.generate().to_public()) for _ in range(2))
    base = base_manifest(tmp_path, emulator.url, team, offline)
    create(
        emulator,
        ("Support IVR", "https://example.com/a", HOOKS),
        ("Sales IVR", "https://example.com/b", None),
        ("Night IVR", "https://example.com/c", OTHER_HOOKS),
    )
    done = mvsync(tmp_path, "import", "--env", "prod", "--into", str(base), "-o", "new.yaml")
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load((tmp_path / "new.yaml").read_text())
    assert loaded["recipients"] == [team, offline]
    assert loaded["environments"] == {
        "prod": {
            "api_url": emulator.url,
            "api_key_env": "MV_KEY",
            "secrets_file": "keys/prod.secrets.yaml",
            "recipients": [team],
        }
    }
    assert loaded["defaults"] == {
        "webhook_url": HOOKS,
        "webhook_secret": "${CRM_WEBHOOK_SECRET}",
    }
    by_name = {app["name"]: app for app in loaded["applications"]}
    assert by_name["Support IVR"] == {"name": "Support IVR", "answer_url": "https://example.com/a"}
    assert by_name["Sales IVR"]["webhook_url"] is None  # drops the default
    assert by_name["Sales IVR"]["webhook_secret"] is None
    assert by_name["Night IVR"]["webhook_url"] == OTHER_HOOKS
    assert "webhook_secret" not in by_name["Night IVR"]  # the default's variable is used
    assert "${MV_WEBHOOK_SECRET}" not in (tmp_path / "new.yaml").read_text().split("version:")[1]
    plans_all_unchanged(tmp_path, tmp_path / "new.yaml", 3)


def test_into_keeps_a_state_url_template_as_a_template(emulator: Emulator, tmp_path: Path) -> None:
    team = str(x25519.Identity.generate().to_public())
    base = tmp_path / "mvsync.yaml"
    base.write_text(
        "version: 1\n"
        f"recipients: [{team}]\n"
        "environments:\n"
        "  prod:\n"
        f"    api_url: {emulator.url}\n"
        "    api_key_env: MV_KEY\n"
        "    state_url: ${MVSYNC_STATE_URL}\n"
        "applications: []\n"
    )
    create(emulator, ("Support IVR", "https://example.com/a", None))
    done = mvsync(tmp_path, "import", "--env", "prod", "--into", str(base))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["environments"]["prod"]["state_url"] == (
        "${MVSYNC_STATE_URL}"
    )
    (tmp_path / "out.yaml").write_text(done.stdout)
    assert mvsync(tmp_path, "validate", "-f", "out.yaml").returncode == 0


def test_into_keeps_the_key_sink_and_checks(emulator: Emulator, tmp_path: Path) -> None:
    base = tmp_path / "mvsync.yaml"
    base.write_text(
        "version: 1\n"
        "environments:\n"
        "  prod:\n"
        f"    api_url: {emulator.url}\n"
        "    api_key_env: MV_KEY\n"
        '    key_sink: [gh, secret, set, "MINIVOICE_KEY_{slug}", --env, prod]\n'
        "    key_sink_env: [GH_TOKEN]\n"
        "    checks: {answer_timeout_ms: 2000}\n"
        "applications: []\n"
    )
    create(emulator, ("Support IVR", "https://example.com/a", None))
    done = mvsync(tmp_path, "import", "--env", "prod", "--into", str(base))
    assert done.returncode == 0, done.stderr
    prod = yaml.safe_load(done.stdout)["environments"]["prod"]
    assert prod["key_sink"] == ["gh", "secret", "set", "MINIVOICE_KEY_{slug}", "--env", "prod"]
    assert prod["key_sink_env"] == ["GH_TOKEN"]
    assert prod["checks"] == {"answer_timeout_ms": 2000}
    (tmp_path / "out.yaml").write_text(done.stdout)
    assert mvsync(tmp_path, "validate", "-f", "out.yaml").returncode == 0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--api-url", "http://127.0.0.1:9"), "--into takes the environment's settings from FILE"),
        (("-o", "mvsync.yaml"), "is the manifest being read"),
    ],
    ids=["with-api-url", "onto-itself"],
)
def test_into_refuses_what_would_contradict_or_overwrite_it(
    tmp_path: Path, extra: tuple[str, ...], says: str
) -> None:
    base = bare_manifest(tmp_path, "http://127.0.0.1:9")
    before = base.read_text()
    done = mvsync(tmp_path, "import", "--env", "prod", "--into", "mvsync.yaml", *extra)
    assert done.returncode == 1
    assert says in done.stderr
    assert base.read_text() == before
