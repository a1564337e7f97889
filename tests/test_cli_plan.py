"""``mvsync plan`` end to end against the real emulator on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.api.client import MiniVoiceClient
from mvsync.cli import main
from mvsync.emulator import Emulator
from mvsync.model import CreateRequest
from mvsync.planfile import read_plan

MANIFEST = Path(__file__).parent / "fixtures" / "plan" / "two_envs.yaml"
# The second account (prod) of the emulator: a key that must not leak either.
PROD_KEY = "mvtest_PROD_CANARY_51d0e2"
SECRETS = (PROD_KEY,)

STAGING_APPS = [
    ("Support IVR (staging)", "https://staging.example.com/minivoice/answer"),
    ("Sales IVR", "https://example.com/minivoice/sales"),
]
PROD_APPS = [
    ("Support IVR", "https://example.com/minivoice/answer"),
    ("Sales IVR", "https://example.com/minivoice/sales"),
]
HOOKS = "https://crm.example.com/minivoice/webhooks"


@pytest.fixture
def accounts(make_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """An emulator with two accounts, and the variables the fixture manifest reads."""
    server = make_emulator(api_keys=[TEST_API_KEY, PROD_KEY])
    _point_at(monkeypatch, server.url)
    return server


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MV_API_URL", url)
    monkeypatch.setenv("MV_KEY_STAGING", TEST_API_KEY)
    monkeypatch.setenv("MV_KEY_PROD", PROD_KEY)
    monkeypatch.setenv("MV_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET)
    for name in ("GITHUB_STEP_SUMMARY", "NO_COLOR", "MVSYNC_FILE", "MVSYNC_API_DEADLINE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "-f", str(MANIFEST), *args])
    out, err = capsys.readouterr()
    assert_no_secrets(out + err, extra=SECRETS)
    code = exit_.value.code
    assert isinstance(code, int)
    return code, out, err


def _create(
    server: Emulator, api_key: str, apps: list[tuple[str, str]], hooks: str = HOOKS
) -> None:
    with MiniVoiceClient(server.url, api_key) as client:
        for name, answer_url in apps:
            client.create_application(
                CreateRequest(name=name, answer_url=answer_url, webhook_url=hooks)
            )


def test_plan_shows_the_creates_of_every_environment(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    assert '+ create "Support IVR (staging)"' in out
    assert '+ create "Support IVR"' in out
    assert out.count('+ create "Sales IVR"') == 2
    assert out.splitlines()[-1].startswith("Plan for 2 environments: 4 to create")


def test_detailed_exitcode_is_2_with_creates_then_0_once_they_exist(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--detailed-exitcode")[0] == 2
    _create(accounts, TEST_API_KEY, STAGING_APPS)
    _create(accounts, PROD_KEY, PROD_APPS)
    code, out, _ = run(capsys, "--detailed-exitcode")
    assert code == 0
    assert out.splitlines()[-1].startswith("No changes in 2 environments")


@pytest.mark.parametrize("equal", ["staging", "prod"])
def test_detailed_exitcode_is_2_when_any_environment_has_a_create(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], equal: str
) -> None:
    # One environment (first or last in the manifest) equal to it, the other one create
    # short: the CI gate must see the create whichever environment holds it.
    if equal == "staging":
        _create(accounts, TEST_API_KEY, STAGING_APPS)
        _create(accounts, PROD_KEY, PROD_APPS[1:])
        short = '+ create "Support IVR"'
    else:
        _create(accounts, PROD_KEY, PROD_APPS)
        _create(accounts, TEST_API_KEY, STAGING_APPS[1:])
        short = '+ create "Support IVR (staging)"'
    code, out, _ = run(capsys, "--detailed-exitcode")
    assert code == 2
    assert out.count("+ create") == 1
    assert short in out
    assert out.splitlines()[-1].startswith("Plan for 2 environments: 1 to create")


def test_detailed_exitcode_is_2_for_drift(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(accounts, TEST_API_KEY, STAGING_APPS, hooks="https://old.example.com/hooks")
    code, out, _ = run(capsys, "--env", "staging", "--detailed-exitcode")
    assert code == 2
    assert '~ drift "Sales IVR"' in out


def test_unmanaged_applications_alone_exit_0_with_detailed_exitcode(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(accounts, TEST_API_KEY, [*STAGING_APPS, ("Old IVR", "https://old.example.com/")])
    code, out, _ = run(capsys, "--env", "staging", "--detailed-exitcode")
    assert code == 0
    assert '? unmanaged "Old IVR"' in out


def test_plan_sends_one_get_per_environment(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys)
    assert accounts.request_count("GET", "/v1/applications") == 2
    assert accounts.request_count("POST") == 0


def test_plan_of_one_environment_sends_one_get(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--env", "prod", "--env", "prod")
    assert code == 0
    assert accounts.request_count("GET", "/v1/applications") == 1
    assert 'Environment "staging"' not in out


class _Api(BaseHTTPRequestHandler):
    """A stand-in API on loopback for what the emulator cannot do on purpose."""

    answer: Callable[[], tuple[int, bytes]]

    def do_GET(self) -> None:
        status, body = type(self).answer()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


@pytest.fixture
def stand_in() -> Iterator[Callable[[Callable[[], tuple[int, bytes]]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Callable[[], tuple[int, bytes]]) -> str:
        handler = type("Handler", (_Api,), {"answer": staticmethod(answer)})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_plan_lists_the_environments_concurrently(
    stand_in: Callable[[Callable[[], tuple[int, bytes]]], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each GET is answered only once both have arrived: listing one environment after
    # the other would wait out the barrier, fail, and exit 1.
    barrier = threading.Barrier(2, timeout=10)

    def answer() -> tuple[int, bytes]:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return 500, b'{"error": {"code": "internal_error", "message": "alone"}}'
        return 200, b'{"data": [], "count": 0}'

    _point_at(monkeypatch, stand_in(answer))
    monkeypatch.setenv("MVSYNC_API_DEADLINE", "5")
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert "4 to create" in out


def test_o_writes_a_saved_plan_with_no_secret(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved_path = tmp_path / "plan.json"
    assert run(capsys, "-o", str(saved_path))[0] == 0
    text = saved_path.read_text()
    assert_no_secrets(text, extra=SECRETS)
    assert "MV_WEBHOOK_SECRET" not in text
    saved = read_plan(saved_path)
    assert [env.name for env in saved.environments] == ["staging", "prod"]
    assert saved.environments[0].summary["create"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_format_prints_a_secret(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, _ = run(capsys, "--format", fmt)  # run() checks the canaries
    assert code == 0
    assert out


def test_json_format_prints_one_spec_document(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "--format", "json")
    document = json.loads(out)
    assert document["format_version"] == 1
    assert [e["summary"]["create"] for e in document["environments"]] == [2, 2]


def test_github_step_summary_gets_the_markdown_appended(
    accounts: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _, out, _ = run(capsys)
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert text.count("## mvsync plan") == 1
    assert text.count("| environment |") == 1
    assert "| environment |" not in out
    assert_no_secrets(text, extra=SECRETS)


def test_an_unknown_environment_is_an_error_listing_the_known_ones(
    accounts: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--env", "qa")
    assert code == 1
    assert "unknown environment 'qa' (the manifest defines: staging, prod)" in err
    assert accounts.request_count() == 0


def _error_lines(err: str) -> list[str]:
    """The error lines of stderr: without the retries told while they happened."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if "; retrying in " not in line]


