"""yamlpos: fast plain data; positions (1-based) only when asked; guards against bad input."""

from __future__ import annotations

import pytest

from mvsync.errors import ManifestError
from mvsync.yamlpos import MAX_DEPTH, compose, load, locate, nesting_bound


def problem_of(text: str) -> str:
    with pytest.raises(ManifestError) as raised:
        load(text, "m.yaml")
    assert len(raised.value.problems) == 1
    return str(raised.value.problems[0])


def test_load_gives_plain_python_data() -> None:
    assert load("a: [1, two, {b: null}]\n", "m.yaml") == {"a": [1, "two", {"b": None}]}


def test_yaml_1_2_keeps_yes_and_on_as_strings() -> None:
    assert load("a: yes\nb: on\nc: no\n", "m.yaml") == {"a": "yes", "b": "on", "c": "no"}


def test_duplicate_keys_are_refused_without_quoting_values() -> None:
    assert problem_of("a: secret-one\na: secret-two\n") == "m.yaml:2:1: duplicate key 'a'"


def test_duplicate_keys_beside_a_merge_are_refused() -> None:
    text = "x: &x {p: 1}\ny:\n  <<: *x\n  q: 1\n  q: 2\n"
    assert problem_of(text) == "m.yaml:5:3: duplicate key 'q'"


def test_explicit_keys_override_merged_ones() -> None:
    text = "x: &x {p: 1, q: 1}\ny: {<<: *x, q: 2}\n"
    assert load(text, "m.yaml")["y"] == {"p": 1, "q": 2}


def test_earlier_merge_sources_win() -> None:
    text = "a: &a {k: from-a}\nb: &b {k: from-b, j: 1}\nc: {<<: [*a, *b]}\n"
    assert load(text, "m.yaml")["c"] == {"k": "from-a", "j": 1}


def test_python_tags_are_refused_with_their_place() -> None:
    assert problem_of("a: !!python/name:os.system x\n") == (
        "m.yaml:1:4: unsupported YAML tag '!!python/name:os.system'"
        " (only the standard safe tags are allowed)"
    )


def test_unknown_local_tags_are_refused() -> None:
    assert problem_of("a:\n  - !include other.yaml\n").startswith(
        "m.yaml:2:5: unsupported YAML tag '!include'"
    )


def test_a_bad_value_under_a_standard_tag_is_a_clean_error() -> None:
    assert problem_of("a: !!int twelve\n") == "m.yaml: invalid YAML: a value does not match its tag"


def test_a_tab_in_indentation_is_located() -> None:
    assert problem_of("a:\n\tb: 1\n") == (
        "m.yaml:2:1: tab character in indentation or before a value: YAML indents with spaces"
    )


def test_a_syntax_error_keeps_the_parser_position() -> None:
    assert problem_of("a: [1, 2\nb: 3\n").startswith("m.yaml:2:2: invalid YAML:")


def test_an_empty_stream_is_an_error() -> None:
    assert problem_of("# only a comment\n") == "m.yaml: the manifest is empty"


def test_two_documents_are_an_error_at_the_second() -> None:
    assert problem_of("a: 1\n---\nb: 2\n") == (
        "m.yaml:3:1: the manifest must be a single YAML document, found a second one"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "a: " + "{x: " * 50_000 + "1" + "}" * 50_000 + "\n",
        "a:\n" + "- " * 50_000 + "x\n",
        "".join(" " * depth + "k:\n" for depth in range(3_000)),
    ],
    ids=["flow-sequences", "flow-mappings", "compact-sequences", "indented-mappings"],
)
def test_deep_nesting_is_refused_before_the_c_parser_sees_it(text: str) -> None:
    assert (
        problem_of(text) == f"m.yaml: the YAML is nested too deeply (more than {MAX_DEPTH} levels)"
    )


def test_nesting_bound_is_small_for_a_wide_flat_file() -> None:
    text = "apps:\n" + "  - {name: a, envs: [x, y]}\n" * 5_000
    assert nesting_bound(text) <= 2


def test_brackets_inside_long_urls_do_not_count_as_nesting_when_balanced() -> None:
    text = "a: '" + "[x]" * 1_000 + "'\n"
    assert load(text, "m.yaml") == {"a": "[x]" * 1_000}


def test_an_alias_bomb_loads_as_shared_objects() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    data = load("\n".join(lines) + "\n", "m.yaml")
    assert data["a11"][0] is data["a10"]


def test_a_merge_bomb_stays_as_small_as_its_distinct_keys() -> None:
    lines = ["a0: &a0 {k0: v}"]
    lines += [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: v}}" for i in range(1, 80)]
    data = load("\n".join(lines) + "\n", "m.yaml")
    assert len(data["a79"]) == 80


TEXT = """\
top: &anchor
  p: 1
  list: [a, b, c]
other:
  <<: *anchor
  own: 2
alias: *anchor
"""


@pytest.mark.parametrize(
    ("path", "at_key", "place"),
    [
        (("top",), False, (1, 6)),
        (("top",), True, (1, 1)),
        (("top", "list", 2), False, (3, 16)),
        (("other", "own"), True, (6, 3)),
        (("other", "p"), False, (2, 6)),
        (("other", "p"), True, (2, 3)),
        (("alias", "list", 0), False, (3, 10)),
        (("other", "missing"), False, (5, 3)),
        (("top", "list", 99), False, (3, 9)),
        ((), False, (1, 1)),
    ],
)
def test_locate_follows_merges_and_aliases(
    path: tuple[str | int, ...], at_key: bool, place: tuple[int, int]
) -> None:
    assert locate(compose(TEXT), path, at_key=at_key) == place


def test_locate_survives_a_recursive_merge() -> None:
    root = compose("a: &a\n  <<: *a\n  k: 1\n")
    assert locate(root, ("a", "zz")) == (1, 4)


def test_locate_without_a_tree_is_the_whole_file() -> None:
    assert locate(None, ("a",)) == (0, 0)
