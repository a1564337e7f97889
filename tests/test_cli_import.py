"""``mvsync import`` end to end against the real emulator on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.api.client import MiniVoiceClient
from mvsync.cli import main
from mvsync.emulator import Emulator
from mvsync.model import CreateRequest

HOOKS = "https://crm.example.com/minivoice/webhooks"
MANIFEST = """\
version: 1
environments:
  staging:
    api_url: ${MV_API_URL}
    api_key_env: MV_KEY_STAGING
applications:
  - name: Unrelated
    answer_url: ${NOT_SET_ANYWHERE}/answer
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_STEP_SUMMARY", "NO_COLOR", "MVSYNC_FILE", "NOT_SET_ANYWHERE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def staging(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The emulator as environment 'staging' of a manifest in tmp_path; returns the manifest."""
    monkeypatch.setenv("MV_API_URL", emulator.url)
    monkeypatch.setenv("MV_KEY_STAGING", TEST_API_KEY)
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def create(emulator: Emulator, *apps: tuple[str, str, str | None]) -> None:
    with MiniVoiceClient(emulator.url, TEST_API_KEY) as client:
        for name, answer_url, webhook_url in apps:
            client.create_application(
                CreateRequest(
                    name=name,
                    answer_url=answer_url,
                    webhook_url=webhook_url,
                    webhook_secret=TEST_WEBHOOK_SECRET if webhook_url else None,
                )
            )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    assert_no_secrets(out + err)
    assert isinstance(exit_.value.code, int)
    return exit_.value.code, out, err


def plan_summary(capsys: pytest.CaptureFixture[str], manifest: Path) -> tuple[int, dict[str, int]]:
    code, out, _ = run(
        capsys, "plan", "-f", str(manifest), "--format", "json", "--detailed-exitcode"
    )
    [environment] = json.loads(out)["environments"]
    return code, environment["summary"]


def test_import_round_trips_to_a_plan_of_all_unchanged(
    emulator: Emulator, staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create(
        emulator,
        ("Support IVR", "https://example.com/minivoice/answer", HOOKS),
        ("Receptionist", "https://example.com/minivoice/reception", None),
        ("Pay $5 line", "https://example.com/minivoice/pay?amount=$5", HOOKS),
    )
    imported = staging.parent / "imported.yaml"
    assert (
        run(capsys, "import", "-f", str(staging), "--env", "staging", "-o", str(imported))[0] == 0
    )
    assert run(capsys, "validate", "-f", str(imported))[0] == 0
    code, summary = plan_summary(capsys, imported)
    assert (code, summary["unchanged"], summary["create"] + summary["drift"]) == (0, 3, 0)


def test_import_leaves_duplicates_unmanaged_so_the_plan_stays_clean(
    emulator: Emulator, staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create(
        emulator,
        ("Twin", "https://example.com/a", None),
        ("Twin", "https://example.com/b", None),
        ("Single", "https://example.com/c", None),
    )
    imported = staging.parent / "imported.yaml"
    run(capsys, "import", "-f", str(staging), "--env", "staging", "-o", str(imported))
    code, summary = plan_summary(capsys, imported)
    assert (code, summary["unchanged"], summary["unmanaged"], summary["ambiguous"]) == (0, 1, 2, 0)


def test_import_prints_to_stdout_and_keeps_the_api_url_template(
    emulator: Emulator, staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create(emulator, ("Support IVR", "https://example.com/minivoice/answer", HOOKS))
    code, out, _ = run(capsys, "import", "-f", str(staging), "--env", "staging")
    assert code == 0
    assert '    api_url: "${MV_API_URL}"\n    api_key_env: MV_KEY_STAGING\n' in out
    assert "  - name: Support IVR\n" in out


def test_import_without_a_manifest_uses_the_given_api_url_and_key_variable(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no mvsync.yaml here
    monkeypatch.setenv("MY_KEY", TEST_API_KEY)
    create(emulator, ("Support IVR", "https://example.com/minivoice/answer", None))
    code, out, _ = run(
        capsys, "import", "--env", "prod", "--api-url", emulator.url, "--api-key-env", "MY_KEY"
    )
    assert code == 0
    assert f"  prod:\n    api_url: {emulator.url}\n    api_key_env: MY_KEY\n" in out


def test_import_refuses_to_write_over_the_manifest_it_reads(
    staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "import", "-f", str(staging), "--env", "staging", "-o", str(staging))
    assert code == 1
    assert "is the manifest being read" in err
    assert staging.read_text(encoding="utf-8") == MANIFEST


def test_import_of_an_unknown_environment_names_the_known_ones(
    staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "import", "-f", str(staging), "--env", "prod")
    assert code == 1
    assert "unknown environment 'prod' (the manifest defines: staging)" in err


def test_import_without_the_api_key_names_the_variable_and_writes_nothing(
    staging: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MV_KEY_STAGING")
    imported = staging.parent / "imported.yaml"
    code, _, err = run(
        capsys, "import", "-f", str(staging), "--env", "staging", "-o", str(imported)
    )
    assert code == 1
    assert "MV_KEY_STAGING is not set" in err
    assert sorted(p.name for p in staging.parent.iterdir()) == ["mvsync.yaml"]


def test_import_with_a_refused_key_fails_without_showing_the_key(
    staging: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MV_KEY_STAGING", "mvtest_WRONG_CANARY_0b7d")
    code, out, err = run(capsys, "import", "-f", str(staging), "--env", "staging")
    assert (code, out) == (1, "")
    assert "401" in err
    assert "mvtest_WRONG_CANARY_0b7d" not in err


IMPORT_PASSWORD = "mvtest_PASSWORD_CANARY_91c3"
CREDENTIALS = (
    "api_url must not carry credentials (user:password@): the API key comes from api_key_env"
)


def test_import_refuses_credentials_in_api_url_without_showing_them(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_KEY", TEST_API_KEY)
    monkeypatch.setenv("MV_PASS", IMPORT_PASSWORD)
    host = emulator.url.partition("://")[2]
    for api_url in (f"http://user:{IMPORT_PASSWORD}@{host}", f"http://user:${{MV_PASS}}@{host}"):
        code, out, err = run(
            capsys, "import", "--env", "prod", "--api-url", api_url, "--api-key-env", "MY_KEY"
        )
        assert (code, out) == (1, "")
        assert err == f"mvsync: error: --api-url: {CREDENTIALS}\n"
    assert emulator.request_count("GET") == 0


def test_import_refuses_a_manifest_api_url_that_expands_to_credentials(
    staging: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = emulator.url.partition("://")[2]
    monkeypatch.setenv("MV_API_URL", f"http://user:{IMPORT_PASSWORD}@{host}")
    code, out, err = run(capsys, "import", "-f", str(staging), "--env", "staging")
    assert (code, out) == (1, "")
    assert CREDENTIALS in err
    assert IMPORT_PASSWORD not in err
    assert emulator.request_count("GET") == 0


def test_import_says_how_many_it_wrote_and_how_many_it_left_as_comments(
    emulator: Emulator, staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create(
        emulator,
        ("Twin", "https://example.com/a", None),
        ("Twin", "https://example.com/b", None),
        ("Single", "https://example.com/c", None),
        ("Other", "https://example.com/d", None),
    )
    imported = staging.parent / "imported.yaml"
    code, _, err = run(
        capsys, "import", "-f", str(staging), "--env", "staging", "-o", str(imported)
    )
    assert code == 0
    assert err.strip() == (
        f"mvsync: wrote 2 applications to {imported} (2 more written as comments: a shared "
        "name or a URL the manifest refuses)"
    )
    assert imported.read_text().count("\n  - name: ") == 2
    assert "# 4 applications listed, 2 imported" in imported.read_text()
