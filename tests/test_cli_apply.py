"""``mvsync apply`` as a real process against the emulator on loopback."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.emulator import Emulator, Fault
from mvsync.model import CreateRequest
from mvsync.store.keys import read_secrets
from mvsync.store.lock import EnvironmentLock, lock_path

NOT_CAPTURED = "created, key not captured — issue a new key in MiniVoice"


def write_manifest(folder: Path, url: str, count: int = 3) -> Path:
    apps = "".join(
        f"  - name: App {n}\n    answer_url: https://example.com/{n}/answer\n" for n in range(count)
    )
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        "version: 1\n"
        "environments:\n"
        f"  dev:\n    api_url: {url}\n    api_key_env: MV_TEST_KEY\n"
        "defaults:\n"
        "  webhook_url: https://example.com/hooks\n"
        "  webhook_secret: ${MV_WEBHOOK_SECRET}\n"
        f"applications:\n{apps}"
    )
    return manifest


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MV_TEST_KEY=TEST_API_KEY,
        MV_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        MVSYNC_API_DEADLINE="5",
        MVSYNC_HTTP_TIMEOUT="1",
        MVSYNC_CONFIRM_DEADLINE="2",
        MVSYNC_UNKNOWN_WAIT="0.05",
        # The emulator's list never lags: a create in doubt may be sent again at once.
        MVSYNC_LAG_WINDOW="0",
        NO_COLOR="1",
    )
    env.pop("MVSYNC_FILE", None)
    return env


def command(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mvsync", "-f", str(folder / "mvsync.yaml"), *args]


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(folder, *args),
        capture_output=True,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def start(folder: Path, *args: str, **variables: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(folder, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**cli_env(), **variables},
        stdin=subprocess.DEVNULL,
    )


def secrets_path(folder: Path) -> Path:
    return folder / ".mvsync" / "dev.secrets.yaml"


def stored(folder: Path) -> dict[str, tuple[str, str | None]]:
    loaded = read_secrets(secrets_path(folder))
    assert loaded is not None
    return {
        name: (entry.id, entry.api_key.get_secret_value() if entry.api_key else None)
        for name, entry in loaded.applications.items()
    }


def remote(emulator: Emulator) -> dict[str, str]:
    return {app["name"]: app["id"] for app in emulator.applications(TEST_API_KEY)}


def remote_names(emulator: Emulator) -> Counter[str]:
    return Counter(app["name"] for app in emulator.applications(TEST_API_KEY))


def create_out_of_band(emulator: Emulator, name: str) -> None:
    from mvsync.api.client import MiniVoiceClient

    with MiniVoiceClient(emulator.url, TEST_API_KEY) as client:
        client.create_application(CreateRequest(name=name, answer_url="https://x.example/a"))


# --- the normal path ---------------------------------------------------------------


def test_apply_creates_everything_and_exits_0(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    done = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stderr
    assert sorted(remote(emulator)) == ["App 0", "App 1", "App 2"]
    assert {name: app_id for name, (app_id, _) in stored(tmp_path).items()} == remote(emulator)
    assert secrets_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert f"Keys are in {secrets_path(tmp_path)}" in done.stdout
    assert (
        "Apply complete for environment 'dev': 3 created; now 3 equal to the manifest,"
        " 0 drifted, 0 ambiguous."
    ) in done.stdout


def test_each_create_is_reported_once_without_a_terminal(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    done = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stderr
    created = [line for line in done.stdout.splitlines() if "+ created" in line]
    ids = remote(emulator)
    assert sorted(created) == [f'+ created "{name}" ({ids[name]})' for name in sorted(ids)]
    assert "3 created" in done.stdout  # the summary counts them


def test_second_apply_sends_no_post_and_exits_0(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    run(tmp_path, "apply", "--env", "dev", "--yes")
    posts = emulator.request_count("POST")
    again = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert (again.returncode, emulator.request_count("POST")) == (0, posts)
    assert "0 created" in again.stdout


def test_secrets_file_is_0600_under_umask_000(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    done = subprocess.run(
        [
            "sh",
            "-c",
            'umask 000 && exec "$@"',
            "sh",
            *command(tmp_path, "apply", "--env", "dev", "--yes"),
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert secrets_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert secrets_path(tmp_path).parent.stat().st_mode & 0o777 == 0o700


def test_no_secret_in_any_output_or_plan_file(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url, count=4)
    plan_file = tmp_path / "plan.json"
    planned = run(tmp_path, "plan", "--env", "dev", "-o", str(plan_file))
    assert planned.returncode == 0, planned.stderr
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    emulator.add_fault(Fault("500", method="POST"))
    applied = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(plan_file))
    # Incomplete (exit 1): the dropped answer's key was never seen.
    assert applied.returncode == 1, applied.stderr
    # The 500 left its create in doubt: still unlisted after the lag window (0 here), it
    # was sent again in this run.
    assert "3 created, 1 key not captured" in applied.stdout, applied.stdout
    assert "sending it again (2 of 3)" in applied.stdout + applied.stderr
    write_manifest(tmp_path, emulator.url, count=5)  # one more: --debug logs a create too
    debug = run(tmp_path, "--debug", "apply", "--env", "dev", "--yes")
    assert debug.returncode == 0, debug.stderr
    for method in ("GET", "POST"):
        # The client's request line, bearer masked: --debug must print, not only not leak.
        request_line = (
            f"debug: mvsync.api.client: {method} {re.escape(emulator.url)}/v1/applications"
            " attempt 1 "
            r"\(timeout [0-9.]+s; Authorization: Bearer \*\*\*; User-Agent: mvsync/"
        )
        assert re.search(request_line, debug.stderr), debug.stderr
    keys = [key for _, key in stored(tmp_path).values() if key]
    assert len(keys) == 4
    for text in (
        planned.stdout,
        planned.stderr,
        applied.stdout,
        applied.stderr,
        debug.stdout,
        debug.stderr,
        plan_file.read_text(),
    ):
        assert_no_secrets(text, extra=keys)


# --- refusals with zero POSTs ------------------------------------------------------------


def test_stale_saved_plan_is_refused_with_zero_posts(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    assert run(tmp_path, "plan", "--env", "dev", "-o", str(plan_file)).returncode == 0
    create_out_of_band(emulator, "Someone else's")
    posts = emulator.request_count("POST")
    refused = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(plan_file))
    assert refused.returncode == 1
    assert "the remote applications changed since the plan was made" in refused.stderr
    [shown_id] = [i for name, i in remote(emulator).items() if name == "Someone else's"]
    assert f'"Someone else\'s" appeared (unmanaged, {shown_id}); run mvsync plan' in refused.stderr
    assert emulator.request_count("POST") == posts


def test_stale_saved_plan_names_a_create_that_now_exists(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    assert run(tmp_path, "plan", "--env", "dev", "-o", str(plan_file)).returncode == 0
    create_out_of_band(emulator, "App 1")
    refused = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(plan_file))
    assert refused.returncode == 1
    # Its answer_url differs from the manifest's: it is drift now.
    assert f"'App 1' was create, now drift, {remote(emulator)['App 1']}" in refused.stderr
    assert emulator.request_count("POST") == 1


def test_saved_plan_of_another_manifest_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    plan_file = tmp_path / "plan.json"
    run(tmp_path, "plan", "--env", "dev", "-o", str(plan_file))
    write_manifest(tmp_path, emulator.url, count=4)
    refused = run(tmp_path, "apply", "--env", "dev", "--yes", "--plan", str(plan_file))
    assert (refused.returncode, emulator.request_count("POST")) == (1, 0)
    assert "the manifest changed since the plan was made: 'App 3' appeared (create)" in (
        refused.stderr
    )


def test_max_creates_is_refused_with_zero_posts(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    refused = run(tmp_path, "apply", "--env", "dev", "--yes", "--max-creates", "2")
    assert (refused.returncode, emulator.request_count("POST")) == (1, 0)
    assert "more than --max-creates 2" in refused.stderr


def test_group_readable_secrets_file_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    run(tmp_path, "apply", "--env", "dev", "--yes")
    secrets_path(tmp_path).chmod(0o644)
    write_manifest(tmp_path, emulator.url, count=4)
    requests = emulator.request_count()
    refused = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert (refused.returncode, emulator.request_count()) == (1, requests)
    assert "chmod 600" in refused.stderr


def test_missing_webhook_secret_variable_fails_before_any_post(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    env = cli_env()
    del env["MV_WEBHOOK_SECRET"]
    refused = subprocess.run(
        command(tmp_path, "apply", "--env", "dev", "--yes"), capture_output=True, text=True, env=env
    )
    assert (refused.returncode, emulator.request_count("POST")) == (1, 0)
    assert "MV_WEBHOOK_SECRET" in refused.stderr


def test_missing_env_option_is_a_usage_error_exit_1(tmp_path: Path) -> None:
    write_manifest(tmp_path, "http://127.0.0.1:9")
    assert run(tmp_path, "apply").returncode == 1


# --- key not captured ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault("drop_after_commit", method="POST"), Fault("slow", method="POST", delay=2.0)],
    ids=["drop_after_commit", "slow"],
)
def test_key_not_captured_is_reported_with_its_id_and_exits_1(
    emulator: Emulator, tmp_path: Path, fault: Fault
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    emulator.add_fault(fault)
    done = run(tmp_path, "apply", "--env", "dev", "--yes")
    app_id = remote(emulator)["App 0"]
    assert done.returncode == 1
    assert f'environment dev, name "App 0", id {app_id}: {NOT_CAPTURED}' in done.stdout
    assert stored(tmp_path) == {"App 0": (app_id, None)}


def test_next_apply_after_not_captured_creates_nothing_and_reports_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url, count=2)
    emulator.add_fault(Fault("drop_after_commit", method="POST"))
    run(tmp_path, "apply", "--env", "dev", "--yes")
    posts = emulator.request_count("POST")
    again = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert (again.returncode, emulator.request_count("POST")) == (0, posts)
    assert NOT_CAPTURED not in again.stdout
    assert remote_names(emulator) == Counter({"App 0": 1, "App 1": 1})


# --- concurrency and locks -------------------------------------------------------------------


def test_two_applies_at_once_never_duplicate(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(latency=0.02)
    write_manifest(tmp_path, emulator.url, count=20)
    first = start(tmp_path, "apply", "--env", "dev", "--yes", "--lock-timeout", "30")
    second = start(tmp_path, "apply", "--env", "dev", "--yes", "--lock-timeout", "30")
    codes = (first.wait(timeout=60), second.wait(timeout=60))
    assert codes == (0, 0)
    assert emulator.request_count("POST") == 20
    assert max(remote_names(emulator).values()) == 1
    assert len(stored(tmp_path)) == 20


def test_two_applies_at_once_without_waiting_one_refused(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    # The overlap is forced: 40 creates one at a time, 0.1s each, hold the lock for about
    # 4s; the second starts once the first is creating and must end while it still is.
    emulator = make_emulator(latency=0.1)
    write_manifest(tmp_path, emulator.url, count=40)
    first = start(tmp_path, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("Creating "):
            break
    second = run(tmp_path, "apply", "--env", "dev", "--yes")
    assert first.poll() is None, "the first apply ended before the second was refused"
    _, err = first.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (0, 1), err + second.stderr
    assert "another apply holds the lock" in second.stderr
    assert max(remote_names(emulator).values()) == 1
    assert emulator.request_count("POST") == 40
    assert len(stored(tmp_path)) == 40


def test_held_lock_refuses_apply_naming_the_holder(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    secrets_path(tmp_path).parent.mkdir(mode=0o700)
    with EnvironmentLock(lock_path(secrets_path(tmp_path)), command="mvsync apply --env dev"):
        refused = run(tmp_path, "apply", "--env", "dev", "--yes", "--lock-timeout", "0.2")
    assert refused.returncode == 1
    assert f"pid {os.getpid()}" in refused.stderr
    assert emulator.request_count("POST") == 0


# --- signals ----------------------------------------------------------------------------------


def test_sigterm_during_creates_exits_130_with_every_key_stored(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(latency=0.05)
    write_manifest(tmp_path, emulator.url, count=40)
    process = start(tmp_path, "apply", "--env", "dev", "--yes", "--concurrency", "2")
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("+ created"):
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    created = remote(emulator)
    assert process.returncode == 130, err
    assert 1 <= len(created) < 40
    entries = stored(tmp_path)
    assert {name: entries[name][0] for name in created} == created
    assert all(entries[name][1] for name in created)
    assert "Interrupted" in out


SLOW_IMPORT = """
import builtins, os, time
_real = builtins.__import__
def _slow(name, *args, **kwargs):
    if name == "httpx" and not os.path.exists(os.environ["MARK"]):
        open(os.environ["MARK"], "w").close()
        time.sleep(5)
    return _real(name, *args, **kwargs)
