"""Standard Webhooks signing: the specification's published vector, the two secret
forms, and a forged signature that no secret made."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from mvsync.check.signing import SecretFormatError, secret_key, signature, wrong_signature

# The test vector published with the Standard Webhooks specification.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector_signs_to_the_published_signature() -> None:
    key = secret_key(VECTOR_SECRET)
    assert signature(key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_whsec_secret_is_the_bytes_its_base64_stands_for() -> None:
    assert secret_key(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def test_a_whsec_secret_without_its_padding_is_decoded() -> None:
    raw = b"sixteen byte key"[:15]
    encoded = base64.b64encode(raw).decode().rstrip("=")
    assert secret_key("whsec_" + encoded) == raw


def test_any_other_secret_is_used_as_its_bytes() -> None:
    secret = "change-me"
    key = secret_key(secret)
    assert key == b"change-me"
    expected = hmac.new(b"change-me", b"id.1.{}", hashlib.sha256).digest()
    assert signature(key, "id", 1, b"{}") == "v1," + base64.b64encode(expected).decode()


def test_a_whsec_secret_that_is_not_base64_is_refused_without_showing_it() -> None:
    with pytest.raises(SecretFormatError) as refused:
        secret_key("whsec_not*base64!SECRETPART")
    assert "SECRETPART" not in str(refused.value)


def test_a_wrong_signature_has_the_right_form_and_verifies_under_no_secret() -> None:
    forged = wrong_signature(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert forged.startswith("v1,")
    assert len(base64.b64decode(forged[3:])) == 32
    assert forged != VECTOR_SIGNATURE
    assert forged != wrong_signature(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
