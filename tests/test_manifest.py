"""load_manifest, resolve_environment, read_api_key, expand_secret and the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers import REPO_ROOT, TEST_API_KEY, TEST_WEBHOOK_SECRET, assert_no_secrets
from mvsync.errors import ManifestError, MvsyncError, UsageError
from mvsync.manifest import (
    environment_names,
    expand_secret,
    json_schema,
    load_manifest,
    read_api_key,
    resolve_environment,
)
from mvsync.model import DEFAULT_API_KEY_ENV, DEFAULT_API_URL

EXAMPLE = REPO_ROOT / "examples" / "minivoice.yaml"
SCHEMA_FILE = REPO_ROOT / "docs" / "mvsync.schema.json"
BAD = REPO_ROOT / "tests" / "fixtures" / "manifests" / "bad"

MINIMAL = """\
version: 1
environments:
  staging:
    api_key_env: KEY_STAGING
  prod:
    api_key_env: KEY_PROD
defaults:
  webhook_url: https://crm.example.com/hooks
  webhook_secret: ${MV_WEBHOOK_SECRET}
applications:
  - name: Support IVR
    answer_url: https://example.com/answer
    overrides:
      staging:
        name: Support IVR (staging)
        answer_url: https://staging.example.com/answer
"""


def no_variables(_name: str) -> str | None:
    return None


def variables(**values: str) -> Callable[[str], str | None]:
    return values.get


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write_manifest(text: str) -> Path:
        path = tmp_path / "mvsync.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write_manifest


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    return [str(problem) for problem in raised.value.problems]


# -- loading --------------------------------------------------------------------------


def test_example_manifest_loads_without_any_variable() -> None:
    manifest = load_manifest(EXAMPLE)
    assert environment_names(manifest) == ["dev", "staging", "prod"]
    assert len(manifest.applications) == 5
    assert manifest.source == EXAMPLE


def test_example_manifest_starts_with_the_schema_comment() -> None:
    first_line = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../docs/mvsync.schema.json"


def test_environment_names_keep_file_order(write: Callable[[str], Path]) -> None:
    text = "version: 1\nenvironments:\n  zeta: {api_key_env: A}\n  alpha: {api_key_env: B}\n"
    assert environment_names(load_manifest(write(text))) == ["zeta", "alpha"]


def test_yes_and_no_stay_strings_as_yaml_1_2_says(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("name: Support IVR\n", "name: yes\n")
    manifest = load_manifest(write(text))
    assert manifest.applications[0].name == "yes"


def test_merge_keys_and_aliases_work(write: Callable[[str], Path]) -> None:
    text = """\
version: 1
environments:
  prod: {}
x-ivr: &ivr
  answer_url: https://example.com/answer
  webhook_url: https://example.com/hooks
applications:
  - <<: *ivr
    name: Support IVR
  - <<: *ivr
    name: Sales IVR
    webhook_url: https://sales.example.com/hooks
"""
    desired = resolve_environment(load_manifest(write(text)), "prod", no_variables)
    assert [(app.name, app.answer_url, app.webhook_url) for app in desired.apps] == [
        ("Support IVR", "https://example.com/answer", "https://example.com/hooks"),
        ("Sales IVR", "https://example.com/answer", "https://sales.example.com/hooks"),
    ]


def test_a_problem_inside_a_merged_anchor_is_located_at_the_anchor(
    write: Callable[[str], Path],
) -> None:
    text = """\
version: 1
environments:
  prod: {}
x-ivr: &ivr
  answer_url: example.com/answer
applications:
  - name: Support IVR
    <<: *ivr