builtins.__import__ = _slow
"""


def test_sigterm_while_apply_is_still_importing_exits_130_with_a_word(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A CI cancel in apply's first moments (its imports) exits 130 and says so, not 143."""
    write_manifest(tmp_path, emulator.url)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_IMPORT)
    mark = tmp_path / "importing-httpx"
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH", "")]))
    process = start(tmp_path, "apply", "--env", "dev", "--yes", PYTHONPATH=path, MARK=str(mark))
    deadline = time.monotonic() + 30
    while not mark.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mark.exists(), "apply never reached its import of httpx"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted: nothing was created" in err
    assert emulator.request_count() == 0


def test_sigint_before_creating_exits_130_and_creates_nothing(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(latency=1.0)  # the first list is slow: the signal lands in it
    write_manifest(tmp_path, emulator.url)
    process = start(tmp_path, "apply", "--env", "dev", "--yes")
    deadline = time.monotonic() + 20
    while emulator.request_count("GET") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert (process.returncode, emulator.request_count("POST")) == (130, 0), err


def test_second_sigint_exits_at_once_and_the_next_apply_reports_what_was_in_flight(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    # 1 s per answer: a create is in flight (committed, answer pending) when both signals land.
    emulator = make_emulator(latency=1.0)
    write_manifest(tmp_path, emulator.url, count=5)
    # Each attempt's whole time is bounded by the HTTP timeout: 1 s would race the latency.
    process = start(
        tmp_path, "apply", "--env", "dev", "--yes", "--concurrency", "1", MVSYNC_HTTP_TIMEOUT="5"
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Creating "):
            break
    deadline = time.monotonic() + 20
    while emulator.request_count("POST") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    in_flight = remote(emulator)
    assert (process.returncode, len(in_flight)) == (130, 1)
    emulator.set_latency(0.0)
    again = run(tmp_path, "apply", "--env", "dev", "--yes")
    (name, app_id), *_ = in_flight.items()
    assert f'name "{name}", id {app_id}: {NOT_CAPTURED}' in again.stdout
    assert again.returncode == 1
    assert max(remote_names(emulator).values()) == 1
    assert len(remote(emulator)) == 5


# --- the example manifest and the progress line ----------------------------------------------


def test_example_manifest_dev_is_created_once_with_every_key_stored(
    emulator: Emulator, tmp_path: Path
) -> None:
    from helpers import REPO_ROOT

    (tmp_path / "mvsync.yaml").write_text((REPO_ROOT / "examples" / "minivoice.yaml").read_text())
    env = cli_env()
    env.update(MVSYNC_DEV_API_URL=emulator.url, MINIVOICE_API_KEY_DEV=TEST_API_KEY)
    apply_dev = [*command(tmp_path, "apply", "--env", "dev", "--yes")]
    first = subprocess.run(apply_dev, capture_output=True, text=True, env=env, timeout=60)
    posts = emulator.request_count("POST")
    second = subprocess.run(apply_dev, capture_output=True, text=True, env=env, timeout=60)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert (posts, emulator.request_count("POST")) == (3, 3)
    assert secrets_path(tmp_path).stat().st_mode & 0o777 == 0o600
    entries = stored(tmp_path)
    assert {name: app_id for name, (app_id, _) in entries.items()} == remote(emulator)
    assert all(key and key.startswith("mv_live_") for _, key in entries.values())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_shows_done_total_rate_and_time_left() -> None:
    from mvsync.cli.progress import CliReporter

    now = [0.0]
    out, err = io.StringIO(), Terminal()
    reporter = CliReporter(out, err, clock=lambda: now[0])
    reporter.creating(4)
    now[0] = 1.0
    reporter.created("A", "app_1")
    now[0] = 2.0
    reporter.created("B", "app_2")
    assert err.getvalue().endswith("[2/4] 1.0/s, about 2s left")
    assert "created" not in out.getvalue()  # one live line, not a line per create


def test_plain_lines_without_a_terminal() -> None:
    from mvsync.cli.progress import CliReporter

    out, err = io.StringIO(), io.StringIO()
    reporter = CliReporter(out, err)
    reporter.creating(1)
    reporter.created("A\x1b[31m", "app_1")
    assert out.getvalue().splitlines() == [
        "Creating 1 application...",
        '+ created "A\\x1b[31m" (app_1)',
    ]
    assert err.getvalue() == ""


HOSTILE_ID = "app_1\x1b]0;PWN\x07\n::error::fake\u202e"
SHOWN_ID = "app_1\\x1b]0;PWN\\x07\\x0a::error::fake\\u202e"


def _no_raw_controls(text: str) -> None:
    assert not any(c in text for c in "\x1b\x07\u202e\u2066\x9b"), text
    assert not any(line.startswith("::") for line in text.splitlines()), text


def test_progress_lines_escape_ids_names_and_messages() -> None:
    from mvsync.cli.progress import CliReporter

    out, err = io.StringIO(), io.StringIO()
    reporter = CliReporter(out, err)
    reporter.creating(3)
    reporter.created("A\u202e", HOSTILE_ID)
    reporter.not_captured("B", HOSTILE_ID)
    reporter.failed("C", "not created: POST answered 400: bad \x1b[31m\n::error::x\u2066")
    reporter.note('the id of "D\x9b" is \n::warning::y')
    text = out.getvalue()
    _no_raw_controls(text)
    assert f'+ created "A\\u202e" ({SHOWN_ID})' in text
    assert f'! "B" ({SHOWN_ID}): ' in text


def test_result_summary_escapes_ids_and_says_what_is_known_of_a_failed_create(
    tmp_path: Path,
) -> None:
    from mvsync.apply.settings import ApplyResult
    from mvsync.planner import Action, Change, FieldDrift
    from mvsync.render import render_apply_result

    result = ApplyResult(environment="dev", secrets_path=tmp_path / "dev.secrets.yaml")
    result.drift = [
        Change(
            Action.DRIFT,
            "D",
            id=HOSTILE_ID,
            drift=(FieldDrift("answer_url", "https://e/\u202e\n::x", "https://e/"),),
        )
    ]
    result.ambiguous = [Change(Action.AMBIGUOUS, "A", ids=(HOSTILE_ID, "../\u2066x"))]
    result.not_captured = [("N", HOSTILE_ID)]
    result.unconfirmed = [("U", HOSTILE_ID)]
    result.renamed = [("R (x)", HOSTILE_ID)]
    result.failed = [("Sales", "probably created, key not captured, not in the list yet: ...")]
    out = io.StringIO()
    render_apply_result(result, out)
    text = out.getvalue()
    _no_raw_controls(text)
    assert text.count(SHOWN_ID) == 5
    assert "../\\u2066x" in text
    assert 'remote "https://e/\\u202e\\x0a::x"' in text
    assert 'x "Sales": probably created, key not captured' in text
    assert "was not created" not in text
