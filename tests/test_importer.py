"""mvsync.importer: the manifest text made from a remote list (pure, no HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mvsync.importer import manifest_string, render_import, yaml_string
from mvsync.manifest import load_manifest
from mvsync.model import RemoteApp

GENERATED_AT = "2026-05-29T12:30:00Z"


def remote_app(
    app_id: str,
    name: str,
    answer_url: str = "https://example.com/answer",
    webhook_url: str | None = "https://example.com/hooks",
) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=webhook_url,
        created_at="2026-05-29T12:00:00Z",
    )


def load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def test_import_lists_applications_sorted_by_name() -> None:
    remote = [remote_app("app_2", "Zeta"), remote_app("app_1", "Alpha")]
    data = load(render_import("dev", "https://api.minivoice.eu", remote, GENERATED_AT))
    assert [app["name"] for app in data["applications"]] == ["Alpha", "Zeta"]


def test_import_output_is_the_same_for_any_input_order() -> None:
    remote = [remote_app(f"app_{i}", f"App {i % 7}-{i}") for i in range(20)]
    first = render_import("dev", "https://api.minivoice.eu", remote, GENERATED_AT)
    second = render_import("dev", "https://api.minivoice.eu", remote[::-1], GENERATED_AT)
    assert first == second


def test_import_comments_each_entry_with_its_id_and_creation_time() -> None:
    text = render_import("dev", "https://x.test", [remote_app("app_7", "Alpha")], GENERATED_AT)
    assert "  # from app_7, created 2026-05-29T12:00:00Z\n  - name: Alpha\n" in text


def test_import_writes_the_environment_with_its_api_url_and_key_variable() -> None:
    text = render_import(
        "staging", "https://api.minivoice.eu", [], GENERATED_AT, api_key_env="MV_KEY_STAGING"
    )
    assert load(text)["environments"] == {
        "staging": {"api_url": "https://api.minivoice.eu", "api_key_env": "MV_KEY_STAGING"}
    }


def test_import_of_no_applications_is_an_empty_list() -> None:
    assert load(render_import("dev", "https://x.test", [], GENERATED_AT))["applications"] == []


def test_import_gives_a_webhook_secret_placeholder_to_apps_with_a_webhook() -> None:
    data = load(render_import("dev", "https://x.test", [remote_app("app_1", "A")], GENERATED_AT))
    assert data["applications"][0]["webhook_secret"] == "${MV_WEBHOOK_SECRET}"


def test_import_leaves_out_webhook_fields_of_apps_without_a_webhook() -> None:
    remote = [remote_app("app_1", "A", webhook_url=None), remote_app("app_2", "B", webhook_url="")]
    data = load(render_import("dev", "https://x.test", remote, GENERATED_AT))
    assert data["applications"] == [
        {"name": "A", "answer_url": "https://example.com/answer"},
        {"name": "B", "answer_url": "https://example.com/answer"},
    ]


def test_import_comments_out_every_application_of_a_shared_name() -> None:
    remote = [remote_app("app_1", "Dup"), remote_app("app_2", "Dup"), remote_app("app_3", "One")]
    text = render_import("dev", "https://x.test", remote, GENERATED_AT)
    assert [app["name"] for app in load(text)["applications"]] == ["One"]
    assert '# NOT IMPORTED: 2 applications are named "Dup"' in text
    assert "  # from app_1, created" in text
    assert "  # from app_2, created" in text


def test_a_commented_out_duplicate_becomes_a_valid_entry_when_uncommented() -> None:
    remote = [remote_app("app_1", "Dup"), remote_app("app_2", "Dup")]
    text = render_import("dev", "https://x.test", remote, GENERATED_AT)
    kept = text.split("  # from app_2")[0].replace("applications: []", "applications:")
    kept = kept.replace("  # - name", "  - name").replace("  #   ", "    ")
    assert load(kept)["applications"] == [
        {
            "name": "Dup",
            "answer_url": "https://example.com/answer",
            "webhook_url": "https://example.com/hooks",
            "webhook_secret": "${MV_WEBHOOK_SECRET}",
        }
    ]


def test_import_comments_out_an_application_with_a_url_the_manifest_refuses() -> None:
    remote = [remote_app("app_1", "Ftp", answer_url="ftp://example.com/answer")]
    text = render_import("dev", "https://x.test", remote, GENERATED_AT)
    assert load(text)["applications"] == []
    assert "NOT IMPORTED: the manifest accepts only absolute http(s) URLs" in text


def test_import_doubles_dollars_so_remote_text_is_never_expanded() -> None:
    remote = [remote_app("app_1", "Pay ${AMOUNT} now", answer_url="https://x.test/?q=$1")]
    app = load(render_import("dev", "https://x.test", remote, GENERATED_AT))["applications"][0]
    assert (app["name"], app["answer_url"]) == ("Pay $${AMOUNT} now", "https://x.test/?q=$$1")


def test_import_keeps_remote_newlines_out_of_comments() -> None:
    remote = [remote_app("app_1\nversion: 2", "A")]
    data = load(render_import("dev", "https://x.test", remote, GENERATED_AT))
    assert data["version"] == 1


def test_manifest_string_doubles_every_dollar() -> None:
    assert manifest_string("a$b$$c") == '"a$$b$$$$c"'


def test_yaml_string_keeps_ordinary_urls_plain() -> None:
    assert yaml_string("https://example.com/minivoice/answer?x=1") == (
        "https://example.com/minivoice/answer?x=1"
    )


def test_yaml_string_quotes_words_yaml_would_read_as_other_types() -> None:
    quoted = [yaml_string(word) for word in ("yes", "No", "null", "1.5", "0x1F", "2026-05-29")]
    assert all(word.startswith('"') for word in quoted)


@given(st.text())
def test_yaml_string_loads_back_as_the_same_string_in_yaml_1_2(value: str) -> None:
    assert load(f"key: {yaml_string(value)}\n") == {"key": value}


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co"))))
def test_yaml_string_loads_back_as_the_same_string_in_yaml_1_1(value: str) -> None:
    # PyYAML is YAML 1.1 (yes/no/on/off are booleans there); editors often are too.
    assert yaml.safe_load(f"key: {yaml_string(value)}\n") == {"key": value}


def test_import_comments_out_an_application_whose_name_the_manifest_refuses(
    tmp_path: Path,
) -> None:
    # Issue 9, item 7: the import wrote `name: ""`, which its own loader refuses.
    remote = [remote_app("app_1", ""), remote_app("app_2", "  "), remote_app("app_3", "Kept")]
    text = render_import("dev", "https://x.test", remote, GENERATED_AT)
    assert text.count("NOT IMPORTED: the manifest refuses an empty or blank name.") == 2
    path = tmp_path / "imported.yaml"
    path.write_text(text)
    manifest = load_manifest(path)
    assert [app.name for app in manifest.applications] == ["Kept"]
