"""Sealed keys (SPEC section 5.2): age encryption to X25519 recipients, ASCII armor.

A key sealed here can be opened by the standard ``age`` tool (``age -d -i key.txt``)
and anything ``age -r age1… -a`` wrote can be opened here: both sides are the age
v1 format, through pyrage (bindings of rage, the Rust implementation of age).

::

    recipients = [parse_recipient("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    armor = seal(issued_key, recipients)          # "-----BEGIN AGE ENCRYPTED FILE-----\\n…"
    issued_key == unseal(armor, load_identities(Path("key.txt")))

Pure: no state, no output; the only file it reads is the identity file it is
given. No message it raises ever holds a key, a plaintext or an identity file's
content: a recipient or identity that does not parse is named by its position,
never quoted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pyrage
from pydantic import SecretStr
from pyrage.x25519 import Identity, Recipient

from mvsync.errors import MvsyncError, SecretsError

__all__ = [
    "ARMOR_BEGIN",
    "ARMOR_END",
    "Identity",
    "Recipient",
    "is_armored",
    "load_identities",
    "parse_recipient",
    "seal",
    "sealer_for",
    "unseal",
]

ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = "-----END AGE ENCRYPTED FILE-----"

_RECIPIENT_PREFIX = "age1"
_IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
# An identity file is a few lines; anything this large is not one (and is not read whole).
_MAX_IDENTITY_FILE_BYTES = 1 << 20


def parse_recipient(text: str) -> Recipient:
    """An age X25519 public key (``age1…``, 62 characters), or ``ValueError``.

    The message does not quote the value (the caller locates it in the manifest).
    """
    candidate = text.strip()
    if not candidate.startswith(_RECIPIENT_PREFIX):
        raise ValueError("not an age X25519 recipient: it must start with 'age1'")
    try:
        return Recipient.from_str(candidate)
    except pyrage.RecipientError:
        # pyrage's reason ("invalid Bech32 encoding", ...) says nothing of the value itself.
        raise ValueError(
            "not an age X25519 recipient: 'age1' followed by 58 Bech32 characters expected"
        ) from None


def seal(plaintext: str, recipients: Sequence[Recipient]) -> str:
    """``plaintext`` encrypted to every recipient, as ASCII-armored age (ends with a newline).

    Each holder of a matching identity can open it on their own.
    """
    if not recipients:
        raise ValueError("sealing needs at least one recipient")
    try:
        sealed = pyrage.encrypt(plaintext.encode("utf-8"), list(recipients), armored=True)
    except pyrage.EncryptError as error:  # no known cause with X25519 recipients
        raise ValueError(f"age encryption failed: {error}") from None
    return sealed.decode("ascii")


def sealer_for(recipients: Sequence[str]) -> Callable[[SecretStr], str] | None:
    """What apply seals each key with, for the manifest's ``recipients`` (parsed once);
    ``None`` when there are none: keys then stay plain, as without sealing."""
    if not recipients:
        return None
    parsed = [parse_recipient(text) for text in recipients]
    return lambda key: seal(key.get_secret_value(), parsed)


def is_armored(text: str) -> bool:
    """Whether ``text`` is framed as an ASCII-armored age file (contents not checked)."""
    stripped = text.strip()
    return stripped.startswith(ARMOR_BEGIN) and stripped.endswith(ARMOR_END)


def unseal(
    armor: str,
    identities: Sequence[Identity],
    error: type[MvsyncError] = SecretsError,
) -> str:
    """The plaintext of an armored age file, opened with any of ``identities``.

    Raises ``error`` (a ``SecretsError`` by default) when it is not armored age, when no
    identity matches, or when it is damaged; the message holds neither key nor plaintext.
    """
    if not is_armored(armor):
        raise error(f"not a sealed key: an ASCII-armored age file starts with {ARMOR_BEGIN}")
    if not identities:
        raise error("no identity to open the sealed key with")
    try:
        plaintext = pyrage.decrypt(armor.strip().encode("ascii"), list(identities))
    except UnicodeEncodeError:
        raise error("the sealed key is damaged: it holds characters armor never has") from None
    except pyrage.DecryptError as reason:
        if "no matching keys" in str(reason).lower():
            raise error(
                "none of the given identities opens this sealed key "
                "(it was sealed to other recipients)"
            ) from None
        raise error("the sealed key is damaged or not an age file; it cannot be opened") from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise error("the sealed key opened, but what it holds is not text") from None


def load_identities(path: Path, error: type[MvsyncError] = SecretsError) -> list[Identity]:
    """The X25519 identities of an age identity file, read as ``age -i`` reads it.

    One ``AGE-SECRET-KEY-1…`` per line; blank lines and ``#`` comments (as ``age-keygen``
    writes them) are skipped. A missing, unreadable or malformed file, or one with no
    identity, raises ``error``; the message names the file and a line number, never
    what the file holds.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_IDENTITY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such identity file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not an identity file") from None
    except OSError as reason:
        raise error(f"{path}: cannot read the identity file ({reason.strerror})") from None
    if len(raw) > _MAX_IDENTITY_FILE_BYTES:
        raise error(f"{path}: too large to be an age identity file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not an age identity file (not text)") from None
    if is_armored(text) or text.startswith("age-encryption.org/"):
        raise error(
            f"{path}: a passphrase-protected identity file is not supported; "
            "decrypt it first (age -d) into a file only you can read"
        )
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.startswith(_IDENTITY_PREFIX):
            raise error(
                f"{path}:{number}: not an age X25519 identity (expected AGE-SECRET-KEY-1…; "
                "other identity types are not supported)"
            )
        try:
            identities.append(Identity.from_str(stripped))
        except pyrage.IdentityError:
            raise error(f"{path}:{number}: a malformed age identity") from None
    if not identities:
        raise error(f"{path}: holds no age identity (AGE-SECRET-KEY-1…)")
    return identities
