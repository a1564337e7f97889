"""``key_sink`` and ``key_sink_env`` in the manifest: the value, and every located refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest, resolve_environment
from mvsync.model import KeySink, slug, split_placeholders

GH = '[gh, secret, set, "MINIVOICE_KEY_{slug}", --env, prod]'


def manifest(tmp_path: Path, sink: str, apps: list[str], extra: str = "") -> Path:
    lines = [
        "version: 1",
        "environments:",
        "  prod:",
        "    api_key_env: MV_KEY",
        f"    key_sink: {sink}",
        *(f"    {line}" for line in extra.splitlines()),
        "applications:",
    ]
    for name in apps:
        lines += [f"  - name: {name}", "    answer_url: https://example.com/a"]
    path = tmp_path / "mvsync.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    return [str(problem) for problem in raised.value.problems]


def test_slug_upper_cases_and_folds_every_other_run_into_one_underscore() -> None:
    assert slug("Night Shift / Overflow") == "NIGHT_SHIFT_OVERFLOW"
    assert slug("  support ivr (2) ") == "SUPPORT_IVR_2"
    assert slug("Ünïcode-ß") == "N_CODE_SS"


def test_placeholders_fill_in_per_application_and_variables_stay_literal(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        '[vault, kv, put, "secret/${ROOT}/{environment}/{slug}", "api_key=-"]',
        ["Support IVR"],
    )
    desired = resolve_environment(load_manifest(path), "prod", {"ROOT": "a{name}b"}.get)
    assert desired.key_sink is not None
    argv = desired.key_sink.fill("Support IVR", "app_1", "prod")
    assert argv == ("vault", "kv", "put", "secret/a{name}b/prod/SUPPORT_IVR", "api_key=-")
    assert (
        desired.key_sink.as_written()
        == "vault kv put secret/a{name}b/{environment}/{slug} api_key=-"
    )


def test_an_environment_without_key_sink_has_none(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nenvironments:\n  prod: {}\napplications:\n"
        "  - name: A\n    answer_url: https://example.com/a\n"
    )
    assert resolve_environment(load_manifest(path), "prod", {}.get).key_sink is None


def test_two_names_with_one_slug_are_a_located_error(tmp_path: Path) -> None:
    path = manifest(tmp_path, GH, ["Night Shift / Overflow", "Night-Shift Overflow"])
    assert problems(path) == [
        f"{path}:9:11: applications 'Night Shift / Overflow' and 'Night-Shift Overflow' fill"
        " in the key_sink of environment 'prod' alike: one key would overwrite the other in"
        " the store; use {name} or {id} in an argument, or rename one of them (with an"
        " override) (first at line 7)"
    ]


def test_id_in_an_argument_keeps_every_application_apart(tmp_path: Path) -> None:
    path = manifest(tmp_path, '[sink, "k/{slug}/{id}"]', ["Night Shift", "Night-Shift"])
    assert load_manifest(path).environments["prod"].key_sink == ["sink", "k/{slug}/{id}"]


def test_a_sink_without_placeholders_is_refused_for_two_applications(tmp_path: Path) -> None:
    path = manifest(tmp_path, "[./store-key]", ["A", "B"])
    assert [p.split(": ", 1)[1][:40] for p in problems(path)] == [
        "applications 'A' and 'B' fill in the key"
    ]


def test_a_placeholder_that_makes_an_argument_start_with_a_dash_is_refused(tmp_path: Path) -> None:
    path = manifest(tmp_path, '[pass, insert, "{name}"]', ["'-rf'"])
    assert problems(path) == [
        f"{path}:7:11: application name '-rf' would make an argument of the key_sink of"
        " environment 'prod' start with '-' (it would read as an option); put a fixed prefix"
        " before the placeholder or rename the application"
    ]


def test_a_fixed_dash_is_an_option_as_written(tmp_path: Path) -> None:
    path = manifest(tmp_path, '[pass, insert, --force, "minivoice/{name}"]', ["'-rf'"])
    assert load_manifest(path).environments["prod"].key_sink is not None


def test_a_name_from_a_variable_is_checked_once_expanded(tmp_path: Path) -> None:
    path = manifest(tmp_path, '[pass, insert, "{name}"]', ["${APP}"])
    loaded = load_manifest(path)  # validate cannot know the name
    with pytest.raises(ManifestError) as raised:
        resolve_environment(loaded, "prod", {"APP": "--help"}.get)
    assert "application name '--help' would make an argument" in str(raised.value)


def test_unknown_placeholder_and_placeholder_in_the_program_are_located(tmp_path: Path) -> None:
    path = manifest(tmp_path, '["{slug}-sink", "{app}"]', ["A"])
    assert problems(path) == [
        f"{path}:5:31: key_sink[1]: unknown placeholder {{app}} (the placeholders are {{name}}"
        " {slug} {id} {environment})",
    ]
    path = manifest(tmp_path, '["{slug}-sink", x]', ["A"])
    assert problems(path) == [
        f"{path}:5:16: key_sink: the program may not hold a placeholder (an application's name"
        " would choose what runs); put {name}, {slug}, {id} or {environment} in an argument"
    ]


def test_a_secret_variable_in_an_argument_or_in_key_sink_env_is_refused(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        '[sink, "{slug}", "${MV_KEY}", "${HOOK}"]',
        ["A"],
        extra="key_sink_env: [GH_TOKEN, MV_KEY]",
    )
    text = path.read_text().replace(
        "applications:", "defaults:\n  webhook_secret: ${HOOK}\napplications:"
    )
    path.write_text(text)
    found = problems(path)
    assert any(
        ":5:" in p and "MV_KEY holds a secret of mvsync's: it may not appear" in p for p in found
    )
    assert any(":5:" in p and "HOOK holds a secret" in p for p in found)
    assert any(":6:" in p and "MV_KEY holds a secret of mvsync's (an API key" in p for p in found)
    assert len(found) == 3


def test_mvsync_own_variables_are_never_listed_for_the_sink(tmp_path: Path) -> None:
    extra = "key_sink_env: [GH_TOKEN, MVSYNC_AGE_IDENTITY, MVSYNC_STATE_URL]"
    found = problems(manifest(tmp_path, '[sink, "{slug}"]', ["A"], extra=extra))
    assert [p.split(": ", 2)[1] for p in found] == ["key_sink_env[1]", "key_sink_env[2]"]
    assert all("mvsync's own variables" in p for p in found)


def test_key_sink_env_without_a_sink_and_an_empty_sink_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nenvironments:\n  prod:\n    key_sink_env: [GH_TOKEN]\n"
        "  dev:\n    key_sink: []\n"
    )
    found = problems(path)
    assert (
        f"{path}:4:5: key_sink_env without key_sink: there is no sink to give these variables to"
        in found
    )
    assert any(p.startswith(f"{path}:6:15: key_sink") for p in found)
    assert len(found) == 2


def test_split_placeholders_leaves_other_braces_alone() -> None:
    assert split_placeholders('{"a": 1} {slug}') == ('{"a": 1} ', "slug", "")
    sink = KeySink((("x",), split_placeholders("{name}")))
    assert sink.dash_made("-n", "app_1", "prod") == 1
    assert sink.dash_made("n", "app_1", "prod") is None
