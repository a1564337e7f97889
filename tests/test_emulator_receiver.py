"""``mvsync emulator --receiver SECRET``: the sample application backend on the API's port
verifies Standard Webhooks signatures itself, and each failure endpoint fails as named."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from mvsync.emulator import Emulator

SECRET = "whsec_" + base64.b64encode(b"receiver-test-secret").decode()


@pytest.fixture
def receiver(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(receiver_secret=SECRET)


def signed_headers(
    body: bytes, key: bytes = b"receiver-test-secret", age: int = 0
) -> dict[str, str]:
    stamp = str(int(time.time()) - age)
    mac = hmac.new(key, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def test_a_validly_signed_event_is_accepted(receiver: Emulator) -> None:
    body = b'{"event": "call.completed"}'
    answer = httpx.post(
        f"{receiver.url}/_receiver/webhooks", content=body, headers=signed_headers(body)
    )
    assert answer.status_code == 200


def test_one_valid_signature_among_several_is_enough(receiver: Emulator) -> None:
    body = b"{}"
    headers = signed_headers(body)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert (
        httpx.post(f"{receiver.url}/_receiver/webhooks", content=body, headers=headers).status_code
        == 200
    )


@pytest.mark.parametrize(
    "spoil",
    ["key", "body", "old", "no headers"],
)
def test_an_event_without_a_valid_signature_is_refused_with_401(
    receiver: Emulator, spoil: str
) -> None:
    body = b'{"event": "call.completed"}'
    headers = {
        "key": signed_headers(body, key=b"another key"),
        "body": signed_headers(b'{"event": "other"}'),
        "old": signed_headers(body, age=600),
        "no headers": {},
    }[spoil]
    answer = httpx.post(f"{receiver.url}/_receiver/webhooks", content=body, headers=headers)
    assert answer.status_code == 401
    assert receiver.receiver is not None
    assert receiver.receiver.counts()["webhooks refused"] == 1


def test_the_answer_endpoint_answers_one_json_action(receiver: Emulator) -> None:
    for method in ("GET", "POST"):
        answer = httpx.request(method, f"{receiver.url}/_receiver/answer")
        assert answer.status_code == 200
        assert answer.json()["action"] == "talk"


def test_the_failure_endpoints_fail_as_named(receiver: Emulator) -> None:
    base = f"{receiver.url}/_receiver"
    html = httpx.get(f"{base}/html")
    assert html.headers["content-type"].startswith("text/html")
    assert httpx.post(f"{base}/open", content=b"unsigned").status_code == 200
    assert httpx.get(f"{base}/redirect").status_code == 302
    assert httpx.get(f"{base}/error").status_code == 500
    assert httpx.get(f"{base}/string").json() == "ok"
    started = time.monotonic()
    assert httpx.get(f"{base}/slow?ms=300").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_without_receiver_the_paths_are_not_served(emulator: Emulator) -> None:
    assert httpx.get(f"{emulator.url}/_receiver/answer").status_code == 404


def test_the_cli_serves_the_receiver_with_the_secret_from_the_environment() -> None:
    import os
    import re
    import signal

    env = {**os.environ, "MVSYNC_RECEIVER_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "mvsync", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        assert "sample receiver" in process.stdout.readline()
        body = b"{}"
        answer = httpx.post(
            f"{url.group()}/_receiver/webhooks", content=body, headers=signed_headers(body)
        )
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert SECRET not in out + err
