"""What the MiniVoice Applications API answers, as values (SPEC section 1, the seed page).

No sockets here: ``server.py`` turns an ``Answer`` into bytes on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mvsync.emulator.state import Store

APPLICATIONS_PATH = "/v1/applications"
API_METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, JSON body, extra headers (``raw`` bytes instead of the
    JSON body, with their ``content_type``: the sample receiver's HTML page)."""

    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None
    content_type: str = "application/json"


def error(
    status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Answer:
    """The API's error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return Answer(status, {"error": {"code": code, "message": message}}, headers)


UNAUTHORIZED = error(
    401, "unauthorized", "missing or invalid API key", (("WWW-Authenticate", "Bearer"),)
)


def not_found(method: str, path: str) -> Answer:
    return error(404, "not_found", f"no such resource: {method} {path}")


def method_not_allowed(method: str, path: str, allowed: tuple[str, ...]) -> Answer:
    return error(
        405,
        "method_not_allowed",
        f"{method} is not allowed on {path}; use {', '.join(allowed)}",
        (("Allow", ", ".join(allowed)),),
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_valid_url(value: object) -> bool:
    """An absolute ``http(s)`` URL with a host."""
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def list_applications(store: Store, customer_id: str) -> Answer:
    data = [app.listed() for app in store.apps_of(customer_id)]
    return Answer(200, {"data": data, "count": len(data)})


def create_application(store: Store, customer_id: str, raw_body: bytes) -> Answer:
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        return error(400, "invalid_json", "request body must be valid JSON")
    if not isinstance(body, dict):
        return error(400, "invalid_request", "request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return error(400, "invalid_request", "name is required")
    answer_url = body.get("answer_url")
    if not is_valid_url(answer_url):
        return error(400, "invalid_request", "answer_url must be a valid URL")
    webhook_url = body.get("webhook_url")
    if webhook_url is not None and not is_valid_url(webhook_url):
        return error(400, "invalid_request", "webhook_url must be a valid URL")
    webhook_secret = body.get("webhook_secret")
    if webhook_secret is not None and not isinstance(webhook_secret, str):
        return error(400, "invalid_request", "webhook_secret must be a string")
    app = store.create(
        customer_id,
        name=name,
        answer_url=str(answer_url),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    return Answer(201, app.created())
