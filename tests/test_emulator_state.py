"""The emulator's data: ids, timestamps, and the --state file across restarts and crashes."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets, case_forms
from mvsync.emulator import EmulatorError
from mvsync.emulator.state import Store, app_id_for, app_id_ns, created_at_for

APPS = "/v1/applications"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
SEED_NS = int(datetime(2026, 5, 29, 12, 0, 0, tzinfo=UTC).timestamp()) * 1_000_000_000


def create(store: Store, name: str = "Support IVR") -> Any:
    customer_id = store.customer_of(TEST_API_KEY)
    assert customer_id is not None
    return store.create(
        customer_id,
        name=name,
        answer_url="https://example.com/a",
        webhook_url=None,
        webhook_secret=TEST_WEBHOOK_SECRET,
    )


def test_id_of_the_seed_time_is_the_seed_id() -> None:
    assert app_id_for(SEED_NS) == "app_20260529T120000.000000000"


def test_created_at_of_the_seed_time_is_the_seed_timestamp() -> None:
    assert created_at_for(SEED_NS + 999) == "2026-05-29T12:00:00Z"


def test_an_id_gives_back_its_nanoseconds() -> None:
    assert app_id_ns(app_id_for(SEED_NS + 123_456_789)) == SEED_NS + 123_456_789


def test_ids_made_in_one_nanosecond_are_unique_and_increasing() -> None:
    store = Store((TEST_API_KEY,), clock=lambda: SEED_NS)
    ids = [create(store).id for _ in range(1000)]
    assert ids == sorted(set(ids))
    assert ids[0] == "app_20260529T120000.000000000"


def test_ids_keep_increasing_after_a_restart_with_a_clock_behind(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    first = create(Store((TEST_API_KEY,), state, clock=lambda: SEED_NS + 10**12))
    second = create(Store((TEST_API_KEY,), state, clock=lambda: SEED_NS))
    assert second.id > first.id


def test_state_file_is_created_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    create(Store((TEST_API_KEY,), state))
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_state_file_keeps_applications_across_restarts(make_emulator: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    first = make_emulator(state_file=state)
    created = httpx.post(
        first.url + APPS, json={"name": "Kept", "answer_url": "https://e.com/a"}, headers=AUTH
    ).json()
    first.stop()
    second = make_emulator(state_file=state)
    listed = httpx.get(second.url + APPS, headers=AUTH).json()["data"]
    assert [app["id"] for app in listed] == [created["id"]]


def test_issued_key_authenticates_after_a_restart(make_emulator: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    first = make_emulator(state_file=state)
    issued_key = httpx.post(
        first.url + APPS, json={"name": "Kept", "answer_url": "https://e.com/a"}, headers=AUTH
    ).json()["api_key"]
    first.stop()
    second = make_emulator(api_keys=(), state_file=state)
    response = httpx.get(second.url + APPS, headers={"Authorization": f"Bearer {issued_key}"})
    assert response.json()["count"] == 1


def test_webhook_secret_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    app_id = create(Store((TEST_API_KEY,), state)).id
    reloaded = Store((TEST_API_KEY,), state).app(app_id)
    assert reloaded is not None
    assert reloaded.webhook_secret == TEST_WEBHOOK_SECRET


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    create(Store((TEST_API_KEY,), state), "Whole")
    with state.open("ab") as file:
        file.write(b'{"v":1,"kind":"app","id":"app_2026')
    assert [app.name for app in Store((TEST_API_KEY,), state).apps_of(_customer())] == ["Whole"]


def test_a_torn_last_line_is_cut_so_the_next_create_is_readable(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    create(Store((TEST_API_KEY,), state), "Whole")
    with state.open("ab") as file:
        file.write(b'{"v":1,"kind":"app","id":"app_2026')
    create(Store((TEST_API_KEY,), state), "After")
    names = [app.name for app in Store((TEST_API_KEY,), state).apps_of(_customer())]
    assert names == ["Whole", "After"]


def test_a_whole_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    create(Store((TEST_API_KEY,), state), "First")
    state.write_bytes(state.read_bytes().rstrip(b"\n"))
    create(Store((TEST_API_KEY,), state), "Second")
    names = [app.name for app in Store((TEST_API_KEY,), state).apps_of(_customer())]
    assert names == ["First", "Second"]


def test_a_corrupt_line_before_the_last_is_an_error_naming_it(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    store = Store((TEST_API_KEY,), state)
    create(store, "One")
    create(store, "Two")
    store.close()
    lines = state.read_text().splitlines()
    state.write_text("garbage\n" + "\n".join(lines) + "\n")
    with pytest.raises(EmulatorError, match=r"state\.jsonl:1: not an emulator state record"):
        Store((TEST_API_KEY,), state)


def test_a_state_error_does_not_show_the_secrets(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    record = {
        "v": 1,
        "kind": "app",
        "api_key": "mv_live_LEAK",
        "webhook_secret": TEST_WEBHOOK_SECRET,
    }
    state.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(EmulatorError) as caught:
        Store((TEST_API_KEY,), state)
    assert "mv_live_LEAK" not in str(caught.value)
    assert_no_secrets(str(caught.value))


def test_a_missing_state_file_starts_empty(tmp_path: Path) -> None:
    store = Store((TEST_API_KEY,), tmp_path / "absent.jsonl")
    assert store.apps_of(_customer()) == []


def test_the_same_seeded_key_is_the_same_customer_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    created = create(Store((TEST_API_KEY,), state))
    assert Store((TEST_API_KEY,), state).customer_of(TEST_API_KEY) == created.customer_id


def test_the_state_file_holds_no_seeded_key(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    create(Store((TEST_API_KEY,), state))
    text = state.read_text()
    assert not [form for form in case_forms(TEST_API_KEY) if form in text]


def test_the_state_file_is_made_owner_only_even_if_it_existed(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    state.touch()
    os.chmod(state, 0o644)
    create(Store((TEST_API_KEY,), state))
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def _customer() -> str:
    customer_id = Store((TEST_API_KEY,)).customer_of(TEST_API_KEY)
    assert customer_id is not None
    return customer_id


def test_an_unwritable_state_path_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="cannot open state file"):
        Store((TEST_API_KEY,), tmp_path / "no-such-dir" / "state.jsonl")


def test_a_create_that_cannot_be_stored_answers_500_and_creates_nothing(
    make_emulator: Any, tmp_path: Path
) -> None:
    server = make_emulator(state_file=tmp_path / "state.jsonl")
    server._store._log.close()  # the next write finds no open file...
    server._store._log.path = tmp_path / "gone" / "state.jsonl"  # ...and cannot open one
    response = httpx.post(
        server.url + APPS, json={"name": "Lost", "answer_url": "https://e.com/a"}, headers=AUTH
    )
    assert (response.status_code, response.json()["error"]["code"]) == (500, "internal_error")
    assert server.applications(TEST_API_KEY) == []
