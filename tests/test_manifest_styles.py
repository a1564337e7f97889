"""Every YAML 1.2 style of one manifest loads to the same manifest (issue 9, item 8).

``tests/fixtures/manifests/valid-styles/`` holds one manifest written in block style,
flow style (a flow mapping holding URLs, which libyaml refuses with "found unexpected
':'"), JSON, quoted scalars, folded and literal scalars, explicit documents and keys,
tags and anchors, and a BOM with CRLF line ends. Each must load to the same data and
resolve to the same environments as ``block.yaml``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mvsync import yamlpos
from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest, resolve_environment

STYLES = Path(__file__).parent / "fixtures" / "manifests" / "valid-styles"
REFERENCE = STYLES / "block.yaml"
VARIANTS = sorted(path for path in STYLES.glob("*.yaml") if path != REFERENCE)


def _resolved(path: Path) -> list[object]:
    manifest = load_manifest(path)
    return [resolve_environment(manifest, name, {}.get) for name in manifest.environments]


def test_the_corpus_has_every_style() -> None:
    names = {path.stem for path in VARIANTS}
    assert {"flow-url", "flow-whole", "json", "quoted", "folded", "explicit-documents"} <= names


@pytest.mark.parametrize("path", VARIANTS, ids=lambda path: path.stem)
def test_each_style_loads_to_the_same_manifest(path: Path) -> None:
    assert load_manifest(path).model_dump() == load_manifest(REFERENCE).model_dump()
    assert _resolved(path) == _resolved(REFERENCE)


def test_a_flow_mapping_holding_a_url_is_yaml() -> None:
    text = "staging: {api_url: https://staging-api.minivoice.eu, api_key_env: K}\n"
    assert yamlpos.load(text, "m.yaml") == {
        "staging": {"api_url": "https://staging-api.minivoice.eu", "api_key_env": "K"}
    }


def test_a_problem_in_a_flow_style_manifest_is_still_located(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\n"
        "environments:\n"
        "  staging: {api_url: https://staging-api.minivoice.eu, api_key_env: K}\n"
        "applications:\n"
        "  - {name: A, answer_url: ftp://ivr.example.com/a}\n"
    )
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (5, 27)
    assert "absolute http(s) URL" in problem.message


def test_yaml_that_both_parsers_refuse_is_still_located() -> None:
    with pytest.raises(ManifestError) as caught:
        yamlpos.load("a: {b: https://x, c: d\n", "m.yaml")
    [problem] = caught.value.problems
    assert problem.line == 2
    assert problem.message.startswith("invalid YAML: ")


def test_a_data_problem_in_flow_style_is_the_pure_parsers_word() -> None:
    # libyaml stops at the URL; the pure parser reads on and finds the duplicate key.
    with pytest.raises(ManifestError) as caught:
        yamlpos.load("a: {b: https://x, b: https://y}\n", "m.yaml")
    [problem] = caught.value.problems
    assert problem.message == "duplicate key 'b'"
    assert (problem.line, problem.column) == (1, 19)


def test_a_lone_surrogate_escape_is_refused_where_it_is_written() -> None:
    # The pure parser reads "\ud800" as a lone surrogate (libyaml refuses it): never a name,
    # not even in a flow mapping that only the pure parser reads.
    with pytest.raises(ManifestError) as caught:
        yamlpos.load('a: {u: https://x, name: "x\\ud800"}\n', "m.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (1, 25)
    assert "lone surrogate" in problem.message


def test_the_pure_parser_warns_of_nothing() -> None:
    # An anchor defined twice is valid YAML 1.2; ruamel's pure composer would print a
    # warning quoting the file (which may hold a secret) on stderr.
    text = "a: {u: https://x, v: &s one}\nb: &s two\nc: *s\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert yamlpos.load(text, "m.yaml") == {
            "a": {"u": "https://x", "v": "one"},
            "b": "two",
            "c": "two",
        }
