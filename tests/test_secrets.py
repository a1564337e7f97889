"""mvsync.secrets: the secrets file is read strictly and entries are only ever added."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from mvsync import journal, secrets
from mvsync.errors import SecretsError
from mvsync.secrets import SecretEntry, SecretsFile

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
    secrets.write_secrets(path, sample())
    text = path.read_text()
    assert text.startswith('# mvsync secrets for environment "prod": live MiniVoice API keys.')
    assert secrets.read_secrets(path) == sample()
    assert path.stat().st_mode & 0o777 == 0o600


def test_spec_example_file_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "# comment\nenvironment: prod\napi_url: https://api.minivoice.eu\napplications:\n"
        "  Support IVR:\n    id: app_20260529T120000.000000000\n    api_key: mv_live_xxx\n"
        '    created_at: "2026-05-29T12:00:00Z"\n',
    )
    loaded = secrets.read_secrets(path)
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
    assert secrets.parse(secrets.dump(original).decode(), Path("x")) == original


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert secrets.read_secrets(tmp_path / "absent.yaml") is None


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
        ("environment: prod\napi_url: u\nextra: 1\n", "extra"),
    ],
)
def test_malformed_file_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(SecretsError, match=reason):
        secrets.read_secrets(path)


def test_malformed_file_error_never_quotes_a_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        f"environment: prod\napi_url: u\napplications:\n  A: {{id: 7, api_key: {KEY}}}\n",
    )
    with pytest.raises(SecretsError) as refused:
        secrets.read_secrets(path)
    assert KEY not in str(refused.value)


def test_group_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    secrets.write_secrets(path, sample())
    path.chmod(0o640)
    with pytest.raises(SecretsError, match="lets the group or others read it"):
        secrets.read_secrets(path)


def test_file_of_another_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="environment 'prod', not 'staging'"):
        secrets.check_matches(sample(), tmp_path / "s", "staging", "https://api.minivoice.eu")


def test_fold_adds_new_entries_and_keeps_every_existing_one(tmp_path: Path) -> None:
    current = sample()
    result = secrets.add_records(
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
    result = secrets.add_records(
        current, [journal.created("Support IVR", "app_9", SecretStr("mv_live_other"), "t9")]
    )
    assert current.applications["Support IVR"].api_key == SecretStr(KEY)
    assert current.applications["Support IVR (app_9)"].api_key == SecretStr("mv_live_other")
    assert result.renamed == [("Support IVR (app_9)", "app_9")]


def test_fold_of_an_already_folded_record_changes_nothing() -> None:
    current = sample()
    result = secrets.add_records(
        current, [journal.created("Support IVR", "app_1", SecretStr(KEY), "t1")]
    )
    assert (current, result.changed) == (sample(), False)


def test_not_captured_never_replaces_a_stored_key() -> None:
    current = sample()
    secrets.add_records(current, [journal.not_captured("Support IVR", "app_1")])
    assert current.applications["Support IVR"].key_captured is True
