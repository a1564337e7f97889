"""mvsync.apply.run against the real emulator on loopback: exactly once, no key lost."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.apply.create_once import MAX_SENDS
from mvsync.apply.run import apply_environment
from mvsync.apply.settings import ApplyResult, ApplySettings, NullReporter
from mvsync.emulator import Emulator, Fault
from mvsync.errors import AbortedError, MvsyncError, SecretsError, UnsafePlanError
from mvsync.model import CreateRequest, DesiredApp, DesiredEnvironment
from mvsync.planfile import read_plan, write_plan
from mvsync.planner import Plan, build_plan
from mvsync.store import journal
from mvsync.store.keys import SecretEntry, SecretsFile, read_secrets, write_secrets

# lag_window 0: the emulator's list never lags, so a create in doubt that a later run
# finds absent may be sent again at once (the lag window has its own tests).
FAST = ApplySettings(
    unknown_wait=0.01, confirm_deadline=2.0, confirm_backoff=0.01, lag_window=0.0, store_retry=0.2
)
SECRET_REF = "${MV_WEBHOOK_SECRET}"


def desired_env(
    tmp_path: Path, url: str, count: int = 3, prefix: str = "App"
) -> DesiredEnvironment:
    apps = tuple(
        DesiredApp(
            name=f"{prefix} {n}",
            answer_url=f"https://example.com/{n}/answer",
            webhook_url="https://example.com/hooks",
            webhook_secret_ref=SECRET_REF,
        )
        for n in range(count)
    )
    return DesiredEnvironment(
        name="dev",
        api_url=url,
        api_key_env="MINIVOICE_API_KEY",
        secrets_path=tmp_path / ".mvsync" / "dev.secrets.yaml",
        apps=apps,
    )


def secret_of(ref: str) -> str:
    assert ref == SECRET_REF
    return TEST_WEBHOOK_SECRET


def client_for(emulator: Emulator, timeout: float = 2.0) -> MiniVoiceClient:
    retry = RetryPolicy(deadline=5.0, initial_backoff=0.01, max_backoff=0.05)
    return MiniVoiceClient(emulator.url, TEST_API_KEY, timeout=timeout, retry=retry)


def run_apply(
    env: DesiredEnvironment, emulator: Emulator, timeout: float = 2.0, **options: object
) -> ApplyResult:
    lag_window = options.pop("lag_window", None)
    if lag_window is not None:
        assert isinstance(lag_window, float)
        options.setdefault("settings", dataclasses.replace(FAST, lag_window=lag_window))
    options.setdefault("settings", FAST)
    with client_for(emulator, timeout) as client:
        return apply_environment(env, client, secret_of=secret_of, **options)  # type: ignore[arg-type]


def killed_after_creating_app_0(tmp_path: Path, emulator: Emulator) -> DesiredEnvironment:
    """What a run killed mid-create leaves: its intent journalled, the app created, no key."""
    env = desired_env(tmp_path, emulator.url, count=1)
    env.secrets_path.parent.mkdir(mode=0o700)
    with journal.JournalWriter(journal.journal_path(env.secrets_path)) as writer:
        writer.append(journal.intent("App 0"))
    with client_for(emulator) as client:
        client.create_application(
            CreateRequest(
                name="App 0",
                answer_url="https://example.com/0/answer",
                webhook_url="https://example.com/hooks",
            )
        )
    return env


def stored_entries(env: DesiredEnvironment) -> dict[str, dict[str, object]]:
    stored = read_secrets(env.secrets_path)
    assert stored is not None
    return {
        name: {
            "id": entry.id,
            "api_key": entry.api_key.get_secret_value() if entry.api_key else None,
            "key_captured": entry.key_captured,
        }
        for name, entry in stored.applications.items()
    }


def remote_names(emulator: Emulator) -> Counter[str]:
    return Counter(app["name"] for app in emulator.applications(TEST_API_KEY))


def remote_ids(emulator: Emulator) -> dict[str, str]:
    return {app["name"]: app["id"] for app in emulator.applications(TEST_API_KEY)}


# --- the normal path ---------------------------------------------------------------


def test_apply_creates_every_application_and_stores_each_key(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    result = run_apply(env, emulator)
    entries = stored_entries(env)
    assert result.ok
    assert remote_names(emulator) == Counter({"App 0": 1, "App 1": 1, "App 2": 1})
    assert {name: entry["id"] for name, entry in entries.items()} == remote_ids(emulator)
    assert all(str(entry["api_key"]).startswith("mv_live_") for entry in entries.values())


def test_stored_keys_are_the_keys_the_api_issued(emulator: Emulator, tmp_path: Path) -> None:
    # The emulator accepts every key it issued: a stored key that works is the real one.
    env = desired_env(tmp_path, emulator.url, count=1)
    run_apply(env, emulator)
    issued_key = str(stored_entries(env)["App 0"]["api_key"])
    with MiniVoiceClient(emulator.url, issued_key) as client:
        assert [app.name for app in client.list_applications()] == ["App 0"]


def test_secrets_file_is_0600_in_a_0700_folder_and_journal_is_gone(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    run_apply(env, emulator)
    assert env.secrets_path.stat().st_mode & 0o777 == 0o600
    assert env.secrets_path.parent.stat().st_mode & 0o777 == 0o700
    assert not journal.journal_path(env.secrets_path).exists()


def test_webhook_secret_is_sent_with_each_create(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    run_apply(env, emulator)
    assert emulator.webhook_secret_of(remote_ids(emulator)["App 0"]) == TEST_WEBHOOK_SECRET


def test_second_apply_sends_no_post(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    run_apply(env, emulator)
    posts_before = emulator.request_count("POST")
    second = run_apply(env, emulator)
    assert (second.ok, second.created, emulator.request_count("POST")) == (True, [], posts_before)


def test_second_apply_keeps_every_entry_of_the_first(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    run_apply(env, emulator)
    first = stored_entries(env)
    bigger = desired_env(tmp_path, emulator.url, count=5)
    run_apply(bigger, emulator)
    entries = stored_entries(bigger)
    assert {name: entries[name] for name in first} == first
    assert len(entries) == 5


def test_entries_of_names_no_longer_in_the_manifest_stay(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    run_apply(env, emulator)
    smaller = desired_env(tmp_path, emulator.url, count=1)
    run_apply(smaller, emulator)
    assert sorted(stored_entries(env)) == ["App 0", "App 1", "App 2"]


def test_summary_counts_unchanged_and_drift(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=2)
    run_apply(env, emulator)
    moved = DesiredApp(name="App 1", answer_url="https://example.com/moved")
    drifted = DesiredEnvironment(
        name="dev",
        api_url=emulator.url,
        api_key_env="X",
        secrets_path=env.secrets_path,
        apps=(env.apps[0], moved),
    )
    result = run_apply(drifted, emulator)
    assert (result.unchanged, [c.name for c in result.drift], result.ok) == (1, ["App 1"], False)


# --- refusals before anything is created ----------------------------------------------


def test_max_creates_is_refused_with_zero_posts(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    with pytest.raises(UnsafePlanError, match="3 creates, more than --max-creates 2"):
        run_apply(env, emulator, settings=ApplySettings(max_creates=2))
    assert emulator.request_count("POST") == 0


def test_stale_saved_plan_is_refused_with_zero_posts(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    write_plan(Plan((build_plan(env, []),)), plan_file, tmp_path / "mvsync.yaml")
    with client_for(emulator) as client:
        client.create_application(
            CreateRequest(name="Someone else's", answer_url="https://x.example/a")
        )
    posts = emulator.request_count("POST")
    saved = read_plan(plan_file).environment("dev")
    with pytest.raises(MvsyncError, match="remote applications changed"):
        run_apply(env, emulator, saved=saved)
    assert emulator.request_count("POST") == posts


def test_fresh_saved_plan_is_applied(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    write_plan(Plan((build_plan(env, []),)), plan_file, tmp_path / "mvsync.yaml")
    result = run_apply(env, emulator, saved=read_plan(plan_file).environment("dev"))
    assert (result.ok, len(result.created)) == (True, 3)


def test_answering_no_creates_nothing(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    with pytest.raises(AbortedError, match="nothing was created"):
        run_apply(env, emulator, confirm=lambda _plan: False)
    assert emulator.request_count("POST") == 0


def test_missing_webhook_secret_fails_before_the_first_post(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)

    def missing(_ref: str) -> str:
        raise MvsyncError("the variable MV_WEBHOOK_SECRET is not set")

    with client_for(emulator) as client, pytest.raises(MvsyncError, match="MV_WEBHOOK_SECRET"):
        apply_environment(env, client, settings=FAST, secret_of=missing)
    assert emulator.request_count("POST") == 0


def test_malformed_secrets_file_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    env.secrets_path.parent.mkdir()
    env.secrets_path.write_text("environment: [dev\n")
    env.secrets_path.chmod(0o600)
    with pytest.raises(SecretsError, match="malformed secrets file"):
        run_apply(env, emulator)
    assert emulator.request_count() == 0


def test_group_readable_secrets_file_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    run_apply(env, emulator)
    env.secrets_path.chmod(0o640)
    requests = emulator.request_count()
    with pytest.raises(SecretsError, match="group or others"):
        run_apply(desired_env(tmp_path, emulator.url, count=4), emulator)
    assert emulator.request_count() == requests


def test_malformed_journal_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url)
    env.secrets_path.parent.mkdir()
    path = journal.journal_path(env.secrets_path)
    path.write_bytes(b"not json\n")
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="not a JSON object"):
        run_apply(env, emulator)
    assert emulator.request_count() == 0


def test_create_of_a_name_with_a_stored_entry_is_refused(
    emulator: Emulator, tmp_path: Path
) -> None:
    # The remote application was deleted by hand: a new key could not be stored.
    env = desired_env(tmp_path, emulator.url, count=2)
    env.secrets_path.parent.mkdir()
    entry = SecretEntry(id="app_gone", api_key=SecretStr("mv_live_old"), created_at="t")
    write_secrets(
        env.secrets_path,
        SecretsFile(environment="dev", api_url=emulator.url, applications={"App 1": entry}),
    )
    with pytest.raises(
        UnsafePlanError, match=r"'App 1' must be created, but .* already has an entry"
    ):
        run_apply(env, emulator)
    assert emulator.request_count("POST") == 0
    assert stored_entries(env)["App 1"]["api_key"] == "mv_live_old"


# --- re-list right before creating ------------------------------------------------------


def test_create_that_appeared_after_the_plan_is_not_sent(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=2)

    def someone_creates_app_0(_plan: object) -> bool:
        with client_for(emulator) as other:
            other.create_application(CreateRequest(name="App 0", answer_url="https://e.x/0"))
        return True

    result = run_apply(env, emulator, confirm=someone_creates_app_0)
    assert result.already_existed == ["App 0"]
    assert remote_names(emulator)["App 0"] == 1


# --- faults (SPEC section 7) on the POST ---------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("429", method="POST"),
        Fault("429", method="POST", retry_after="1"),
        Fault("503", method="POST", retry_after="1"),
    ],
    ids=lambda f: f"{f.kind}-retry-after-{f.retry_after}",
)
def test_post_refused_unprocessed_is_retried_and_ends_with_one_app_and_its_key(
    emulator: Emulator, tmp_path: Path, fault: Fault
) -> None:
    env = desired_env(tmp_path, emulator.url)
    emulator.add_fault(fault)
    result = run_apply(env, emulator)
    assert result.ok
    assert remote_names(emulator) == Counter({"App 0": 1, "App 1": 1, "App 2": 1})
    assert emulator.request_count("POST") == 4
    assert all(entry["api_key"] for entry in stored_entries(env).values())


@pytest.mark.parametrize(
    "fault",
    [
        Fault("500", method="POST"),
        Fault("503", method="POST"),
        Fault("drop_before_commit", method="POST"),
    ],
    ids=lambda f: f.kind,
)
def test_post_with_unknown_outcome_is_settled_within_the_run(
    emulator: Emulator, tmp_path: Path, fault: Fault
) -> None:
    # Absent from one list is no proof that nothing was created (a list can lag behind
    # creates): the run lists again until the lag window since that POST has passed,
    # and only then sends it again. One transient error does not fail the run.
    env = desired_env(tmp_path, emulator.url)
    emulator.add_fault(fault)
    lists_before = emulator.request_count("GET")
    result = run_apply(env, emulator, lag_window=0.3)
    assert result.ok, result
    assert emulator.request_count("POST") == 4
    # Listed more than once while in doubt: the first list, the doubt's, the confirmation.
    assert emulator.request_count("GET") - lists_before >= 4
    assert remote_names(emulator) == Counter({"App 0": 1, "App 1": 1, "App 2": 1})
    assert all(entry["api_key"] for entry in stored_entries(env).values())
    assert not journal.journal_path(env.secrets_path).exists()


def test_a_create_in_doubt_that_appears_within_the_window_is_never_sent_again(
    emulator: Emulator, tmp_path: Path
) -> None:
    # The POST committed, its answer was lost: the wait finds it ("not captured").
    env = desired_env(tmp_path, emulator.url, count=1)
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    result = run_apply(env, emulator, lag_window=5.0)
    assert not result.ok
    assert [name for name, _ in result.not_captured] == ["App 0"]
    assert emulator.request_count("POST") == 1


def test_the_next_run_waits_out_the_window_of_an_intent_in_doubt(
    emulator: Emulator, tmp_path: Path
) -> None:
    # A run killed right after its POST: the intent is young, the list lacks it. The next
    # run lists until the window has passed since then, then sends it once.
    env = desired_env(tmp_path, emulator.url, count=1)
    env.secrets_path.parent.mkdir(mode=0o700)
    with journal.JournalWriter(journal.journal_path(env.secrets_path)) as writer:
        writer.append(journal.intent("App 0"))
    lists_before = emulator.request_count("GET")
    result = run_apply(env, emulator, lag_window=0.5)
    assert result.ok, result
    assert result.held_back == []
    assert emulator.request_count("GET") - lists_before >= 3  # listed again while waiting
    assert emulator.request_count("POST") == 1
    assert remote_names(emulator) == Counter({"App 0": 1})
    # Asked to stop while waiting: it stays in doubt, held back, for the next run.
    again = desired_env(tmp_path / "other", emulator.url, count=1, prefix="Held")
    again.secrets_path.parent.mkdir(parents=True, mode=0o700)
    with journal.JournalWriter(journal.journal_path(again.secrets_path)) as writer:
        writer.append(journal.intent("Held 0"))
    stop = threading.Event()
    stop.set()
    held = run_apply(again, emulator, lag_window=30.0, stop=stop)
    assert [name for name, _ in held.held_back] == ["Held 0"]
    assert remote_names(emulator)["Held 0"] == 0


def test_get_429_with_retry_after_as_a_date_is_retried(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    emulator.add_fault(Fault("429", method="GET", retry_after=when))
    result = run_apply(env, emulator)
    assert (result.ok, emulator.request_count("POST"), remote_names(emulator)["App 0"]) == (
        True,
        1,
        1,
    )


def test_post_429_with_retry_after_as_a_date_is_retried(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    emulator.add_fault(Fault("429", method="POST", retry_after=when))
    result = run_apply(env, emulator)
    assert (result.ok, emulator.request_count("POST"), remote_names(emulator)["App 0"]) == (
        True,
        2,
        1,
    )


@pytest.mark.parametrize(
    "fault",
    [Fault("drop_after_commit", method="POST"), Fault("slow", method="POST", delay=1.5)],
    ids=["drop_after_commit", "slow"],
)
def test_post_committed_without_answer_is_recorded_as_not_captured(
    emulator: Emulator, tmp_path: Path, fault: Fault
) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    emulator.add_fault(fault)
    result = run_apply(env, emulator, timeout=0.5)
    app_id = remote_ids(emulator)["App 0"]
    assert (result.ok, result.not_captured) == (False, [("App 0", app_id)])
    assert remote_names(emulator)["App 0"] == 1
    assert stored_entries(env)["App 0"] == {"id": app_id, "api_key": None, "key_captured": False}


def test_not_captured_app_is_reported_once_and_never_created_again(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    run_apply(env, emulator)
    posts = emulator.request_count("POST")
    second = run_apply(env, emulator)
    assert (second.ok, second.not_captured, emulator.request_count("POST")) == (True, [], posts)


def test_post_that_keeps_failing_with_unknown_outcome_gives_up(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    emulator.add_fault(Fault("500", method="POST", times=10))
    result = run_apply(env, emulator)
    assert (result.ok, [name for name, _ in result.failed]) == (False, ["App 0"])
    # Sent again only after a lag window without it listed, and at most MAX_SENDS times.
    assert emulator.request_count("POST") == MAX_SENDS
    assert "not sent again" in result.failed[0][1]


def test_unauthorized_post_stops_further_creates(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=6)
    with MiniVoiceClient(emulator.url, TEST_API_KEY) as lister:
        remote = lister.list_applications()
    assert remote == []
    bad = MiniVoiceClient(emulator.url, "mvtest_wrong_key")
    with pytest.raises(MvsyncError, match="refused the API key"):
        apply_environment(env, bad, settings=FAST, secret_of=secret_of)
    bad.close()
    assert emulator.request_count("POST") == 0


# --- faults on the GET ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("429", method="GET"),
        Fault("429", method="GET", retry_after="1"),
        Fault("500", method="GET"),
        Fault("503", method="GET"),
        Fault("drop_before_commit", method="GET"),
        Fault("drop_after_commit", method="GET"),
        Fault("slow", method="GET", delay=1.5),
    ],
    ids=lambda f: f"{f.kind}-retry-after-{f.retry_after}",
)
def test_get_fault_is_retried_and_apply_succeeds(
    emulator: Emulator, tmp_path: Path, fault: Fault
) -> None:
    env = desired_env(tmp_path, emulator.url)
    emulator.add_fault(fault)
    result = run_apply(env, emulator, timeout=0.5)
    assert result.ok
    assert remote_names(emulator) == Counter({"App 0": 1, "App 1": 1, "App 2": 1})
    assert emulator.request_count("POST") == 3


# --- a previous run's journal ------------------------------------------------------------


def write_journal(env: DesiredEnvironment, *records: journal.JournalRecord) -> None:
    env.secrets_path.parent.mkdir(exist_ok=True)
    with journal.JournalWriter(journal.journal_path(env.secrets_path)) as writer:
        for record in records:
            writer.append(record)


def test_intent_with_a_remote_app_becomes_not_captured_and_exits_1(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=2)
    with client_for(emulator) as client:
        made = client.create_application(
            CreateRequest(
                name="App 0",
                answer_url=env.apps[0].answer_url,
                webhook_url=env.apps[0].webhook_url,
            )
        )
    write_journal(env, journal.intent("App 0"))
    result = run_apply(env, emulator)
    assert result.not_captured == [("App 0", made.id)]
    assert stored_entries(env)["App 0"]["key_captured"] is False
    assert (result.ok, [name for name, _ in result.created]) == (False, ["App 1"])


def test_intent_without_a_remote_app_is_void_and_created(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    write_journal(env, journal.intent("App 0"))
    result = run_apply(env, emulator)
    assert (result.ok, result.not_captured, remote_names(emulator)["App 0"]) == (True, [], 1)


def test_created_record_of_a_previous_run_is_folded(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url, count=1)
    with client_for(emulator) as client:
        made = client.create_application(
            CreateRequest(
                name="App 0",
                answer_url=env.apps[0].answer_url,
                webhook_url=env.apps[0].webhook_url,
            )
        )
    write_journal(
        env,
        journal.intent("App 0"),
        journal.created("App 0", made.id, made.api_key, made.created_at),
    )
    result = run_apply(env, emulator)
    assert result.ok
    assert stored_entries(env)["App 0"]["api_key"] == made.api_key.get_secret_value()
    assert not journal.journal_path(env.secrets_path).exists()


# --- stopping --------------------------------------------------------------------------


def test_stop_before_creating_creates_nothing(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    stop = threading.Event()
    stop.set()
    result = run_apply(env, emulator, stop=stop)
    assert (result.interrupted, emulator.request_count("POST")) == (True, 0)


class StopAfterFirst(NullReporter):
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def created(self, name: str, app_id: str) -> None:
        self.stop.set()


def test_stop_during_creates_starts_no_new_one_and_stores_every_key(
    make_emulator: object, tmp_path: Path
) -> None:
    emulator = make_emulator(latency=0.05)  # type: ignore[operator]
    env = desired_env(tmp_path, emulator.url, count=20)
    stop = threading.Event()
    settings = ApplySettings(concurrency=2, unknown_wait=0.01, confirm_deadline=1.0)
    result = run_apply(env, emulator, settings=settings, stop=stop, reporter=StopAfterFirst(stop))
    remote = remote_ids(emulator)
    entries = stored_entries(env)
    assert result.interrupted
    assert 1 <= len(remote) < 20
    assert {name: entries[name]["id"] for name in remote} == remote
    assert all(entries[name]["api_key"] for name in remote)


# --- secrets never leave ----------------------------------------------------------------


def test_result_and_errors_hold_no_secret(emulator: Emulator, tmp_path: Path) -> None:
    env = desired_env(tmp_path, emulator.url)
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    result = run_apply(env, emulator)
    keys = [str(e["api_key"]) for e in stored_entries(env).values() if e["api_key"]]
    assert keys
    text = repr(result) + json.dumps([c.to_json() for c in result.plan.changes])  # type: ignore[union-attr]
    assert_no_secrets(text, extra=keys)


# --- confirming the new applications ----------------------------------------------


class _FailListsOnceCreating(NullReporter):
    """Makes every GET fail from the moment creates start: nothing can be confirmed."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def creating(self, total: int) -> None:
        self.emulator.add_fault(Fault("500", method="GET", times=10_000))


