"""Saved plans: round trip, no secret, malformed files refused, staleness detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_WEBHOOK_SECRET
from mvsync.errors import PlanFileError
from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planfile import check_fresh, read_plan, write_plan
from mvsync.planner import Plan, build_plan

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
    assert TEST_WEBHOOK_SECRET not in _saved(tmp_path).read_text()


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
