"""What the checks send: the answer_url request and the signed ``call.completed`` event.

Every request is marked as a test three ways, so that neither the receiver nor anyone
it is replayed to can take it for a call: the header ``MiniVoice-Test: 1``, ids that
begin ``check_``, and ``"test": true`` in every JSON body. The numbers are the
fictional ones of the MiniVoice page.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime

import httpx

from mvsync.check.signing import signature, wrong_signature

TEST_HEADER = ("MiniVoice-Test", "1")
CALLER = "+15551230001"
CALLED = "+15551230002"
APPLICATION_ID = "check_app"
CUSTOMER_ID = "check_customer"


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        TEST_HEADER[0]: TEST_HEADER[1],
        "User-Agent": "mvsync-check",
        "Accept-Encoding": "identity",
    }
    headers.update(extra or {})
    return headers


def new_id(kind: str) -> str:
    return f"check_{kind}_{secrets.token_hex(8)}"


def answer_request(url: str, method: str) -> httpx.Request:
    """The answer_url request: GET with ``call_id``, ``from``, ``to``, or POST of the call."""
    call_id = new_id("call")
    if method == "POST":
        body = {
            "call": {
                "id": call_id,
                "application_id": APPLICATION_ID,
                "from": CALLER,
                "to": CALLED,
                "direction": "inbound",
                "status": "ringing",
            },
            "test": True,
        }
        return httpx.Request(
            "POST",
            url,
            content=json.dumps(body).encode(),
            headers=_headers({"Content-Type": "application/json", "Accept": "application/json"}),
        )
    params = {"call_id": call_id, "from": CALLER, "to": CALLED}
    headers = _headers({"Accept": "application/json"})
    # Added to the URL's own query (httpx's params= would replace it).
    return httpx.Request("GET", httpx.URL(url).copy_merge_params(params), headers=headers)


def completed_event() -> bytes:
    """The page's ``call.completed`` event, marked as a check, at the current time."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    event = {
        "event": "call.completed",
        "created_at": now,
        "call": {
            "id": new_id("call"),
            "customer_id": CUSTOMER_ID,
            "application_id": APPLICATION_ID,
            "status": "completed",
            "direction": "inbound",
            "from": CALLER,
            "to": CALLED,
        },
        "variables": {},
        "data": {},
        "test": True,
    }
    return json.dumps(event).encode()


def webhook_request(url: str, body: bytes, key: bytes | None) -> httpx.Request:
    """``body`` as a Standard Webhooks delivery under a new id: signed with ``key``, or,
    with ``key`` ``None``, with a signature of the right form that no secret made."""
    message_id = new_id("msg")
    timestamp = int(time.time())
    signed = (
        signature(key, message_id, timestamp, body)
        if key is not None
        else wrong_signature(message_id, timestamp, body)
    )
    headers = _headers(
        {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signed,
        }
    )
    return httpx.Request("POST", url, content=body, headers=headers)
