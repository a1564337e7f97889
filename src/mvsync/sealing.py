"""Sealed keys (SPEC section 5.2): age encryption to X25519 recipients, ASCII armor.

A key sealed here can be opened by the standard ``age`` tool (``age -d -i key.txt``)
and anything ``age -r age1… -a`` wrote can be opened here: both sides are the age
v1 format, through pyrage (bindings of rage, the Rust implementation of age).

::

    recipients = [parse_recipient("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    armor = seal(issued_key, recipients)          # "-----BEGIN AGE ENCRYPTED FILE-----\\n…"
    issued_key == unseal(armor, load_identities(Path("key.txt")))

Pure: no state, no output; the only file it reads is the identity file it is
given (``parse_identities`` reads the same format from text: a variable, stdin).
No message it raises ever holds a key, a plaintext or an identity's content: a
recipient or identity that does not parse is named by its position, never quoted.
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
    "parse_identities",
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
        # pyrage's reason ("invalid Bech32 encoding", ...) does not say which fix is needed.
        raise ValueError(f"not an age X25519 recipient: {_bech32_problem(candidate)}") from None


_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_RECIPIENT_LENGTH = 62  # "age1" + 52 data characters + 6 checksum characters


def _bech32_polymod(values: Sequence[int]) -> int:
    # BIP 173: the checksum of Bech32, which age recipients use.
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for bit, word in enumerate(generator):
            check ^= word if (top >> bit) & 1 else 0
    return check


def _bech32_problem(candidate: str) -> str:
    """Why ``candidate`` (starting ``age1``) is no recipient: the character set, the
    length or the checksum (a typo), in that order; never quoting it."""
    data = candidate[len(_RECIPIENT_PREFIX) :].lower()
    if candidate != candidate.lower() and candidate != candidate.upper():
        return "upper and lower case are mixed (Bech32 is one or the other)"
    if any(char not in _BECH32_CHARSET for char in data):
        return "it holds a character Bech32 never uses (only a-z and 0-9 without 1, b, i, o)"
    if len(candidate) != _RECIPIENT_LENGTH:
        return (
            f"'age1' followed by {_RECIPIENT_LENGTH - 4} Bech32 characters expected, "
            f"got {len(data)}"
        )
    values = [ord(c) >> 5 for c in "age"] + [0] + [ord(c) & 31 for c in "age"]
    values += [_BECH32_CHARSET.index(char) for char in data]
    if _bech32_polymod(values) != 1:
        return "its Bech32 checksum does not match (a character was mistyped or changed)"
    return "its Bech32 data is not an X25519 public key"


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
    return parse_identities(text, str(path), error)


def parse_identities(
    text: str, label: str, error: type[MvsyncError] = SecretsError
) -> list[Identity]:
    """The X25519 identities of ``text`` in the identity file format (from a variable or
    stdin, as CI secrets hold it); ``label`` names where it came from in messages, which
    never quote what it holds."""
    if len(text) > _MAX_IDENTITY_FILE_BYTES:
        raise error(f"{label}: too large to be an age identity")
    if is_armored(text) or text.lstrip().startswith("age-encryption.org/"):
        raise error(
            f"{label}: a passphrase-protected identity is not supported; "
            "decrypt it first (age -d) into a file only you can read"
        )
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.startswith(_IDENTITY_PREFIX):
            raise error(
                f"{label}:{number}: not an age X25519 identity (expected AGE-SECRET-KEY-1…; "
                "other identity types are not supported)"
            )
        try:
            identities.append(Identity.from_str(stripped))
        except pyrage.IdentityError:
            raise error(f"{label}:{number}: a malformed age identity") from None
    if not identities:
        raise error(f"{label}: holds no age identity (AGE-SECRET-KEY-1…)")
    return identities
