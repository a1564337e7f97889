"""Standard Webhooks signatures (https://www.standardwebhooks.com): the scheme the
webhook check signs with.

``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, keyed with the
secret's bytes — or, for a secret written ``whsec_<base64>``, the bytes that base64
stands for (the specification's own form). Nothing here keeps, logs or shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from mvsync.errors import MvsyncError

SECRET_PREFIX = "whsec_"


class SecretFormatError(MvsyncError):
    """A ``whsec_`` secret whose rest is not base64 (the secret itself is never shown)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key a webhook secret stands for."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Padding may be left off; any other character outside base64 is refused, as
        # the reference libraries refuse it (a receiver would never verify).
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretFormatError(
            "the webhook secret starts with whsec_ but the rest is not base64"
        ) from None


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def wrong_signature(message_id: str, timestamp: int, body: bytes) -> str:
    """A signature of the right form made with a random key: what a forger would send."""
    return signature(secrets.token_bytes(32), message_id, timestamp, body)