def test_applications_not_yet_listed_are_reported_unconfirmed_with_their_keys_stored(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = desired_env(tmp_path, emulator.url, count=2)
    settings = ApplySettings(unknown_wait=0.01, confirm_deadline=0.3, confirm_backoff=0.01)
    result = run_apply(env, emulator, settings=settings, reporter=_FailListsOnceCreating(emulator))
    emulator.clear_faults()
    assert not result.ok
    assert sorted(result.unconfirmed) == sorted(remote_ids(emulator).items())
    assert all(
        str(entry["api_key"]).startswith("mv_live_") for entry in stored_entries(env).values()
    )


def test_an_application_a_previous_run_created_is_not_waited_for(
    emulator: Emulator, tmp_path: Path
) -> None:
    # A previous run was killed after its intent: the app exists, its key is lost.
    env = killed_after_creating_app_0(tmp_path, emulator)
    gets_before = emulator.request_count("GET")
    result = run_apply(env, emulator)
    assert [name for name, _ in result.not_captured] == ["App 0"]
    assert result.unconfirmed == []
    # The first list found it, and nothing was created: no confirmation round at all.
    assert emulator.request_count("GET") - gets_before == 1


# --- a create answer that is malformed (a stand-in for the API on loopback) ------------

ISSUED_KEY = "mv_live_ISSUED_CANARY_7c1e"


class _StandIn(ThreadingHTTPServer):
    """The API as a faulty server could answer: POST commits, answers ``post_body``."""

    daemon_threads = True

    def __init__(self, post_body: Callable[[dict[str, str], dict[str, object]], bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _StandInHandler)
        self.post_body = post_body
        self.listed: list[dict[str, object]] = []
        self.posts = 0
        self.list_new_apps = True
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _StandInHandler(BaseHTTPRequestHandler):
    server: _StandIn

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        apps = self.server.listed
        self._send(200, json.dumps({"data": apps, "count": len(apps)}).encode())

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts += 1
        app: dict[str, object] = {
            "id": f"app_20260529T120000.00000000{self.server.posts}",
            "customer_id": "cust_1",
            "name": sent["name"],
            "answer_url": sent["answer_url"],
            "webhook_url": sent.get("webhook_url"),
            "created_at": "2026-05-29T12:00:00Z",
        }
        if self.server.list_new_apps:
            self.server.listed.append(app)
        self._send(201, self.server.post_body(sent, app))

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[Callable[..., _StandIn]]:
    servers: list[_StandIn] = []

    def serve(post_body: Callable[[dict[str, str], dict[str, object]], bytes]) -> _StandIn:
        server = _StandIn(post_body)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _apply_against(server: _StandIn, env: DesiredEnvironment) -> tuple[ApplyResult, list[str]]:
    notes: list[str] = []

    class Notes(NullReporter):
        def note(self, message: str) -> None:
            notes.append(message)

    retry = RetryPolicy(deadline=3.0, initial_backoff=0.01, max_backoff=0.05)
    settings = ApplySettings(unknown_wait=0.01, confirm_deadline=0.3, confirm_backoff=0.01)
    with MiniVoiceClient(server.url, TEST_API_KEY, timeout=2.0, retry=retry) as client:
        result = apply_environment(
            env, client, settings=settings, secret_of=secret_of, reporter=Notes()
        )
    assert_no_secrets(repr(result) + "\n".join(notes), extra=(ISSUED_KEY,))
    return result, notes


def _with_key(app: dict[str, object], **fields: object) -> bytes:
    return json.dumps({**app, "api_key": ISSUED_KEY, **fields}).encode()


def test_a_key_in_a_create_answer_with_a_malformed_id_is_stored_with_the_listed_id(
    stand_in: Callable[..., _StandIn], tmp_path: Path
) -> None:
    server = stand_in(lambda _sent, app: _with_key(app, id=12345))
    env = desired_env(tmp_path, server.url, count=1)
    result, _ = _apply_against(server, env)
    app_id = "app_20260529T120000.000000001"
    assert server.posts == 1
    assert stored_entries(env) == {
        "App 0": {"id": app_id, "api_key": ISSUED_KEY, "key_captured": True}
    }
    assert (result.ok, result.created, result.failed) == (True, [("App 0", app_id)], [])


def test_a_key_in_a_create_answer_with_a_readable_id_is_stored_with_that_id(
    stand_in: Callable[..., _StandIn], tmp_path: Path
) -> None:
    server = stand_in(lambda _sent, app: _with_key(app, created_at=5))
    env = desired_env(tmp_path, server.url, count=1)
    result, _ = _apply_against(server, env)
    app_id = "app_20260529T120000.000000001"
    assert server.posts == 1
    assert stored_entries(env)["App 0"] == {
        "id": app_id,
        "api_key": ISSUED_KEY,
        "key_captured": True,
    }
    assert (result.ok, result.created) == (True, [("App 0", app_id)])


def test_a_key_whose_application_is_not_listed_is_stored_under_an_unknown_id_and_reported(
    stand_in: Callable[..., _StandIn], tmp_path: Path
) -> None:
    server = stand_in(lambda _sent, app: _with_key(app, id=5))
    server.list_new_apps = False
    env = desired_env(tmp_path, server.url, count=2)
    result, notes = _apply_against(server, env)
    assert server.posts == 2  # one each: a POST that returned a key is never sent again
    entries = stored_entries(env)
    assert sorted(entries) == ["App 0", "App 1"]
    for entry in entries.values():
        assert entry["api_key"] == ISSUED_KEY
        assert str(entry["id"]).startswith("unknown-")
    assert entries["App 0"]["id"] != entries["App 1"]["id"]
    assert not result.ok and result.failed == []
    assert sorted(name for name, _ in result.unconfirmed) == ["App 0", "App 1"]
    assert any(
        "key is stored with the id unknown-" in note
        and "because the list shows no new application(s) of that name" in note
        for note in notes
    )


def test_a_2xx_create_answer_without_a_readable_key_is_never_posted_again(
    stand_in: Callable[..., _StandIn], tmp_path: Path
) -> None:
    server = stand_in(lambda _sent, _app: b"api_key=mv_live_ISSUED_CANARY_7c1e not json")
    server.list_new_apps = False
    env = desired_env(tmp_path, server.url, count=1)
    result, _ = _apply_against(server, env)
    assert server.posts == 1
    ((name, message),) = result.failed
    assert name == "App 0"
    assert message.startswith("probably created, key not captured, not in the list yet: ")
    assert "not created" not in message.replace("probably created", "")


class _SeesTheSecretsFileWhenReported(NullReporter):
    """Records whether the not-captured entry was already on disk when it was reported."""

    def __init__(self, env: DesiredEnvironment) -> None:
        self.env = env
        self.on_disk_when_reported: list[bool] = []

    def not_captured(self, name: str, app_id: str) -> None:
        stored = read_secrets(self.env.secrets_path)
        self.on_disk_when_reported.append(stored is not None and name in stored.applications)


def test_a_previous_runs_lost_key_is_reported_before_the_secrets_file_records_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Killed between writing the entry and reporting it, a run would lose the report for
    # good: no later run reports an entry that is already stored.
    env = killed_after_creating_app_0(tmp_path, emulator)
    reporter = _SeesTheSecretsFileWhenReported(env)
    run_apply(env, emulator, reporter=reporter)
    assert reporter.on_disk_when_reported == [False]
    assert stored_entries(env)["App 0"]["key_captured"] is False
