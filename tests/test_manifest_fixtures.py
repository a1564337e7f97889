"""Every bad manifest in tests/fixtures/manifests/bad/ gives its exact messages, through the CLI.

Each ``NAME.yaml`` has a ``NAME.expected``: the exact stderr of ``mvsync validate -f NAME.yaml``
run from that folder (so the path is shown as given). Exit 1 and nothing on stdout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import FIXTURES, assert_no_secrets
from mvsync.cli import main

BAD = FIXTURES / "manifests" / "bad"
BAD_CASES = sorted(path.stem for path in BAD.glob("*.yaml"))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


def test_there_are_at_least_40_bad_manifests() -> None:
    assert len(BAD_CASES) >= 40
    assert all((BAD / f"{name}.expected").is_file() for name in BAD_CASES)


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_manifest_gives_its_exact_messages(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    code, out, err = run_cli(["validate", "-f", f"{name}.yaml"], capsys)
    assert (code, out) == (1, "")
    assert err == (BAD / f"{name}.expected").read_text(encoding="utf-8")
    assert_no_secrets(err)


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_manifest_messages_are_located_lines_naming_the_file(name: str) -> None:
    expected = (BAD / f"{name}.expected").read_text(encoding="utf-8")
    lines = expected.splitlines()
    assert lines
    assert all(line.startswith(f"{name}.yaml:") for line in lines)


def test_messages_are_sorted_by_place(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_cli(["validate", "-f", str(BAD / "several_problems_sorted.yaml")], capsys)
    places = [tuple(int(n) for n in line.split(":")[1:3]) for line in err.splitlines()]
    assert len(places) == 5
    assert places == sorted(places)


def test_file_option_after_the_command_shows_the_path_as_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD.parent)
    _, _, err = run_cli(["-f", "bad/version_unsupported.yaml", "validate"], capsys)
    assert err.startswith("bad/version_unsupported.yaml:1:10: version: unsupported version 2")


def test_github_actions_adds_one_error_annotation_per_problem(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = run_cli(["validate", "-f", "several_problems_sorted.yaml"], capsys)
    annotations = [line for line in err.splitlines() if line.startswith("::error ")]
    assert code == 1 and out == ""
    assert len(annotations) == 5
    assert annotations[0] == (
        "::error file=several_problems_sorted.yaml,line=1,col=10::"
        "version: unsupported version 3 (this mvsync reads version 1)"
    )


def test_github_annotation_without_a_line_names_only_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _, _, err = run_cli(["validate", "-f", "empty_file.yaml"], capsys)
    assert err.splitlines()[-1] == "::error file=empty_file.yaml::the manifest is empty"


def test_secret_canaries_are_in_the_fixtures_but_never_in_the_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with_canaries = [p for p in BAD.glob("*.yaml") if b"CANARY" in p.read_bytes()]
    assert len(with_canaries) >= 4
    for path in with_canaries:
        code, out, err = run_cli(["validate", "-f", path.name], capsys)
        assert code == 1
        assert_no_secrets(out + err)


def test_a_missing_file_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(["validate", "-f", str(tmp_path / "nope.yaml")], capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"{tmp_path / 'nope.yaml'}: cannot read the manifest: No such file or directory; run "
        "mvsync in the manifest's folder, or name it with -f PATH or MVSYNC_FILE=PATH\n"
    )


def test_debug_adds_a_traceback_before_the_messages(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    code, out, err = run_cli(["--debug", "validate", "-f", "version_missing.yaml"], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("Traceback")
    assert err.endswith("version_missing.yaml:1:1: missing required key 'version'\n")
