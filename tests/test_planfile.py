"""Saved plans: round trip, no secret, malformed files refused, staleness detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.cli import main
from mvsync.emulator import Emulator
from mvsync.errors import PlanFileError
from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planfile import check_fresh, read_plan, write_plan
from mvsync.planner import Plan, build_plan
from mvsync.store.keys import SecretEntry, SecretsFile, read_secrets, write_secrets

CREATED_AT = datetime(2026, 5, 29, 12, 0, 0, tzinfo=UTC)


def _desired(*apps: DesiredApp, name: str = "prod") -> DesiredEnvironment:
    return DesiredEnvironment(
        name, "https://api.minivoice.eu", "MINIVOICE_API_KEY", Path("/s"), apps
    )


def _remote(app_id: str, name: str, answer_url: str = "https://e.com/a") -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="c",
        name=name,
        answer_url=answer_url,
        created_at="2026-05-29T12:00:00Z",
    )


DESIRED = _desired(
    DesiredApp("Support IVR", "https://e.com/a", "https://e.com/w", TEST_WEBHOOK_SECRET),
    DesiredApp("Sales", "https://e.com/s"),
)
REMOTE = [_remote("app_1", "Sales", "https://e.com/old"), _remote("app_2", "Legacy")]


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    write_plan(
        Plan((build_plan(DESIRED, REMOTE),)), path, Path("mvsync.yaml"), created_at=CREATED_AT
    )
    return path


def test_a_written_plan_reads_back_with_its_fingerprints_and_changes(tmp_path: Path) -> None:
    env_plan = build_plan(DESIRED, REMOTE)
    saved = read_plan(_saved(tmp_path))
    (env,) = saved.environments
    assert (saved.created_at, saved.manifest) == (CREATED_AT, "mvsync.yaml")
    assert (env.name, env.api_url) == ("prod", "https://api.minivoice.eu")
    assert env.manifest_fingerprint == env_plan.manifest_fingerprint
    assert env.remote_fingerprint == env_plan.remote_fingerprint
    assert [c.model_dump(exclude_defaults=True, mode="json") for c in env.changes] == [
        c.to_json() for c in env_plan.changes
    ]


def test_a_saved_plan_holds_no_webhook_secret(tmp_path: Path) -> None:
    assert_no_secrets(_saved(tmp_path).read_text())


def test_a_saved_plan_has_format_version_kind_and_created_at(tmp_path: Path) -> None:
    document = json.loads(_saved(tmp_path).read_text())
    assert document["format_version"] == 1
    assert document["kind"] == "mvsync-plan"
    assert document["created_at"] == "2026-05-29T12:00:00Z"


def test_writing_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    _saved(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_writing_into_a_missing_folder_is_one_plan_file_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot write the plan"):
        write_plan(Plan(()), tmp_path / "missing" / "plan.json", Path("mvsync.yaml"))


def _rewrite(path: Path, change: Any) -> Path:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read the saved plan"):
        read_plan(tmp_path / "nope.json")


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format_version": 1,')
    with pytest.raises(PlanFileError, match="invalid JSON"):
        read_plan(path)


def test_a_json_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("[]")
    with pytest.raises(PlanFileError, match="not a JSON object"):
        read_plan(path)


def test_another_kind_of_document_is_refused(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d.update(kind="terraform"))
    with pytest.raises(PlanFileError, match="'kind' is not"):
        read_plan(path)


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d.update(format_version=2))
    with pytest.raises(PlanFileError, match="unsupported saved-plan format_version 2"):
        read_plan(path)


def test_a_missing_fingerprint_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d["environments"][0].pop("remote_fingerprint"))
    with pytest.raises(PlanFileError, match=r"environments\.0\.remote_fingerprint"):
        read_plan(path)


def test_a_fingerprint_that_is_not_sha256_is_refused(tmp_path: Path) -> None:
    path = _rewrite(
        _saved(tmp_path), lambda d: d["environments"][0].update(manifest_fingerprint="abc")
    )
    with pytest.raises(PlanFileError, match="manifest_fingerprint"):
        read_plan(path)


def test_an_unknown_action_is_refused(tmp_path: Path) -> None:
    path = _rewrite(
        _saved(tmp_path), lambda d: d["environments"][0]["changes"][0].update(action="delete")
    )
    with pytest.raises(PlanFileError, match=r"changes\.0\.action"):
        read_plan(path)


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d.update(api_key="x"))
    with pytest.raises(PlanFileError, match="api_key"):
        read_plan(path)


def test_a_summary_that_disagrees_with_the_changes_is_refused(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d["environments"][0]["summary"].update(create=7))
    with pytest.raises(PlanFileError, match="summary of environment 'prod'"):
        read_plan(path)


def test_a_bad_created_at_is_refused(tmp_path: Path) -> None:
    path = _rewrite(_saved(tmp_path), lambda d: d.update(created_at="yesterday"))
    with pytest.raises(PlanFileError, match="created_at"):
        read_plan(path)


def test_a_fresh_plan_passes_the_check(tmp_path: Path) -> None:
    saved = read_plan(_saved(tmp_path)).environment("prod")
    check_fresh(saved, build_plan(DESIRED, list(reversed(REMOTE))))


def test_a_new_remote_application_makes_the_plan_stale(tmp_path: Path) -> None:
    saved = read_plan(_saved(tmp_path)).environment("prod")
    now = build_plan(DESIRED, [*REMOTE, _remote("app_3", "Support IVR")])
    with pytest.raises(PlanFileError, match="remote applications changed since the plan"):
        check_fresh(saved, now)


def test_a_changed_manifest_makes_the_plan_stale(tmp_path: Path) -> None:
    saved = read_plan(_saved(tmp_path)).environment("prod")
    now = build_plan(_desired(DesiredApp("Sales", "https://e.com/s")), REMOTE)
    with pytest.raises(PlanFileError, match="the manifest changed since the plan was made"):
        check_fresh(saved, now)


def test_a_plan_for_another_environment_is_refused(tmp_path: Path) -> None:
    saved = read_plan(_saved(tmp_path)).environment("prod")
    with pytest.raises(PlanFileError, match="is for environment 'prod'"):
        check_fresh(saved, build_plan(_desired(*DESIRED.apps, name="staging"), REMOTE))


def test_asking_for_an_environment_the_plan_lacks_names_those_it_has(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"no environment 'dev' \(it has: prod\)"):
        read_plan(_saved(tmp_path)).environment("dev")


# --- what `plan -o` may overwrite ------------------------------------------------------


def test_an_earlier_saved_plan_is_overwritten(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    write_plan(Plan(()), path, Path("mvsync.yaml"), created_at=CREATED_AT)
    assert read_plan(path).environments == []


def test_a_file_that_is_not_a_saved_plan_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"kind": "something else"}')
    with pytest.raises(PlanFileError, match="it is not an mvsync plan file"):
        write_plan(Plan(()), path, Path("mvsync.yaml"))
    assert path.read_text() == '{"kind": "something else"}'
    assert [p.name for p in tmp_path.iterdir()] == ["notes.json"]


def test_a_symbolic_link_is_not_overwritten_even_to_a_saved_plan(tmp_path: Path) -> None:
    target = _saved(tmp_path)
    before = target.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(PlanFileError, match="it is a symbolic link"):
        write_plan(Plan(()), link, Path("mvsync.yaml"))
    assert (link.is_symlink(), target.read_bytes()) == (True, before)


def _manifest(folder: Path, url: str) -> Path:
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        "version: 1\n"
        "environments:\n"
        f"  dev:\n    api_url: {url}\n    api_key_env: MV_TEST_KEY\n"
        "    secrets_file: .mvsync/dev.secrets.yaml\n"
        "applications:\n"
        "  - name: Support IVR\n    answer_url: https://example.com/answer\n"
    )
    return manifest


def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("MV_TEST_KEY", TEST_API_KEY)
    for name in ("GITHUB_STEP_SUMMARY", "MVSYNC_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    assert_no_secrets(out + err, extra=[ISSUED_KEY])
    assert isinstance(exit_.value.code, int)
    return exit_.value.code, err


ISSUED_KEY = "mv_live_PLANFILE_CANARY_0c4e"


def test_plan_o_pointed_at_the_secrets_file_refuses_and_keeps_every_key(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = _manifest(tmp_path, emulator.url)
    stored = tmp_path / ".mvsync" / "dev.secrets.yaml"
    stored.parent.mkdir()
    secrets_file = SecretsFile(
        environment="dev",
        api_url=emulator.url,
        applications={"Old": SecretEntry(id="app_1", api_key=SecretStr(ISSUED_KEY))},
    )
    write_secrets(stored, secrets_file)
    before = stored.read_bytes()
    code, err = _cli(capsys, monkeypatch, "-f", str(manifest), "plan", "-o", str(stored))
    assert code == 1
    assert f"refusing to overwrite {stored}: it is not an mvsync plan file" in err
    assert stored.read_bytes() == before
    assert read_secrets(stored) == secrets_file


def test_plan_o_pointed_at_the_manifest_refuses_and_keeps_it(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = _manifest(tmp_path, emulator.url)
    before = manifest.read_bytes()
    code, err = _cli(capsys, monkeypatch, "-f", str(manifest), "plan", "-o", str(manifest))
    assert code == 1
    assert "it is not an mvsync plan file" in err
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mvsync.yaml"]


# --- a hand-edited plan ------------------------------------------------------------------


def _edit_changes(tmp_path: Path, edit: Any) -> Path:
    """Edit the saved changes and keep the summary consistent, as a careful hand would."""

    def change(document: dict[str, Any]) -> None:
        env = document["environments"][0]
        edit(env["changes"])
        env["summary"] = {key: 0 for key in env["summary"]}
        for item in env["changes"]:
            env["summary"][item["action"]] += 1

    return _rewrite(_saved(tmp_path), change)


def _create_of_support(changes: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [c for c in changes if (c["action"], c["name"]) == ("create", "Support IVR")]
    return found


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda changes: changes.remove(_create_of_support(changes)), id="create removed"
        ),
        pytest.param(
            lambda changes: changes.append({**_create_of_support(changes), "name": "Extra"}),
            id="create added",
        ),
        pytest.param(
            lambda changes: _create_of_support(changes)["desired"].update(
                answer_url="https://attacker.example/a"
            ),
            id="answer_url edited",
        ),
    ],
)
def test_a_plan_whose_changes_were_edited_is_refused(tmp_path: Path, edit: Any) -> None:
    saved = read_plan(_edit_changes(tmp_path, edit)).environment("prod")
    with pytest.raises(PlanFileError, match=r"changes do not match .* \(was it edited\?\)"):
        check_fresh(saved, build_plan(DESIRED, REMOTE))


def test_apply_of_an_edited_plan_creates_nothing(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = _manifest(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    assert _cli(capsys, monkeypatch, "-f", str(manifest), "plan", "-o", str(plan_file))[0] == 0

    def edit(document: dict[str, Any]) -> None:
        document["environments"][0]["changes"][0]["desired"]["answer_url"] = "https://x.example/"

    _rewrite(plan_file, edit)
    code, err = _cli(
        capsys, monkeypatch, "-f", str(manifest), "apply", "--env", "dev", "--yes",
        "--plan", str(plan_file),
    )  # fmt: skip
    assert (code, emulator.request_count("POST")) == (1, 0)
    assert "(was it edited?)" in err


# --- plan files that would crash a reader ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep"),
        pytest.param('{"format_version": ' + "9" * 5000 + "}", "number is too large", id="bigint"),
        pytest.param(
            '{"kind": "mvsync-plan", "format_version": ' + "[" * 900 + "]" * 900 + "}",
            "unsupported saved-plan format_version",
            id="deep version",
        ),
    ],
)
def test_a_deep_or_huge_number_plan_is_one_plan_file_error(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(PlanFileError, match=reason):
        read_plan(path)


def test_a_deep_value_inside_a_valid_plan_is_one_plan_file_error(tmp_path: Path) -> None:
    deep = json.loads("[" * 900 + "]" * 900)
    path = _rewrite(_saved(tmp_path), lambda d: d["environments"][0].update(summary=deep))
    with pytest.raises(PlanFileError, match="malformed saved plan"):
        read_plan(path)
