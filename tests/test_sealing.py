"""mvsync.sealing: age X25519 sealing, checked against the real ``age`` CLI.

Identities are made by the real ``age-keygen``; what ``seal`` writes is opened by
``age -d``, and what ``age -a`` writes is opened by ``unseal``. Those tests skip only
when the ``age`` binaries are absent (``.ci/run`` installs Debian's ``age``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrage import x25519

from mvsync.errors import MvsyncError, SecretsError
from mvsync.sealing import (
    ARMOR_BEGIN,
    ARMOR_END,
    is_armored,
    load_identities,
    parse_recipient,
    seal,
    unseal,
)

ISSUED_KEY = "mv_live_SEALING_CANARY_5d1e0c9a7b"


@dataclass(frozen=True)
class AgeKey:
    """One identity file written by ``age-keygen``, and its public key."""

    identity_file: Path
    public_key: str
    secret_line: str


MakeAgeKey = Callable[[], AgeKey]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"the {name!r} binary is not installed (Debian package 'age'; .ci/run)")
    return found


@pytest.fixture
def age_bin() -> str:
    return _binary("age")


@pytest.fixture
def make_age_key(tmp_path: Path) -> MakeAgeKey:
    keygen = _binary("age-keygen")
    made: list[AgeKey] = []

    def make() -> AgeKey:
        identity_file = tmp_path / f"identity{len(made)}.txt"
        subprocess.run([keygen, "-o", str(identity_file)], check=True, capture_output=True)
        text = identity_file.read_text()
        public_key = next(
            line.split(":", 1)[1].strip() for line in text.splitlines() if "public key:" in line
        )
        secret_line = next(line for line in text.splitlines() if line.startswith("AGE-SECRET"))
        key = AgeKey(identity_file, public_key, secret_line)
        made.append(key)
        return key

    return make


def _age_decrypt(age_bin: str, armor: str, identity_file: Path) -> str:
    result = subprocess.run(
        [age_bin, "-d", "-i", str(identity_file)],
        input=armor.encode(),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()


def _pyrage_recipient() -> tuple[x25519.Identity, x25519.Recipient]:
    identity = x25519.Identity.generate()
    return identity, identity.to_public()


def test_seal_then_unseal_returns_the_plaintext() -> None:
    identity, recipient = _pyrage_recipient()
    armor = seal(ISSUED_KEY, [recipient])
    assert unseal(armor, [identity]) == ISSUED_KEY


def test_seal_writes_ascii_armor_without_the_plaintext() -> None:
    _, recipient = _pyrage_recipient()
    armor = seal(ISSUED_KEY, [recipient])
    lines = armor.splitlines()
    assert lines[0] == ARMOR_BEGIN
    assert lines[-1] == ARMOR_END
    assert armor.endswith("\n")
    assert all(len(line) <= 64 for line in lines[1:-1])
    assert armor.isascii()
    assert is_armored(armor)
    assert ISSUED_KEY not in armor


def test_seal_is_fresh_each_time() -> None:
    _, recipient = _pyrage_recipient()
    assert seal(ISSUED_KEY, [recipient]) != seal(ISSUED_KEY, [recipient])


def test_seal_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        seal(ISSUED_KEY, [])


def test_two_recipients_each_identity_opens_it_alone() -> None:
    team, team_recipient = _pyrage_recipient()
    break_glass, break_glass_recipient = _pyrage_recipient()
    armor = seal(ISSUED_KEY, [team_recipient, break_glass_recipient])
    assert unseal(armor, [team]) == ISSUED_KEY
    assert unseal(armor, [break_glass]) == ISSUED_KEY


def test_age_cli_decrypts_what_seal_wrote_with_each_identity(
    age_bin: str, make_age_key: MakeAgeKey
) -> None:
    team, break_glass = make_age_key(), make_age_key()
    recipients = [parse_recipient(team.public_key), parse_recipient(break_glass.public_key)]
    armor = seal(ISSUED_KEY, recipients)
    assert _age_decrypt(age_bin, armor, team.identity_file) == ISSUED_KEY
    assert _age_decrypt(age_bin, armor, break_glass.identity_file) == ISSUED_KEY


def test_unseal_opens_what_the_age_cli_encrypted(
    age_bin: str, make_age_key: MakeAgeKey, tmp_path: Path
) -> None:
    team, break_glass = make_age_key(), make_age_key()
    result = subprocess.run(
        [age_bin, "-a", "-r", team.public_key, "-r", break_glass.public_key],
        input=ISSUED_KEY.encode(),
        capture_output=True,
        check=True,
    )
    armor = result.stdout.decode()
    assert is_armored(armor)
    assert unseal(armor, load_identities(team.identity_file)) == ISSUED_KEY
    assert unseal(armor, load_identities(break_glass.identity_file)) == ISSUED_KEY


def test_load_identities_reads_an_age_keygen_file(make_age_key: MakeAgeKey) -> None:
    key = make_age_key()
    identities = load_identities(key.identity_file)
    assert len(identities) == 1
    assert str(identities[0].to_public()) == key.public_key


def test_load_identities_reads_several_with_comments_and_blank_lines(tmp_path: Path) -> None:
    first, second = x25519.Identity.generate(), x25519.Identity.generate()
    path = tmp_path / "keys.txt"
    path.write_text(f"# team\n\n  {first}  \n# break-glass\n{second}\n\n")
    identities = load_identities(path)
    assert [str(i.to_public()) for i in identities] == [
        str(first.to_public()),
        str(second.to_public()),
    ]
    armor = seal(ISSUED_KEY, [second.to_public()])
    assert unseal(armor, identities) == ISSUED_KEY


def test_wrong_identity_fails_cleanly(make_age_key: MakeAgeKey) -> None:
    owner, stranger = make_age_key(), make_age_key()
    armor = seal(ISSUED_KEY, [parse_recipient(owner.public_key)])
    with pytest.raises(SecretsError) as caught:
        unseal(armor, load_identities(stranger.identity_file))
    message = str(caught.value)
    assert "none of the given identities" in message
    for secret in (ISSUED_KEY, stranger.secret_line, owner.secret_line, armor.strip()):
        assert secret not in message


def test_unseal_raises_the_error_class_it_is_given() -> None:
    class KeysError(MvsyncError):
        pass

    _, recipient = _pyrage_recipient()
    stranger = x25519.Identity.generate()
    with pytest.raises(KeysError, match="none of the given identities"):
        unseal(seal(ISSUED_KEY, [recipient]), [stranger], error=KeysError)


def test_unseal_refuses_text_that_is_not_armor() -> None:
    identity, _ = _pyrage_recipient()
    with pytest.raises(SecretsError, match="not a sealed key") as caught:
        unseal(ISSUED_KEY, [identity])
    assert ISSUED_KEY not in str(caught.value)


def test_unseal_refuses_damaged_armor() -> None:
    identity, recipient = _pyrage_recipient()
    lines = seal(ISSUED_KEY, [recipient]).splitlines()
    damaged = "\n".join([lines[0], lines[1][::-1], *lines[2:]]) + "\n"
    with pytest.raises(SecretsError, match="damaged") as caught:
        unseal(damaged, [identity])
    assert ISSUED_KEY not in str(caught.value)


def test_unseal_needs_an_identity() -> None:
    _, recipient = _pyrage_recipient()
    with pytest.raises(SecretsError, match="no identity"):
        unseal(seal(ISSUED_KEY, [recipient]), [])


def test_parse_recipient_accepts_an_age_keygen_public_key(make_age_key: MakeAgeKey) -> None:
    key = make_age_key()
    recipient = parse_recipient(f"  {key.public_key}\n")
    assert str(recipient) == key.public_key


def _damaged_recipient() -> str:
    good = str(x25519.Identity.generate().to_public())
    last = "q" if good[-1] != "q" else "p"
    return good[:-1] + last  # the Bech32 checksum no longer matches


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1qqqqqqqq",
        "age1notbech32!!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummy user@host",
        str(x25519.Identity.generate()),  # an identity pasted where a recipient belongs
        _damaged_recipient(),
    ],
    ids=["empty", "too-short", "not-bech32", "ssh-key", "secret-key", "bad-checksum"],
)
def test_malformed_recipient_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError, match="not an age X25519 recipient") as caught:
        parse_recipient(text)
    if text:
        assert text not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "says", "never"),
    [
        (_damaged_recipient(), "checksum does not match", "characters expected"),
        ("age1qqqqqqqq", "58 Bech32 characters expected, got 8", "checksum"),
        ("age1" + "b" * 58, "a character Bech32 never uses", "checksum"),
    ],
    ids=["bad-checksum", "too-short", "bad-character"],
)
def test_a_malformed_recipient_says_which_part_is_wrong(text: str, says: str, never: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_recipient(text)
    assert says in str(caught.value)
    assert never not in str(caught.value)
    assert text not in str(caught.value)


def test_load_identities_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="no such identity file"):
        load_identities(tmp_path / "absent.txt")


def test_load_identities_directory(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="is a directory"):
        load_identities(tmp_path)


def test_load_identities_malformed_line_is_located_not_quoted(tmp_path: Path) -> None:
    secret = str(x25519.Identity.generate())
    path = tmp_path / "keys.txt"
    path.write_text(f"# ok\n{secret}\n{ISSUED_KEY}\n")
    with pytest.raises(SecretsError, match=r"keys\.txt:3: not an age X25519 identity") as caught:
        load_identities(path)
    assert ISSUED_KEY not in str(caught.value)
    assert secret not in str(caught.value)


def test_load_identities_bad_checksum_is_located_not_quoted(tmp_path: Path) -> None:
    secret = str(x25519.Identity.generate())
    damaged = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    path = tmp_path / "keys.txt"
    path.write_text(f"{damaged}\n")
    with pytest.raises(SecretsError, match=r"keys\.txt:1: a malformed age identity") as caught:
        load_identities(path)
    assert damaged[20:] not in str(caught.value)


def test_load_identities_without_any_identity(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("# only a comment\n\n")
    with pytest.raises(SecretsError, match="holds no age identity"):
        load_identities(path)


def test_load_identities_refuses_a_passphrase_protected_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt.age"
    path.write_text(seal(str(x25519.Identity.generate()), [x25519.Identity.generate().to_public()]))
    with pytest.raises(SecretsError, match="passphrase-protected"):
        load_identities(path)


def test_load_identities_refuses_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.bin"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SecretsError, match="not text"):
        load_identities(path)


def test_load_identities_raises_the_error_class_it_is_given(tmp_path: Path) -> None:
    class KeysError(MvsyncError):
        pass

    with pytest.raises(KeysError, match="no such identity file"):
        load_identities(tmp_path / "absent.txt", error=KeysError)