"""
    path = write(text)
    assert problems_of(path) == [
        f"{path}:5:15: answer_url: must be an absolute http(s) URL, got 'example.com/answer'"
    ]


def test_all_problems_of_a_file_are_reported_at_once(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("https://example.com/answer", "example.com").replace(
        "name: Support IVR (staging)", "nmae: x"
    )
    assert len(problems_of(write(text))) == 2


def test_cross_field_problems_are_all_reported(write: Callable[[str], Path]) -> None:
    text = MINIMAL + "    environments: [prod, qa]\n  - name: Support IVR\n"
    path = write(text)
    assert problems_of(path) == [
        f"{path}:14:7: override for environment 'staging', where this application is not"
        " deployed (its environments: prod)",
        f"{path}:17:26: unknown environment 'qa' (defined: staging, prod)",
        f"{path}:18:5: missing required key 'answer_url' (not set here nor in defaults)",
        f"{path}:18:11: application name 'Support IVR' is used twice in environment 'prod'"
        " (first at line 11)",
    ]


def test_a_url_with_a_variable_is_not_checked_by_validate(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("https://example.com/answer", "${ANSWER_URL}")
    assert load_manifest(write(text)).applications[0].answer_url == "${ANSWER_URL}"


def test_a_double_dollar_is_a_literal_dollar(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("name: Support IVR\n", "name: Support $$5 IVR\n")
    desired = resolve_environment(load_manifest(write(text)), "prod", no_variables)
    assert desired.apps[0].name == "Support $5 IVR"


def test_an_alias_bomb_is_refused_or_loaded_without_blowing_up(
    write: Callable[[str], Path],
) -> None:
    lines = ["version: 1", "environments: {prod: {}}", "x-0: &a0 [lol, lol]"]
    lines += [f"x-{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 40)]
    lines.append("applications: *a39")
    problems = problems_of(write("\n".join(lines) + "\n"))
    assert problems[0].endswith("applications[0]: must be a mapping, got a list")
    assert len(problems) == 2


def test_a_merge_key_bomb_loads_quickly_into_few_keys(write: Callable[[str], Path]) -> None:
    lines = ["version: 1", "environments: {prod: {}}", "x-0: &a0 {k0: v}"]
    lines += [f"x-{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: v}}" for i in range(1, 60)]
    manifest = load_manifest(write("\n".join(lines) + "\n"))
    assert environment_names(manifest) == ["prod"]


def test_a_recursive_alias_is_a_clean_error(write: Callable[[str], Path]) -> None:
    path = write("version: 1\nenvironments: {prod: {}}\napplications: &a [*a]\n")
    assert problems_of(path) == [f"{path}:3:15: applications[0]: must be a mapping, got a list"]


def test_deep_nesting_is_a_clean_error(write: Callable[[str], Path]) -> None:
    text = "version: 1\nenvironments: {prod: {}}\napplications:\n" + "- " * 100_000 + "x\n"
    path = write(text)
    assert problems_of(path) == [f"{path}: the YAML is nested too deeply (more than 500 levels)"]


# -- resolution -----------------------------------------------------------------------


def test_resolution_merges_defaults_then_application_then_override(
    write: Callable[[str], Path],
) -> None:
    manifest = load_manifest(write(MINIMAL))
    staging = resolve_environment(manifest, "staging", no_variables)
    prod = resolve_environment(manifest, "prod", no_variables)
    assert staging.apps[0].name == "Support IVR (staging)"
    assert staging.apps[0].answer_url == "https://staging.example.com/answer"
    assert prod.apps[0].name == "Support IVR"
    assert prod.apps[0].webhook_url == "https://crm.example.com/hooks"


def test_resolution_keeps_the_webhook_secret_as_its_reference(
    write: Callable[[str], Path],
) -> None:
    manifest = load_manifest(write(MINIMAL))
    desired = resolve_environment(manifest, "prod", variables(MV_WEBHOOK_SECRET="s3"))
    assert desired.apps[0].webhook_secret_ref == "${MV_WEBHOOK_SECRET}"


def test_null_in_an_override_drops_the_default_webhook(write: Callable[[str], Path]) -> None:
    text = MINIMAL + "      prod:\n        webhook_url: null\n        webhook_secret: null\n"
    desired = resolve_environment(load_manifest(write(text)), "prod", no_variables)
    assert (desired.apps[0].webhook_url, desired.apps[0].webhook_secret_ref) == (None, None)


def test_environment_defaults_are_filled_in(write: Callable[[str], Path]) -> None:
    path = write("version: 1\nenvironments:\n  prod: {}\n")
    desired = resolve_environment(load_manifest(path), "prod", no_variables)
    assert (desired.api_url, desired.api_key_env) == (DEFAULT_API_URL, DEFAULT_API_KEY_ENV)
    assert desired.secrets_path == path.parent.absolute() / ".mvsync" / "prod.secrets.yaml"
    assert desired.apps == ()


def test_secrets_file_is_relative_to_the_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "m.yaml").write_text(
        "version: 1\nenvironments:\n  prod:\n    secrets_file: ${KEYS_DIR:-keys}/prod.yaml\n"
    )
    monkeypatch.chdir(tmp_path)
    desired = resolve_environment(load_manifest(Path("repo/m.yaml")), "prod", no_variables)
    assert desired.secrets_path == folder / "keys" / "prod.yaml"
    assert desired.secrets_path.is_absolute()


def test_application_only_in_listed_environments(write: Callable[[str], Path]) -> None:
    text = MINIMAL + "  - name: Beta\n    answer_url: https://b.example.com/\n"
    text += "    environments: [staging]\n"
    manifest = load_manifest(write(text))
    assert [a.name for a in resolve_environment(manifest, "prod", no_variables).apps] == [
        "Support IVR"
    ]
    assert len(resolve_environment(manifest, "staging", no_variables).apps) == 2


def test_variables_are_expanded_with_defaults(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("https://example.com/answer", "https://${HOST:-example.net}/a")
    manifest = load_manifest(write(text))
    assert resolve_environment(manifest, "prod", no_variables).apps[0].answer_url == (
        "https://example.net/a"
    )
    with_host = resolve_environment(manifest, "prod", variables(HOST="ivr.example.org"))
    assert with_host.apps[0].answer_url == "https://ivr.example.org/a"


def test_a_missing_variable_is_a_located_error_naming_it(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("https://example.com/answer", "https://${ANSWER_HOST}/a")
    path = write(text)
    manifest = load_manifest(path)
    with pytest.raises(ManifestError) as raised:
        resolve_environment(manifest, "prod", no_variables)
    assert str(raised.value) == (
        f"{path}:12:17: answer_url: variable ANSWER_HOST not set (needed for environment 'prod')"
    )


def test_an_unknown_environment_is_a_usage_error(write: Callable[[str], Path]) -> None:
    with pytest.raises(UsageError, match="unknown environment 'qa'"):
        resolve_environment(load_manifest(write(MINIMAL)), "qa", no_variables)


def test_a_url_that_expands_to_a_non_url_is_located_and_does_not_show_the_value(
    write: Callable[[str], Path],
) -> None:
    text = MINIMAL.replace("https://example.com/answer", "${ANSWER_URL}")
    path = write(text)
    with pytest.raises(ManifestError) as raised:
        resolve_environment(load_manifest(path), "prod", variables(ANSWER_URL=TEST_API_KEY))
    assert str(raised.value).startswith(f"{path}:12:17: answer_url: '${{ANSWER_URL}}' does not")
    assert_no_secrets(str(raised.value))


def test_names_equal_after_expansion_are_refused(write: Callable[[str], Path]) -> None:
    text = MINIMAL + "  - name: ${OTHER_NAME}\n    answer_url: https://example.com/o\n"
    manifest = load_manifest(write(text))
    with pytest.raises(ManifestError, match="'Support IVR' is used twice in environment 'prod'"):
        resolve_environment(manifest, "prod", variables(OTHER_NAME="Support IVR"))


def test_resolution_reads_only_the_variables_it_needs(write: Callable[[str], Path]) -> None:
    text = MINIMAL.replace("https://staging.example.com/answer", "https://${STAGING_HOST}/a")
    manifest = load_manifest(write(text))
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return None

    resolve_environment(manifest, "prod", lookup)
    assert asked == []


# -- keys and secrets -----------------------------------------------------------------


def test_read_api_key_returns_the_variable(write: Callable[[str], Path]) -> None:
    desired = resolve_environment(load_manifest(write(MINIMAL)), "prod", no_variables)
    assert read_api_key(desired, variables(KEY_PROD=TEST_API_KEY)) == TEST_API_KEY


@pytest.mark.parametrize("value", [None, ""])
def test_read_api_key_names_the_missing_variable(
    write: Callable[[str], Path], value: str | None
) -> None:
    desired = resolve_environment(load_manifest(write(MINIMAL)), "prod", no_variables)
    with pytest.raises(MvsyncError) as raised:
        read_api_key(desired, lambda _name: value)
    assert str(raised.value) == "environment 'prod': the API key variable KEY_PROD is not set"


def test_expand_secret_returns_the_value() -> None:
    secret = expand_secret("${MV_WEBHOOK_SECRET}", variables(MV_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET))
    assert secret == TEST_WEBHOOK_SECRET


def test_expand_secret_names_the_variable_never_a_value() -> None:
    with pytest.raises(MvsyncError) as raised:
        expand_secret("${MV_WEBHOOK_SECRET}", variables(OTHER=TEST_WEBHOOK_SECRET))
    assert str(raised.value) == "the webhook secret variable MV_WEBHOOK_SECRET is not set"


def test_expand_secret_refuses_a_literal_without_showing_it() -> None:
    with pytest.raises(MvsyncError) as raised:
        expand_secret(TEST_WEBHOOK_SECRET, no_variables)
    assert_no_secrets(str(raised.value))


# -- schema ---------------------------------------------------------------------------


def test_schema_is_draft_2020_12_with_a_title() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "mvsync manifest"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_schema_property_has_a_description() -> None:
    schema = json_schema()
    models = [schema, *schema["$defs"].values()]
    for model in models:
        for name, prop in model.get("properties", {}).items():
            assert prop.get("description"), name


def test_committed_schema_file_equals_the_schema_command() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "mvsync", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(printed) == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert printed == SCHEMA_FILE.read_text(encoding="utf-8")


def test_schema_accepts_the_example() -> None:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    jsonschema.validate(document, json_schema())


@pytest.mark.parametrize(
    "name",
    [
        "unknown_application_key",
        "missing_name",
        "answer_url_number",
        "literal_webhook_secret",
        "environment_name_upper_case",
        "version_unsupported",
        "name_in_defaults",
        "environments_list",
    ],
)
def test_schema_rejects_bad_manifests(name: str) -> None:
    document = yaml.safe_load((BAD / f"{name}.yaml").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document))


# -- imports --------------------------------------------------------------------------


def test_cli_and_validate_import_neither_httpx_nor_pyrage() -> None:
    code = (
        "import sys, mvsync.cli\n"
        "from mvsync.cli import main\n"
        "try:\n"
        f"    main(['validate', '-f', {str(EXAMPLE)!r}])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "loaded = sorted(m for m in ('httpx', 'pyrage', 'psycopg') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == ""


def test_validate_needs_no_variable_and_prints_the_counts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mvsync", "validate", "-f", "examples/minivoice.yaml"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "examples/minivoice.yaml: valid (5 applications, 3 environments)\n"


def test_an_invalid_environment_name_with_brackets_is_a_clean_error(
    write: Callable[[str], Path],
) -> None:
    path = write("version: 1\nenvironments:\n  '[': {api_url: 1}\n")
    assert len(problems_of(path)) == 2


# -- credentials in api_url ----------------------------------------------------------------

PASSWORD = "mvtest_PASSWORD_CANARY_4e2a"
CREDENTIALS = (
    "api_url must not carry credentials (user:password@): the API key comes from api_key_env"
)


@pytest.mark.parametrize(
    "api_url",
    [
        f"https://user:{PASSWORD}@api.example.com",
        f"http://{PASSWORD}@127.0.0.1:8080/",
        "https://user:${MV_PASS}@api.example.com",
        "https://${MV_USERINFO}@api.example.com",
        f"${{MV_URL:-https://user:{PASSWORD}@api.example.com}}",
        f"https://user:{PASSWORD}@",
    ],
)
def test_credentials_in_api_url_as_written_are_a_located_error_that_does_not_show_them(
    write: Callable[[str], Path], api_url: str
) -> None:
    path = write(MINIMAL.replace("    api_key_env: KEY_PROD\n", f"    api_url: {api_url}\n"))
    assert problems_of(path) == [f"{path}:6:14: {CREDENTIALS}"]


def test_credentials_that_api_url_expands_to_are_a_located_error_without_the_value(
    write: Callable[[str], Path],
) -> None:
    path = write(MINIMAL.replace("    api_key_env: KEY_PROD\n", "    api_url: ${MV_URL}\n"))
    manifest = load_manifest(path)
    url = f"https://user:{PASSWORD}@api.example.com"
    with pytest.raises(ManifestError) as raised:
        resolve_environment(manifest, "prod", variables(MV_URL=url))
    assert str(raised.value) == f"{path}:6:14: {CREDENTIALS}"
    plain = resolve_environment(manifest, "prod", variables(MV_URL="https://a.example.com"))
    assert plain.api_url == "https://a.example.com"
