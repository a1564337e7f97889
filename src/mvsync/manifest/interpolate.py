"""``${}`` templates in manifest strings: parse, list variables, expand.

The syntax is deliberately small, like docker compose's:

- ``${VAR}``: the value of ``VAR`` (an error names ``VAR`` when it is unset);
- ``${VAR:-default}``: the value of ``VAR``, or ``default`` when it is unset or empty;
- ``$$``: a literal ``$``.

Any other ``$`` is a syntax error rather than silently kept, so that a mistyped
``$VAR`` is caught by ``mvsync validate`` instead of reaching MiniVoice. A
default may not itself hold ``$``, ``{`` or ``}``. Expanding never puts a
variable's value into an error message: only its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Lookup = Callable[[str], "str | None"]

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Variable:
    """One ``${NAME}`` or ``${NAME:-default}``."""

    name: str
    default: str | None = None


Part = str | Variable


class TemplateSyntaxError(ValueError):
    """A string whose ``${}`` cannot be parsed; ``str()`` is the plain reason."""


class MissingVariableError(LookupError):
    """A ``${NAME}`` whose variable is not set; carries the name only."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def parse(text: str) -> tuple[Part, ...]:
    """Split ``text`` into literal strings and variables, or raise TemplateSyntaxError."""
    if "$" not in text:
        return (text,) if text else ()
    parts: list[Part] = []
    literal: list[str] = []
    index = 0
    while True:
        dollar = text.find("$", index)
        if dollar < 0:
            literal.append(text[index:])
            break
        literal.append(text[index:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            literal.append("$")
            index = dollar + 2
            continue
        if following != "{":
            raise TemplateSyntaxError(
                f"'$' at position {dollar + 1} must start ${{VAR}} or ${{VAR:-default}};"
                " write '$$' for a literal '$'"
            )
        close = text.find("}", dollar + 2)
        if close < 0:
            raise TemplateSyntaxError(f"'${{' at position {dollar + 1} is never closed by '}}'")
        parts_text = "".join(literal)
        if parts_text:
            parts.append(parts_text)
        literal = []
        parts.append(_variable(text[dollar + 2 : close]))
        index = close + 1
    rest = "".join(literal)
    if rest:
        parts.append(rest)
    return tuple(parts)


def _variable(inner: str) -> Variable:
    name, sep, default = inner.partition(":-")
    if not VAR_NAME.match(name):
        head = re.split(r"[:?+=-]", name, maxsplit=1)[0]
        if head != name and VAR_NAME.match(head):
            raise TemplateSyntaxError(
                f"unsupported '${{{inner}}}': only ${{VAR}} and ${{VAR:-default}} are supported"
            )
        shown = name if name else "(empty)"
        raise TemplateSyntaxError(
            f"bad variable name {shown!r} in '${{{inner}}}'"
            " (letters, digits and '_', not starting with a digit)"
        )
    if sep and any(c in default for c in "${"):
        raise TemplateSyntaxError(
            f"the default of ${{{name}:-...}} may not contain '$' or '{{'"
            " (nested ${} is not supported)"
        )
    return Variable(name, default if sep else None)


def has_variables(text: str) -> bool:
    """Whether ``text`` holds a ``${}`` (assumes it parses)."""
    return "${" in text and any(isinstance(part, Variable) for part in parse(text))


def variables(text: str) -> list[Variable]:
    """The variables of ``text``, in order."""
    return [part for part in parse(text) if isinstance(part, Variable)]


def literal_value(text: str) -> str:
    """The value of a template without variables (``$$`` folded to ``$``)."""
    return "".join(part for part in parse(text) if isinstance(part, str))


def expand(text: str, lookup: Lookup) -> str:
    """Expand every ``${}`` of ``text``; MissingVariableError names the first unset one."""
    out: list[str] = []
    for part in parse(text):
        if isinstance(part, str):
            out.append(part)
            continue
        value = lookup(part.name)
        if part.default is not None:
            out.append(value if value else part.default)
        elif value is None:
            raise MissingVariableError(part.name)
        else:
            out.append(value)
    return "".join(out)


def missing_variables(text: str, lookup: Lookup) -> list[str]:
    """The names of the variables ``text`` needs and ``lookup`` does not have."""
    return [
        part.name
        for part in parse(text)
        if isinstance(part, Variable) and part.default is None and lookup(part.name) is None
    ]
