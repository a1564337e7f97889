"""Hypothesis: generated valid manifests validate; mutated ones fail only with ManifestError."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvsync.errors import ManifestError
from mvsync.manifest import environment_names, load_manifest, resolve_environment

ENV_POOL = ["dev", "staging", "prod", "qa", "eu-west", "us_east", "perf2"]
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    envs = draw(st.lists(st.sampled_from(ENV_POOL), min_size=1, max_size=4, unique=True))
    environments: dict[str, Any] = {}
    for env in envs:
        config: dict[str, Any] = {"api_key_env": f"KEY_{env.upper().replace('-', '_')}"}
        if draw(st.booleans()):
            config["api_url"] = f"https://{env}.api.example.com"
        environments[env] = config
    defaults: dict[str, Any] = {}
    if draw(st.booleans()):
        defaults["webhook_url"] = "https://crm.example.com/hooks"
    if draw(st.booleans()):
        defaults["webhook_secret"] = "${MV_WEBHOOK_SECRET}"
    words = st.text(string.ascii_letters + string.digits + " -_.", min_size=1, max_size=12)
    count = draw(st.integers(0, 8))
    applications = []
    for index in range(count):
        # "App <n> ..." keeps names unique; override names add the environment.
        name = f"App {index} {draw(words).strip() or 'x'}"
        app: dict[str, Any] = {"name": name, "answer_url": f"https://example.com/{index}/answer"}
        in_envs = envs
        if draw(st.booleans()):
            in_envs = draw(st.lists(st.sampled_from(envs), min_size=0, unique=True))
            app["environments"] = in_envs
        overrides = {}
        for env in in_envs:
            if draw(st.booleans()):
                overrides[env] = {
                    "name": f"{name} ({env})",
                    "answer_url": f"https://{env}.example.com/{index}",
                }
        if overrides:
            app["overrides"] = overrides
        applications.append(app)
    return {
        "version": 1,
        "environments": environments,
        "defaults": defaults,
        "applications": applications,
    }


@FAST
@given(document=manifests())
def test_generated_valid_manifests_validate_and_resolve(
    document: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "mvsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    manifest = load_manifest(path)
    assert environment_names(manifest) == list(document["environments"])
    for env in environment_names(manifest):
        desired = resolve_environment(manifest, env, {}.get)
        expected = [
            app
            for app in document["applications"]
            if env in app.get("environments", document["environments"])
        ]
        assert len(desired.apps) == len(expected)


NOISE = [*":-[]{}&*!|>?#'\"%@`,\t\n $", "<<: ", "${", "!!python/name:os.system "]


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = yaml.safe_dump(draw(manifests()), sort_keys=False)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "duplicate_line", "drop_line", "swap"]))
        lines = text.splitlines(keepends=True)
        if kind == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(NOISE)) + text[at:]
        elif kind == "delete" and text:
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + text[at + 1 :]
        elif kind == "duplicate_line" and lines:
            at = draw(st.integers(0, len(lines) - 1))
            text = "".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])
        elif kind == "drop_line" and lines:
            at = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:at] + lines[at + 1 :])
        elif kind == "swap" and len(lines) > 1:
            first = draw(st.integers(0, len(lines) - 2))
            lines[first], lines[first + 1] = lines[first + 1], lines[first]
            text = "".join(lines)
    return text


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mutated_texts())
def test_mutated_manifests_raise_nothing_but_manifest_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "mvsync.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        manifest = load_manifest(path)
    except ManifestError as error:
        assert error.problems
        assert all(problem.path == str(path) for problem in error.problems)
        return
    for env in environment_names(manifest):
        try:
            resolve_environment(manifest, env, {}.get)
        except ManifestError as error:
            assert error.problems


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.just("${X}"), st.just("$x")
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@FAST
@given(document=manifests(), replacement=VALUES, data=st.data())
def test_any_value_anywhere_raises_nothing_but_manifest_error(
    document: dict[str, Any], replacement: Any, data: st.DataObject, tmp_path: Path
) -> None:
    node: Any = document
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], dict | list) or not data.draw(st.booleans()):
            node[key] = replacement
            break
        node = node[key]
    path = tmp_path / "mvsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        load_manifest(path)
    except ManifestError as error:
        assert all(problem.message for problem in error.problems)
