"""What ``mvsync check`` sends: every request marked as a test, at most eight at once, the
run bounded by its deadline, each host resolved once. A recording server on loopback
stands in for the application backends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mvsync.check import AppCheck, CheckSettings, run_checks
from mvsync.check.addresses import RefusedError

SECRET = "whsec_" + "bXZzeW5jLWNoZWNrLXJlcXVlc3RzLXRlc3Q="


class Recorder(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops a burst of connects (a 1 s SYN retry)

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a check that gave up at its deadline closed the connection: expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
            self.server.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
        try:
            time.sleep(self.server.delay)
            payload = b'{"action": "talk"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    do_GET = _serve
    do_POST = _serve


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def one_app(recorder: Recorder, method: str = "GET") -> AppCheck:
    return AppCheck(
        name="IVR",
        answer_url=f"{recorder.url}/answer?tenant=7",
        webhook_url=f"{recorder.url}/hooks",
        secret_ref="${HOOK}",
        webhook_secret=SECRET,
        settings=CheckSettings(answer_method=method),
    )


def test_the_get_answer_request_is_marked_and_carries_call_id_from_and_to(
    recorder: Recorder,
) -> None:
    run_checks([("local", [one_app(recorder)])])
    answer = next(r for r in recorder.seen if r["path"].startswith("/answer"))
    assert answer["method"] == "GET"
    assert answer["headers"]["MiniVoice-Test"] == "1"
    query = parse_qs(urlsplit(answer["path"]).query)
    assert query["tenant"] == ["7"]  # the URL's own query is kept
    assert query["call_id"][0].startswith("check_call_")
    assert query["from"] == ["+15551230001"]
    assert query["to"] == ["+15551230002"]


def test_the_post_answer_request_is_the_call_marked_as_a_test(recorder: Recorder) -> None:
    run_checks([("local", [one_app(recorder, "POST")])])
    answer = next(r for r in recorder.seen if r["path"].startswith("/answer"))
    assert answer["method"] == "POST"
    assert answer["headers"]["MiniVoice-Test"] == "1"
    body = json.loads(answer["body"])
    assert body["test"] is True
    assert body["call"]["id"].startswith("check_call_")
    assert body["call"]["application_id"].startswith("check_")
    assert body["call"]["direction"] == "inbound"
    assert body["call"]["status"] == "ringing"


def test_both_webhook_events_are_marked_and_the_second_has_a_new_id(recorder: Recorder) -> None:
    report = run_checks([("local", [one_app(recorder)])])
    events = [r for r in recorder.seen if r["path"] == "/hooks"]
    assert len(events) == 2  # signed, then forged (this recorder accepts both)
    ids = [event["headers"]["webhook-id"] for event in events]
    assert all(i.startswith("check_msg_") for i in ids) and ids[0] != ids[1]
    for event in events:
        assert event["headers"]["MiniVoice-Test"] == "1"
        body = json.loads(event["body"])
        assert body["event"] == "call.completed" and body["test"] is True
        assert body["call"]["id"].startswith("check_call_")
        assert body["call"]["customer_id"].startswith("check_")
    signatures = [event["headers"]["webhook-signature"] for event in events]
    assert signatures[0] != signatures[1]
    webhook = report.environments[0].results[1]
    assert webhook.verdict == "failed"
    assert "accepted an event with a wrong signature" in webhook.reason


def test_at_most_eight_requests_are_in_flight(recorder: Recorder) -> None:
    recorder.delay = 0.2
    apps = [AppCheck(f"IVR {n}", f"{recorder.url}/answer/{n}", None, None) for n in range(24)]
    report = run_checks([("local", apps)])
    assert report.count("passed") == 24
    assert 1 < recorder.most_in_flight <= 8


def test_the_run_deadline_ends_checks_still_waiting(recorder: Recorder) -> None:
    recorder.delay = 1.0
    settings = CheckSettings(answer_timeout_ms=5000)
    apps = [
        AppCheck(f"IVR {n}", f"{recorder.url}/a/{n}", None, None, settings=settings)
        for n in range(16)
    ]
    report = run_checks([("local", apps)], deadline=0.5)
    answers = [r for r in report.environments[0].results if r.check == "answer_url"]
    assert all(r.verdict == "failed" for r in answers)
    assert any("deadline" in r.reason for r in answers)
    assert not report.passed


def test_each_host_is_resolved_once_per_run() -> None:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        raise RefusedError(f"cannot resolve {host} (test)")

    apps = [
        AppCheck(f"IVR {n}", f"https://crm.example.com/answer/{n}", None, None) for n in range(5)
    ]
    report = run_checks([("local", apps)], resolve=resolve)
    assert calls == ["crm.example.com"]
    assert [r.reason for r in report.environments[0].results if r.check == "answer_url"] == [
        "refused: cannot resolve crm.example.com (test)"
    ] * 5


def test_a_whsec_secret_that_is_not_base64_fails_its_check_and_sends_nothing(
    recorder: Recorder,
) -> None:
    app = AppCheck(
        "IVR", f"{recorder.url}/answer", f"{recorder.url}/hooks", "${HOOK}", "whsec_no*t"
    )
    webhook = run_checks([("local", [app])]).environments[0].results[1]
    assert webhook.verdict == "failed"
    assert webhook.reason == (
        "${HOOK}: the webhook secret starts with whsec_ but the rest is not base64;"
        " nothing was sent"
    )
    assert [r["path"] for r in recorder.seen] == [
        "/answer?" + recorder.seen[0]["path"].split("?")[1]
    ]


def test_the_system_resolver_answers_in_its_own_thread() -> None:
    # localhost is asked of the system resolver directly here (check itself never looks
    # it up): it is in /etc/hosts, so no DNS server is asked. Nothing is sent.
    import asyncio

    from mvsync.check.addresses import system_resolver

    found = asyncio.run(system_resolver("localhost", 80))
    assert "127.0.0.1" in found or "::1" in found
