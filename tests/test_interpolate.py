"""The ${} syntax: ${VAR}, ${VAR:-default}, $$; everything else is refused."""

from __future__ import annotations

import pytest

from mvsync.manifest.interpolate import (
    MissingVariableError,
    TemplateSyntaxError,
    Variable,
    expand,
    has_variables,
    missing_variables,
    parse,
)


def test_plain_text_is_one_literal() -> None:
    assert parse("https://example.com/a") == ("https://example.com/a",)


def test_a_variable_and_a_default_are_parsed() -> None:
    assert parse("https://${HOST:-example.com}/${PATH_PART}") == (
        "https://",
        Variable("HOST", "example.com"),
        "/",
        Variable("PATH_PART"),
    )


def test_double_dollar_is_a_literal_dollar() -> None:
    assert expand("cost $$5 ${X}", {"X": "now"}.get) == "cost $5 now"


def test_double_dollar_before_a_brace_is_not_a_variable() -> None:
    assert expand("$${X}", {}.get) == "${X}"
    assert not has_variables("$${X}")


def test_an_empty_default_is_allowed() -> None:
    assert expand("a${X:-}b", {}.get) == "ab"


def test_the_default_is_used_when_the_variable_is_empty() -> None:
    assert expand("${X:-d}", {"X": ""}.get) == "d"


def test_a_set_but_empty_variable_without_default_expands_to_empty() -> None:
    assert expand("a${X}b", {"X": ""}.get) == "ab"


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(MissingVariableError) as raised:
        expand("${A:-x}${B}", {}.get)
    assert raised.value.name == "B"


def test_missing_variables_lists_only_those_without_default() -> None:
    assert missing_variables("${A}${B:-b}${C}", {"C": "c"}.get) == ["A"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("$HOST", "must start ${VAR}"),
        ("trailing $", "must start ${VAR}"),
        ("${HOST", "never closed"),
        ("${}", "bad variable name '(empty)'"),
        ("${9LIVES}", "bad variable name '9LIVES'"),
        ("${A B}", "bad variable name 'A B'"),
        ("${HOST:?err}", "unsupported '${HOST:?err}'"),
        ("${HOST-d}", "unsupported '${HOST-d}'"),
        ("${A:-${B}}", "may not contain '$'"),
    ],
)
def test_bad_syntax_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=None) as raised:
        parse(text)
    assert reason in str(raised.value)
