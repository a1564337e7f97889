"""``mvsync check`` end to end, as a process, against the emulator's sample receiver on
loopback: one test per way a backend fails the page's checklist, and the passing one."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import assert_no_secrets
from mvsync.emulator import Emulator

# A canary webhook secret in the whsec_ form: it, the key it stands for and every
# signature made with it must stay out of everything mvsync writes.
KEY_TEXT = b"mvsync-check-canary-4d2a9e"
CHECK_SECRET = "whsec_" + base64.b64encode(KEY_TEXT).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-receiver-secret").decode()
BODY_MARKERS = ("Hello from the mvsync sample receiver", "502 Bad Gateway", "invalid_signature")


@pytest.fixture
def receiver(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(receiver_secret=CHECK_SECRET)


def manifest(
    tmp_path: Path, apps: list[dict[str, Any]], checks: dict[str, Any] | None = None
) -> Path:
    env: dict[str, Any] = {"api_url": "http://127.0.0.1:9"}
    if checks:
        env["checks"] = checks
    document = {
        "version": 1,
        "environments": {"local": env},
        "defaults": {"webhook_secret": "${HOOK_SECRET}"},
        "applications": apps,
    }
    path = tmp_path / "mvsync.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


def app(name: str, answer: str, webhook: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "answer_url": answer}
    if webhook is not None:
        found["webhook_url"] = webhook
    return found


def run_check(
    path: Path, *args: str, secret: str | None = CHECK_SECRET, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HOOK_SECRET"}
    if secret is not None:
        environ["HOOK_SECRET"] = secret
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(path), "check", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def at(receiver: Emulator, endpoint: str) -> str:
    return f"{receiver.url}/_receiver/{endpoint}"


def results(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    document = json.loads(done.stdout)
    return [r for env in document["environments"] for r in env["results"]]


def test_a_receiver_that_answers_json_and_verifies_signatures_passes(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path, [app("Support IVR", at(receiver, "answer"), at(receiver, "webhooks"))]
    )
    done = run_check(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered 200 with a JSON object in" in done.stdout
    assert "refused an event with a wrong signature (401)" in done.stdout
    assert done.stdout.rstrip().endswith("check: 2 passed, 0 failed, 0 not configured")
    # The forged event was really sent, and refused by the receiver's own verification.
    assert receiver.receiver is not None
    counts = receiver.receiver.counts()
    assert counts["webhooks accepted"] == 1
    assert counts["webhooks refused"] == 1


def test_an_answer_url_that_answers_html_fails(receiver: Emulator, tmp_path: Path) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", at(receiver, "html"))]))
    assert done.returncode == 1
    assert "answered text/html, not JSON" in done.stdout


def test_an_answer_url_slower_than_its_budget_fails(receiver: Emulator, tmp_path: Path) -> None:
    path = manifest(
        tmp_path, [app("IVR", at(receiver, "slow") + "?ms=2000")], {"answer_timeout_ms": 300}
    )
    done = run_check(path)
    assert done.returncode == 1
    assert "no complete answer within its 300 ms" in done.stdout


def test_a_redirect_fails_and_is_not_followed(receiver: Emulator, tmp_path: Path) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", at(receiver, "redirect"))]))
    assert done.returncode == 1
    assert "answered 302: redirects are not followed" in done.stdout
    assert receiver.receiver is not None
    assert receiver.receiver.counts().get("answer", 0) == 0  # the Location was not fetched


def test_a_server_error_fails(receiver: Emulator, tmp_path: Path) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", at(receiver, "error"))]))
    assert done.returncode == 1
    assert "answered 500" in done.stdout


def test_json_that_is_not_an_object_or_array_fails(receiver: Emulator, tmp_path: Path) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", at(receiver, "string"))]))
    assert done.returncode == 1
    assert "JSON that is a string, not an object or a non-empty array" in done.stdout


def test_a_webhook_receiver_that_accepts_forged_events_fails(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(tmp_path, [app("IVR", at(receiver, "answer"), at(receiver, "open"))])
    done = run_check(path)
    assert done.returncode == 1
    assert "also accepted an event with a wrong signature" in done.stdout
    assert "it would act on forged events" in done.stdout


def test_a_webhook_receiver_that_refuses_the_signed_event_fails(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(tmp_path, [app("IVR", at(receiver, "answer"), at(receiver, "webhooks"))])
    done = run_check(path, secret=OTHER_SECRET)
    assert done.returncode == 1
    assert "refused the signed event: answered 401" in done.stdout
    assert "is webhook_secret the secret this receiver verifies with?" in done.stdout


def test_a_slow_webhook_receiver_fails(receiver: Emulator, tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        [app("IVR", at(receiver, "answer"), at(receiver, "slow") + "?ms=2000")],
        {"webhook_timeout_ms": 300},
    )
    done = run_check(path)
    assert done.returncode == 1
    assert "the signed event: no complete answer within its 300 ms" in done.stdout


def test_a_closed_port_fails_in_words(tmp_path: Path) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", "http://127.0.0.1:1/answer")]))
    assert done.returncode == 1
    assert "could not connect: connection refused" in done.stdout


def test_post_answer_method_sends_the_call_and_passes(receiver: Emulator, tmp_path: Path) -> None:
    path = manifest(tmp_path, [app("IVR", at(receiver, "answer"))], {"answer_method": "POST"})
    done = run_check(path)
    assert done.returncode == 0, done.stdout
    assert receiver.request_counts() == {}  # the API itself was never called
    assert receiver.receiver is not None
    assert receiver.receiver.counts() == {"answer": 1}


def test_an_application_without_webhook_url_is_not_configured_which_is_not_a_failure(
    receiver: Emulator, tmp_path: Path
) -> None:
    done = run_check(manifest(tmp_path, [app("IVR", at(receiver, "answer"))]), "--format", "json")
    assert done.returncode == 0
    webhook = [r for r in results(done) if r["check"] == "webhook_url"]
    assert webhook == [
        {
            "application": "IVR",
            "check": "webhook_url",
            "url": None,
            "verdict": "not_configured",
            "reason": "no webhook_url",
            "status": None,
            "elapsed_ms": None,
        }
    ]


def test_a_missing_secret_variable_stops_the_run_before_any_request(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(tmp_path, [app("IVR", at(receiver, "answer"), at(receiver, "webhooks"))])
    done = run_check(path, secret=None)
    assert done.returncode == 1
    assert "webhook secret variable not set: HOOK_SECRET (needed by 'IVR')" in done.stderr
    assert "nothing was sent" in done.stderr
    assert "Traceback" not in done.stderr
    assert receiver.receiver is not None
    assert receiver.receiver.counts() == {}


def test_environment_proxies_are_not_used(receiver: Emulator, tmp_path: Path) -> None:
    # A proxy on a closed loopback port: a client that used it could not pass.
    path = manifest(tmp_path, [app("IVR", at(receiver, "answer"), at(receiver, "webhooks"))])
    proxy = "http://127.0.0.1:1"
    done = run_check(
        path, HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy, http_proxy=proxy, NO_PROXY=""
    )
    assert done.returncode == 0, done.stdout


def test_json_results_name_environment_application_url_verdict_and_why(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path,
        [
            app("Good", at(receiver, "answer"), at(receiver, "webhooks")),
            app("Bad", at(receiver, "html")),
        ],
    )
    done = run_check(path, "--format", "json", "-o", str(tmp_path / "check.json"))
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["format_version"] == 1
    assert document["summary"] == {"passed": 2, "failed": 1, "not_configured": 1}
    assert [env["name"] for env in document["environments"]] == ["local"]
    bad = [r for r in results(done) if r["application"] == "Bad" and r["check"] == "answer_url"]
    assert bad[0]["verdict"] == "failed"
    assert bad[0]["url"] == at(receiver, "html")
    assert bad[0]["status"] == 200
    assert json.loads((tmp_path / "check.json").read_text()) == document


def test_markdown_results_are_a_comment_with_failures_first(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path, [app("Good", at(receiver, "answer")), app("Bad", at(receiver, "html"))]
    )
    done = run_check(path, "--format", "markdown")
    assert done.returncode == 1
    assert done.stdout.startswith("## mvsync check\n**1 failed**")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert "Bad" in rows[1] and "failed" in rows[1]  # rows[0] is the header


def test_no_secret_signature_or_response_body_in_any_output(
    receiver: Emulator, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path,
        [
            app("Good", at(receiver, "answer"), at(receiver, "webhooks")),
            app("Html", at(receiver, "html"), at(receiver, "open")),
            app("Error", at(receiver, "error"), at(receiver, "error")),
        ],
    )
    texts: list[str] = []
    for args in (
        ("--format", "text"),
        ("--format", "json", "-o", str(tmp_path / "c.json")),
        ("--format", "markdown"),
    ):
        done = run_check(path, *args, MVSYNC_DEBUG="1")
        assert done.returncode == 1
        texts += [done.stdout, done.stderr]
    texts.append((tmp_path / "c.json").read_text())
    assert receiver.receiver is not None
    signatures = [s for s in receiver.receiver.signatures_seen() if s]
    assert len(signatures) >= 6  # signed and forged, three runs
    everything = "\n".join(texts)
    assert_no_secrets(everything, extra=[CHECK_SECRET, KEY_TEXT.decode(), *signatures])
    for value in (s.split(",", 1)[1] for s in signatures):
        assert value not in everything
    for marker in BODY_MARKERS:
        assert marker not in everything
