"""mvsync.store.keys: the secrets file is read strictly and entries are only ever added."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.cli import main
from mvsync.emulator import Emulator
from mvsync.errors import SecretsError
from mvsync.store import journal, keys
from mvsync.store.keys import SecretEntry, SecretsFile

KEY = "mv_live_SECRETS_CANARY"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def sample() -> SecretsFile:
    return SecretsFile(
        environment="prod",
        api_url="https://api.minivoice.eu",
        applications={
            "Support IVR": SecretEntry(id="app_1", api_key=SecretStr(KEY), created_at="t1"),
            "Lost": SecretEntry(id="app_2", key_captured=False),
        },
    )


def test_written_file_reads_back_equal_with_header_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "prod.secrets.yaml"
    keys.write_secrets(path, sample())
    text = path.read_text()
    assert text.startswith('# mvsync secrets for environment "prod": live MiniVoice API keys.')
    assert keys.read_secrets(path) == sample()
    assert path.stat().st_mode & 0o777 == 0o600


def test_spec_example_file_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "# comment\nenvironment: prod\napi_url: https://api.minivoice.eu\napplications:\n"
        "  Support IVR:\n    id: app_20260529T120000.000000000\n    api_key: mv_live_xxx\n"
        '    created_at: "2026-05-29T12:00:00Z"\n',
    )
    loaded = keys.read_secrets(path)
    assert loaded is not None
    assert loaded.applications["Support IVR"].id == "app_20260529T120000.000000000"


@given(
    names=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5, unique=True),
    key=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40),
)
def test_any_name_and_key_round_trip(names: list[str], key: str) -> None:
    original = SecretsFile(
        environment="e",
        api_url="http://127.0.0.1:1",
        applications={
            name: SecretEntry(id=f"app_{n}", api_key=SecretStr(key), created_at="t")
            for n, name in enumerate(names)
        },
    )
    assert keys.parse(keys.dump(original).decode(), Path("x")) == original


# Issue 9, item 7: YAML limits an implicit key to 1024 characters; a name the API
# accepts must round-trip whatever its length and its characters.
LONG_NAME_LENGTHS = (1, 1022, 1023, 1024, 1025, 5000)
LONG_NAME_ALPHABETS = ("a", "é", "語", "\U0001f600", 'a\tb\x85\u2028"\\:# ')


@pytest.mark.parametrize("alphabet", LONG_NAME_ALPHABETS, ids=ascii)
@pytest.mark.parametrize("length", LONG_NAME_LENGTHS)
def test_a_name_of_any_length_round_trips_through_the_file(
    tmp_path: Path, length: int, alphabet: str
) -> None:
    name = (alphabet * length)[:length]
    other = "Support IVR"
    original = SecretsFile(
        environment="prod",
        api_url="https://api.minivoice.eu",
        applications={
            other: SecretEntry(id="app_0", api_key=SecretStr(KEY), created_at="t0"),
            name: SecretEntry(id="app_1", api_key=SecretStr(KEY + "2"), created_at="t1"),
            name + " (app_2)": SecretEntry(id="app_2", key_captured=False),
        },
    )
    path = tmp_path / "prod.secrets.yaml"
    keys.write_secrets(path, original)
    assert keys.read_secrets(path) == original
    # The entries that fit an implicit key keep the ordinary layout, byte for byte.
    assert '  "Support IVR":\n    id: "app_0"\n' in path.read_text()


def test_a_long_name_is_an_explicit_key_both_ruamel_parsers_read(tmp_path: Path) -> None:
    name = "é" * 300  # 1,202 characters once quoted as \xe9 escapes
    original = SecretsFile(
        environment="prod",
        api_url="https://api.minivoice.eu",
        applications={name: SecretEntry(id="app_1", api_key=SecretStr(KEY), created_at="t")},
    )
    text = keys.dump(original).decode()
    assert '\n  ? "\\xe9' in text and '\n  :\n    id: "app_1"\n' in text
    from ruamel.yaml import YAML

    for pure in (False, True):  # libyaml and ruamel's pure parser, with no fallback
        data = YAML(typ="safe", pure=pure).load(text)
        assert data["applications"][name]["id"] == "app_1"


def test_a_hand_edited_flow_style_file_is_read(tmp_path: Path) -> None:
    # Issue 9, item 8's sibling: libyaml refuses a flow mapping holding a URL.
    path = write(
        tmp_path / "s.yaml",
        "environment: prod\napi_url: https://api.minivoice.eu\n"
        "applications: {Support IVR: {id: app_1, key_captured: false}}\n",
    )
    loaded = keys.read_secrets(path)
    assert loaded is not None
    assert loaded.applications["Support IVR"].key_captured is False


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert keys.read_secrets(tmp_path / "absent.yaml") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("environment: [unclosed\n", "not valid YAML"),
        ("- a list\n", "not a mapping"),
        ("environment: prod\napplications: {}\n", "api_url"),
        ("environment: prod\napi_url: u\napplications:\n  A: {id: app_1}\n", "api_key"),
        (
            "environment: prod\napi_url: u\napplications:\n"
            "  A: {id: app_1, api_key: k, key_captured: false}\n",
            "key_captured",
        ),
        ("environment: prod\napi_url: u\nextra: 1\n", "line 3: an unknown field: Extra inputs"),
    ],
)
def test_malformed_file_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(SecretsError, match=reason):
        keys.read_secrets(path)


def test_malformed_file_error_never_quotes_a_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        f"environment: prod\napi_url: u\napplications:\n  A: {{id: 7, api_key: {KEY}}}\n",
    )
    with pytest.raises(SecretsError) as refused:
        keys.read_secrets(path)
    assert_no_secrets(str(refused.value), extra=(KEY,))


def test_group_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    keys.write_secrets(path, sample())
    path.chmod(0o640)
    with pytest.raises(SecretsError, match="lets the group or others read it"):
        keys.read_secrets(path)


def test_file_of_another_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="belongs to another environment"):
        keys.check_matches(sample(), tmp_path / "s", "staging", "https://api.minivoice.eu")


def test_fold_adds_new_entries_and_keeps_every_existing_one(tmp_path: Path) -> None:
    current = sample()
    result = keys.add_records(
        current,
        [
            journal.intent("New"),
            journal.created("New", "app_3", SecretStr("mv_live_new"), "t3"),
            journal.not_captured("Half", "app_4"),
        ],
    )
    assert list(current.applications) == ["Support IVR", "Lost", "New", "Half"]
    assert current.applications["Support IVR"].api_key == SecretStr(KEY)
    assert (result.stored, result.not_captured) == ([("New", "app_3")], [("Half", "app_4")])


def test_fold_never_overwrites_an_entry_with_the_same_name() -> None:
    current = sample()
    result = keys.add_records(
        current, [journal.created("Support IVR", "app_9", SecretStr("mv_live_other"), "t9")]
    )
    assert current.applications["Support IVR"].api_key == SecretStr(KEY)
    assert current.applications["Support IVR (app_9)"].api_key == SecretStr("mv_live_other")
    assert result.renamed == [("Support IVR (app_9)", "app_9")]


def test_fold_of_an_already_folded_record_changes_nothing() -> None:
    current = sample()
    result = keys.add_records(
        current, [journal.created("Support IVR", "app_1", SecretStr(KEY), "t1")]
    )
    assert (current, result.changed) == (sample(), False)


def test_not_captured_never_replaces_a_stored_key() -> None:
    current = sample()
    keys.add_records(current, [journal.not_captured("Support IVR", "app_1")])
    assert current.applications["Support IVR"].key_captured is True


# --- errors say where, never what --------------------------------------------------------


def _refusal(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(SecretsError) as refused:
        keys.read_secrets(path)
    return str(refused.value)


def test_a_key_typed_as_a_field_name_is_not_echoed(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path,
        "environment: prod\napi_url: u\napplications:\n"
        "  Sales:\n    id: app_1\n    api_key: mv_live_a\n"
        "  Support:\n    id: app_2\n    api_key: mv_live_b\n"
        f"    {KEY}: x\n",
    )
    assert_no_secrets(message, extra=(KEY,))
    assert "line 10: applications, entry 2, an unknown field: Extra inputs" in message


def test_a_key_typed_as_an_application_name_is_not_echoed(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path, f"environment: prod\napi_url: u\napplications:\n  {KEY}:\n    id: 7\n"
    )
    assert_no_secrets(message, extra=(KEY,))
    assert "line 5: applications, entry 1, id: Input should be a valid string" in message


def test_a_key_typed_as_a_top_level_field_is_not_echoed(tmp_path: Path) -> None:
    message = _refusal(tmp_path, f"environment: prod\napi_url: u\n{KEY}: 1\n")
    assert_no_secrets(message, extra=(KEY,))
    assert "line 3: an unknown field" in message


def test_invalid_yaml_is_located_without_quoting_it(tmp_path: Path) -> None:
    message = _refusal(tmp_path, f"environment: prod\napi_url: u\napi_url: {KEY}\n")
    assert_no_secrets(message, extra=(KEY,))
    assert "not valid YAML at line" in message


def test_a_file_of_another_environment_is_refused_without_echoing_its_values() -> None:
    stray = sample()
    stray.environment = KEY
    with pytest.raises(SecretsError, match="belongs to another environment") as refused:
        keys.check_matches(stray, Path("s"), "prod", "https://api.minivoice.eu")
    assert_no_secrets(str(refused.value), extra=(KEY,))
    stray = sample()
    stray.api_url = KEY
    with pytest.raises(SecretsError, match="belongs to another account") as refused:
        keys.check_matches(stray, Path("s"), "prod", "https://api.minivoice.eu")
    assert_no_secrets(str(refused.value), extra=(KEY,))


# --- files that would crash a reader -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply", id="flow"),
        pytest.param(
            "".join(" " * n + "- \n" for n in range(0, 2000, 2)), "nested too deeply", id="block"
        ),
        pytest.param("environment: " + "9" * 5000 + "\n", "not valid YAML", id="bigint"),
    ],
)
def test_a_deep_or_huge_number_file_is_one_secrets_error(
    tmp_path: Path, text: str, reason: str
) -> None:
    assert reason in _refusal(tmp_path, text)


# --- symbolic links ----------------------------------------------------------------------


def test_a_secrets_file_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    keys.write_secrets(target, sample())
    link = tmp_path / "s.yaml"
    link.symlink_to(target)
    with pytest.raises(SecretsError, match="is a symbolic link"):
        keys.read_secrets(link)


def test_apply_refuses_a_linked_secrets_file_before_creating_anything(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        "version: 1\nenvironments:\n"
        f"  dev:\n    api_url: {emulator.url}\n    api_key_env: MV_TEST_KEY\n"
        "    secrets_file: keys/dev.secrets.yaml\n"
        "applications:\n  - name: New\n    answer_url: https://example.com/new\n"
    )
    target = tmp_path / "vault.yaml"
    keys.write_secrets(target, keys.empty("dev", emulator.url))
    before = target.read_bytes()
    (tmp_path / "keys").mkdir(mode=0o700)
    link = tmp_path / "keys" / "dev.secrets.yaml"
    link.symlink_to(target)
    monkeypatch.setenv("MV_TEST_KEY", TEST_API_KEY)
    monkeypatch.delenv("MVSYNC_FILE", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["-f", str(manifest), "apply", "--env", "dev", "--yes"])
    out, err = capsys.readouterr()
    assert_no_secrets(out + err)
    assert (exit_.value.code, emulator.request_count("POST")) == (1, 0)
    assert f"{link}: is a symbolic link" in err
    assert (link.is_symlink(), target.read_bytes()) == (True, before)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["dev.secrets.yaml"]