def test_a_missing_api_key_variable_is_named(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MV_KEY_PROD")
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    (line,) = _error_lines(err)
    assert "MV_KEY_PROD" in line
    assert accounts.request_count() == 0


def test_a_refused_key_names_its_variable_and_the_url(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MV_KEY_PROD", "mvtest_not_a_known_key")
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    (line,) = _error_lines(err)
    assert line == (
        f"mvsync: error: environment 'prod': the API key in MV_KEY_PROD was refused by "
        f"{accounts.url}/v1/applications (401 unauthorized)"
    )
    assert "mvtest_not_a_known_key" not in err


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_network_failure_is_one_line_per_environment(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MV_API_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("MVSYNC_API_DEADLINE", "0.5")
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    lines = _error_lines(err)
    assert [line.split("'")[1] for line in lines] == ["staging", "prod"]


def test_a_malformed_list_answer_is_one_line(
    stand_in: Callable[[Callable[[], tuple[int, bytes]]], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _point_at(monkeypatch, stand_in(lambda: (200, b'{"data": "not a list"}')))
    code, out, err = run(capsys, "--env", "staging")
    assert (code, out) == (1, "")
    (line,) = _error_lines(err)
    assert line.startswith("mvsync: error: environment 'staging': ")


def test_a_failing_plan_writes_no_saved_plan(
    accounts: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MV_KEY_PROD", "mvtest_not_a_known_key")
    assert run(capsys, "-o", str(tmp_path / "plan.json"))[0] == 1
    assert list(tmp_path.iterdir()) == []


def test_the_installed_command_prints_no_traceback_on_error(accounts: Emulator) -> None:
    env = {"PATH": "/usr/bin:/bin", "MV_API_URL": accounts.url, "MV_KEY_STAGING": TEST_API_KEY}
    result = subprocess.run(
        [sys.executable, "-m", "mvsync", "plan", "-f", str(MANIFEST)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "MV_KEY_PROD" in result.stderr
    assert_no_secrets(result.stderr, extra=SECRETS)


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minivoice.yaml"


def test_the_example_manifest_plans_dev_creates_then_nothing_once_they_exist(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mvsync.manifest import load_manifest, resolve_environment

    monkeypatch.setenv("MVSYNC_DEV_API_URL", emulator.url)
    monkeypatch.setenv("MINIVOICE_API_KEY_DEV", TEST_API_KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    argv = ["plan", "-f", str(EXAMPLE), "--env", "dev", "--detailed-exitcode"]

    with pytest.raises(SystemExit) as first:
        main(argv)
    out = capsys.readouterr().out
    desired = resolve_environment(
        load_manifest(EXAMPLE), "dev", {"MVSYNC_DEV_API_URL": emulator.url}.get
    )
    assert first.value.code == 2
    assert out.count("+ create ") == len(desired.apps) > 0

    with MiniVoiceClient(emulator.url, TEST_API_KEY) as client:
        for app in desired.apps:
            client.create_application(
                CreateRequest(name=app.name, answer_url=app.answer_url, webhook_url=app.webhook_url)
            )
    with pytest.raises(SystemExit) as second:
        main(argv)
    out, err = capsys.readouterr()
    assert second.value.code == 0
    assert f"{len(desired.apps)} unchanged" in out
    assert_no_secrets(out + err)


def test_every_missing_api_key_variable_is_named_at_once(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MV_KEY_STAGING")
    monkeypatch.delenv("MV_KEY_PROD")
    code, _, err = run(capsys)
    assert code == 1
    assert ["MV_KEY_STAGING" in line for line in _error_lines(err)] == [True, False]
    assert "MV_KEY_PROD" in err.splitlines()[1]


def test_a_deadline_that_is_not_a_number_is_a_usage_error(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVSYNC_API_DEADLINE", "soon")
    code, _, err = run(capsys)
    assert code == 1
    assert "MVSYNC_API_DEADLINE must be a positive number of seconds" in err
    assert accounts.request_count() == 0


def test_a_deadline_too_large_for_the_clock_is_a_usage_error(
    accounts: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVSYNC_API_DEADLINE", "1e308")
    code, _, err = run(capsys)
    assert code == 1
    assert "MVSYNC_API_DEADLINE must be a positive number of seconds, at most 1,000,000" in err
    assert "OverflowError" not in err
    assert accounts.request_count() == 0


def test_an_invalid_manifest_is_reported_located_and_annotated_in_github_actions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        "version: 1\nenvironments:\n  dev: {}\napplications:\n"
        "  - name: Support IVR\n    answer_url: example.com/answer\n"
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "-f", "mvsync.yaml"])
    out, err = capsys.readouterr()
    assert (exit_.value.code, out) == (1, "")
    located, annotation = err.splitlines()
    assert located.startswith("mvsync.yaml:6:17: ")
    assert annotation.startswith("::error file=mvsync.yaml,line=6,col=17::")


def test_an_unwritable_step_summary_fails_before_the_plan_file_or_stdout_is_written(
    accounts: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    summary = tmp_path / "summary"
    summary.mkdir()  # a folder cannot be opened for append
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    saved_path = tmp_path / "plan.json"
    code, out, err = run(capsys, "-o", str(saved_path))
    assert (code, out) == (1, "")
    (line,) = _error_lines(err)
    assert line.startswith(f"mvsync: error: cannot append to GITHUB_STEP_SUMMARY ({summary})")
    assert not saved_path.exists()
    assert list(summary.iterdir()) == []


def test_hostile_names_and_urls_from_the_api_are_escaped_in_every_format(
    stand_in: Callable[[Callable[[], tuple[int, bytes]]], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def app(name: str, number: int, answer_url: str) -> dict[str, object]:
        return {
            "id": f"app_20260529T120000.00000000{number}",
            "customer_id": "cust_1",
            "name": name,
            "answer_url": answer_url,
            "webhook_url": "https://w.example/\u202e\x1b[31m",
            "created_at": "2026-05-29T12:00:00Z",
        }

    apps = [
        app("Sales IVR", 1, "https://e.example/\n```\n</details>\x1b[2J\x1b]0;T\x07"),
        app("Evil\x1b[31m\n::error::fake\n# PWNED <img src=x>\u2028", 2, "https://e/\n::x"),
    ]
    body = json.dumps({"data": apps, "count": len(apps)}).encode()
    _point_at(monkeypatch, stand_in(lambda: (200, body)))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    outputs = []
    for fmt in ("text", "markdown", "json"):
        code, out, _ = run(capsys, "--env", "staging", "--format", fmt)
        assert code == 0
        outputs.append(out)
    outputs.append(summary.read_text())
    for text in outputs:
        assert not any(c in text for c in "\x1b\x07\u202e\u2028"), text
        for line in text.splitlines():
            assert not line.startswith(("::", "# PWNED", "</details>\x1b")), line
    assert (
        '? unmanaged "Evil\\x1b[31m\\x0a::error::fake\\x0a# PWNED <img src=x>\\u2028"'
        in (outputs[0])
    )
    assert 'remote:   "https://w.example/\\u202e\\x1b[31m"' in outputs[1]
    document = json.loads(outputs[2])
    names = {c["name"] for c in document["environments"][0]["changes"]}
    assert "Evil\x1b[31m\n::error::fake\n# PWNED <img src=x>\u2028" in names


def test_an_api_url_that_expands_to_credentials_is_refused_before_any_request(
    accounts: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    password = "mvtest_PASSWORD_CANARY_d00d"
    host = accounts.url.partition("://")[2]
    monkeypatch.setenv("MV_API_URL", f"http://user:{password}@{host}")
    saved_path = tmp_path / "plan.json"
    code, out, err = run(capsys, "--debug", "-o", str(saved_path))
    assert (code, out) == (1, "")
    assert "api_url must not carry credentials (user:password@)" in err
    assert password not in err
    assert not saved_path.exists()
    assert accounts.request_count("GET") == 0


def test_the_saved_plan_and_the_markdown_name_the_commit_planned(
    accounts: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    head = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("MVSYNC_COMMIT", head)
    monkeypatch.setenv("GITHUB_SHA", "f" * 40)  # a pull request's merge commit: not shown
    code, out, _ = run(capsys, "--format", "markdown", "-o", str(tmp_path / "plan.json"))
    assert code == 0
    assert read_plan(tmp_path / "plan.json").commit == head
    assert "Planned at commit `0123456789ab` on " in out
    # Neither variable: the git HEAD of the manifest's folder (this repository's).
    monkeypatch.delenv("MVSYNC_COMMIT")
    monkeypatch.delenv("GITHUB_SHA")
    git_head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=MANIFEST.parent, capture_output=True, text=True
    ).stdout.strip()
    run(capsys, "-o", str(tmp_path / "plan.json"))
    # (Outside a git checkout, an unpacked sdist say, there is no HEAD: no commit.)
    assert read_plan(tmp_path / "plan.json").commit == (git_head or None)
    # A value that is not a commit id is not shown.
    monkeypatch.setenv("MVSYNC_COMMIT", "<img src=x>")
    _, out, _ = run(capsys, "--format", "markdown")
    assert "Planned on " in out and "<img" not in out
