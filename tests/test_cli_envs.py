"""``mvsync envs``: the manifest's environment names, for scripts and CI matrices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvsync.cli import main

MANIFEST = """\
version: 1
environments:
  dev:
    api_url: ${MVSYNC_DEV_API_URL:-http://127.0.0.1:8787}
  staging: {}
  prod:
    api_key_env: MINIVOICE_API_KEY_PROD
applications:
  - name: Support IVR
    answer_url: ${NEEDED_BY_PLAN_ONLY}/answer
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    assert isinstance(exit_.value.code, int)
    return exit_.value.code, out, err


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MVSYNC_FILE", raising=False)
    monkeypatch.delenv("NEEDED_BY_PLAN_ONLY", raising=False)
    path = tmp_path / "mvsync.yaml"
    path.write_text(MANIFEST, encoding="utf-8")
    return path


def test_envs_prints_one_name_a_line_in_file_order(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "envs", "-f", str(manifest)) == (0, "dev\nstaging\nprod\n", "")


def test_envs_json_is_one_line_holding_a_list(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "envs", "--json", "-f", str(manifest))
    assert (code, out.count("\n"), json.loads(out)) == (0, 1, ["dev", "staging", "prod"])


def test_envs_reads_the_default_manifest_of_the_working_directory(
    manifest: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(manifest.parent)
    assert run(capsys, "envs")[:2] == (0, "dev\nstaging\nprod\n")


def test_envs_honours_the_file_option_before_the_command(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-f", str(manifest), "envs", "--json")[:2] == (
        0,
        '["dev", "staging", "prod"]\n',
    )


def test_envs_of_an_invalid_manifest_fails_with_its_located_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nenvironments:\n  dev: {api_url: 3}\napplications: []\n")
    code, out, err = run(capsys, "envs", "-f", str(broken))
    assert (code, out) == (1, "")
    assert f"{broken}:3:" in err


def test_envs_of_a_missing_manifest_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "envs", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "nope.yaml" in err


def test_exclude_loopback_leaves_out_the_local_emulator_environment(
    manifest: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MVSYNC_DEV_API_URL", raising=False)
    code, out, _ = run(capsys, "envs", "--json", "--exclude-loopback", "-f", str(manifest))
    assert (code, json.loads(out)) == (0, ["staging", "prod"])


def test_exclude_loopback_keeps_an_environment_whose_variable_points_elsewhere(
    manifest: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVSYNC_DEV_API_URL", "https://dev-api.example.com")
    code, out, _ = run(capsys, "envs", "--exclude-loopback", "-f", str(manifest))
    assert (code, out) == (0, "dev\nstaging\nprod\n")


@pytest.mark.parametrize(
    ("api_url", "kept"),
    [
        ("http://localhost:8787", False),
        ("http://[::1]:8787", False),
        ("https://api.minivoice.eu", True),
        ("${UNSET_IN_THIS_TEST}", True),  # not known to be loopback: kept
    ],
)
def test_exclude_loopback_judges_each_api_url(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    api_url: str,
    kept: bool,
) -> None:
    monkeypatch.delenv("UNSET_IN_THIS_TEST", raising=False)
    path = tmp_path / "m.yaml"
    path.write_text(
        f"version: 1\nenvironments:\n  one: {{api_url: '{api_url}'}}\n  two: {{}}\n"
        "applications: []\n"
    )
    _, out, _ = run(capsys, "envs", "--exclude-loopback", "-f", str(path))
    assert out.split() == (["one", "two"] if kept else ["two"])


def test_the_example_manifest_in_ci_has_no_loopback_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MVSYNC_DEV_API_URL", raising=False)
    example = Path(__file__).parent.parent / "examples" / "minivoice.yaml"
    _, out, _ = run(capsys, "envs", "--json", "--exclude-loopback", "-f", str(example))
    assert json.loads(out) == ["staging", "prod"]
