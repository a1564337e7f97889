"""YAML to plain Python data, fast; positions only when something is wrong.

A valid manifest is loaded once with ruamel's safe loader on its C parser
(YAML 1.2: ``yes``/``no`` stay strings) and no position is kept: keeping marks
for every node of a 60,000-line file costs several times the parse itself.
libyaml refuses some valid YAML 1.2 (a flow mapping holding a URL,
``{api_url: https://h, k: v}``, is "found unexpected ':'"): whatever the C parser
refuses is parsed again with ruamel's pure-Python parser, which follows the spec,
and only what both refuse is an error (the one found farther into the text). Only when the
caller has problems to report does it call ``locate``, which
composes the text again into nodes (the C composer keeps each node's
``start_mark``) and walks each problem's data path, a tuple of mapping keys and
list indices, through merge keys (``<<``) and aliases to a 1-based line and column.

Guards, so that no input hangs or crashes the process: a size limit, a nesting
limit checked on the text *before* the C parser sees it (the C composer recurses
and overflows the C stack at a few ten thousand levels), merge keys that are
de-duplicated as they are flattened (``<<: [*a, *a]`` chains would otherwise
grow exponentially), and RecursionError/MemoryError turned into a clean error.
Aliases are constructed once and shared, so an alias bomb costs no memory.

This module knows nothing of the manifest's schema.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from mvsync.errors import ManifestError, Problem

DataPath = tuple[str | int, ...]

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 500
_MERGE_TAG = "tag:yaml.org,2002:merge"


_SURROGATE = re.compile("[\ud800-\udfff]")


class _SafeConstructor(SafeConstructor):
    """ruamel's safe constructor with clean duplicate-key errors, bounded merges and
    no lone surrogate (``"\\ud800"``: the pure parser reads it, libyaml refuses it)."""

    def construct_yaml_str(self, node: Any) -> Any:
        value = super().construct_yaml_str(node)
        if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            raise ConstructorError(
                None,
                None,
                "a \\u escape gives a lone surrogate, which is not a character"
                " (write the character itself, or \\U and its 8 hex digits)",
                node.start_mark,
            )
        return value

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        # ruamel's own message quotes both values: a duplicated secret would leak.
        if key in mapping:
            raise DuplicateKeyError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {_show_key(key)}",
                key_node.start_mark,
            )
        return True

    def flatten_mapping(self, node: Any) -> None:
        if getattr(node, "merge", None) is not None:
            return  # an aliased mapping, flattened when first constructed
        if not any(key_node.tag == _MERGE_TAG for key_node, _value in node.value):
            super().flatten_mapping(node)  # the common case: nothing to merge
            return
        explicit_before = [pair for pair in node.value if pair[0].tag != _MERGE_TAG]
        super().flatten_mapping(node)
        merged = getattr(node, "merge", None)
        if not merged:
            return
        # Explicit keys of a mapping with "<<" are not checked by ruamel: check them.
        seen: dict[Hashable, Any] = {}
        for key_node, _value in explicit_before:
            if isinstance(key_node, ScalarNode):
                marker = (key_node.tag, key_node.value)
                if marker in seen:
                    raise DuplicateKeyError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {_show_key(key_node.value)}",
                        key_node.start_mark,
                    )
                seen[marker] = key_node
        # Keep only the winning (last) entry of each scalar key, so that chains of
        # "<<: [*a, *a]" stay as small as their distinct keys.
        last: dict[Hashable, int] = {}
        for index, (key_node, _value) in enumerate(merged):
            if isinstance(key_node, ScalarNode):
                last[(key_node.tag, key_node.value)] = index
        deduplicated = [
            pair
            for index, pair in enumerate(merged)
            if not isinstance(pair[0], ScalarNode) or last[(pair[0].tag, pair[0].value)] == index
        ]
        node.merge = deduplicated
        node.value = deduplicated + explicit_before


_SafeConstructor.add_constructor("tag:yaml.org,2002:str", _SafeConstructor.construct_yaml_str)


def _show_key(key: Any) -> str:
    text = str(key)
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _CResolver(VersionedResolver):
    """ruamel's resolver with its table of implicit tags looked up once, for the C parser.

    ruamel looks it up for every scalar through ``processing_version``, which tries three
    attributes the C loader lacks (two caught AttributeErrors per node: half a large load).
    libyaml reads ``%YAML`` itself, unseen by ruamel: here the version is always the
    loader's own (1.2), so one lookup is the same for every node of every document."""

    _table: Any = None

    @property
    def versioned_resolver(self) -> Any:
        if self._table is None:
            self._table = super().versioned_resolver
        return self._table


def _yaml(*, pure: bool = False) -> YAML:
    yaml = YAML(typ="safe", pure=pure)
    if not pure:
        yaml.Resolver = _CResolver
    yaml.Constructor = _SafeConstructor
    yaml.allow_duplicate_keys = False
    return yaml


def load(text: str, label: str) -> Any:
    """The single document of ``text`` as plain data; ManifestError (located) if not YAML.

    ``label`` is the file name shown in messages.
    """
    _check_guards(text, label)
    try:
        documents = load_documents(text)
    except MarkedYAMLError as error:
        raise ManifestError([_problem_from(error, text, label)]) from None
    except (RecursionError, MemoryError):
        raise ManifestError([Problem(label, 0, 0, _too_deep())]) from None
    except (YAMLError, ValueError, TypeError, OverflowError) as error:
        # Bad scalars under explicit standard tags (``!!int x``) fail in the constructor
        # with a plain ValueError that carries no position.
        raise ManifestError(
            [Problem(label, 0, 0, f"invalid YAML: {_plain(type(error).__name__, error)}")]
        ) from None
    if not documents:
        raise ManifestError([Problem(label, 0, 0, "the manifest is empty")])
    if len(documents) > 1:
        line, column = _second_document(text)
        raise ManifestError(
            [
                Problem(
                    label,
                    line,
                    column,
                    "the manifest must be a single YAML document, found a second one",
                )
            ]
        )
    return documents[0]


def _documents(text: str, limit: int, *, pure: bool) -> list[Any]:
    documents: list[Any] = []
    with _quiet():
        for document in _yaml(pure=pure).load_all(text):
            documents.append(document)
            if len(documents) >= limit:
                break
    return documents


@contextmanager
def _quiet() -> Iterator[None]:
    """No ruamel warning on stderr: the pure composer warns of a redefined anchor (valid
    YAML 1.2) with a quote of the file, which may hold a secret."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        yield


def load_documents(text: str, limit: int = 2) -> list[Any]:
    """The first ``limit`` documents of ``text`` as plain data; ruamel's errors as raised.

    The C parser first; when it refuses the text (a scanner or parser error, not a
    constructor's), ruamel's pure parser decides: libyaml refuses valid YAML 1.2.
    Refused by both, the error farther into the text is raised, libyaml's at a tie.
    """
    try:
        return _documents(text, limit, pure=False)
    except ConstructorError:
        raise  # the same constructor runs in both: the pure parser would say the same
    except MarkedYAMLError as refused:
        try:
            return _documents(text, limit, pure=True)
        except MarkedYAMLError as also:
            # Refused by both: the error farther into the text is the real one (libyaml
            # stopped early at what the spec allows); at the same place, libyaml's words,
            # which name the problem more plainly.
            raise (also if _index(also) > _index(refused) else refused) from None
        except AssertionError:  # ruamel's pure parser asserts on "%YAML 1.3"
            raise refused from None


def _index(error: MarkedYAMLError) -> int:
    mark = error.problem_mark or error.context_mark
    return mark.index if mark is not None else -1


def _plain(kind: str, error: BaseException) -> str:
    if isinstance(error, ValueError):
        return "a value does not match its tag"
    return kind


def _too_deep() -> str:
    return f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)"


def _check_guards(text: str, label: str) -> None:
    if len(text) > MAX_BYTES:
        raise ManifestError(
            [Problem(label, 0, 0, f"the manifest is larger than {MAX_BYTES // 2**20} MiB")]
        )
    if nesting_bound(text) > MAX_DEPTH:
        raise ManifestError([Problem(label, 0, 0, _too_deep())])


_BRACKETS = re.compile(r"[\[\]{}]")
_BLOCK_INDICATORS = re.compile(r"(?:[-?:][ \t]+)*")


def nesting_bound(text: str) -> int:
    """An upper bound (roughly) of the nesting depth of ``text``, computed cheaply.

    Flow nesting is at most the running balance of brackets; block nesting needs
    one column of indentation or one compact indicator (``- - x``) per level, so
    only lines longer than the limit can reach it.
    """
    deepest = 0
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = 0
        for match in _BRACKETS.finditer(text):
            if match.group() in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif depth:
                depth -= 1
    if len(text) > MAX_DEPTH:
        for line in text.splitlines():
            if len(line) <= MAX_DEPTH:
                continue
            stripped = line.lstrip(" ")
            indent = len(line) - len(stripped)
            indicators = _BLOCK_INDICATORS.match(stripped)
            compact = indicators.group().count(" ") if indicators else 0
            deepest = max(deepest, indent + compact)
    return deepest


def _problem_from(error: MarkedYAMLError, text: str, label: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else 0
    column = mark.column + 1 if mark is not None else 0
    return Problem(label, line, column, _yaml_message(error, text, mark))


_TAG_PROBLEM = re.compile(r"could not determine a constructor for the tag '(.*)'")


def _yaml_message(error: MarkedYAMLError, text: str, mark: Any) -> str:
    problem = str(error.problem or error.context or "invalid YAML").strip()
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return "tab character in indentation or before a value: YAML indents with spaces"
    tag = _TAG_PROBLEM.match(problem)
    if tag:
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"unsupported YAML tag '{shown}' (only the standard safe tags are allowed)"
    if isinstance(error, DuplicateKeyError):
        return problem
    if isinstance(error, ConstructorError):
        return f"invalid YAML: {problem}"
    context = str(error.context).strip() if error.context else ""
    if context and error.context_mark is not None and error.context_mark is not mark:
        started = error.context_mark
        return (
            f"invalid YAML: {problem} ({context} at line {started.line + 1},"
            f" column {started.column + 1})"
        )
    return f"invalid YAML: {problem}"


def _second_document(text: str) -> tuple[int, int]:
    for pure in (False, True):  # the pure parser when libyaml refuses the text
        try:
            with _quiet():
                for index, node in enumerate(_yaml(pure=pure).compose_all(text)):
                    if index == 1:
                        return node.start_mark.line + 1, node.start_mark.column + 1
            return 0, 0
        except (YAMLError, AssertionError, RecursionError, MemoryError):
            continue
    return 0, 0


def compose(text: str) -> Node | None:
    """The node tree of ``text`` (only called on the error path); the pure parser
    composes what libyaml refuses, as ``load_documents`` loads it."""
    for pure in (False, True):
        try:
            with _quiet():
                root: Node | None = _yaml(pure=pure).compose(text)
        except (YAMLError, AssertionError, RecursionError, MemoryError):
            continue
        return root
    return None


def locate(root: Node | None, path: DataPath, *, at_key: bool = False) -> tuple[int, int]:
    """The 1-based (line, column) of ``path`` in ``root``, or of its deepest existing part.

    With ``at_key`` the last step's *key* is located rather than its value (an
    unknown key is shown where it is written). (0, 0) when nothing can be found.
    """
    if root is None:
        return 0, 0
    node: Node = root
    for index, step in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, MappingNode):
            entry = _entry(node, step, set())
            if entry is None:
                break
            key_node, value_node = entry
            if last and at_key:
                node = key_node
                break
            node = value_node
        elif isinstance(node, SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                break
            node = node.value[step]
        else:
            break
    return node.start_mark.line + 1, node.start_mark.column + 1


def _entry(node: MappingNode, step: str | int, visiting: set[int]) -> tuple[Node, Node] | None:
    """The (key node, value node) of ``step`` in a mapping, explicit keys before merges."""
    if id(node) in visiting:  # a recursive alias: "&a {<<: *a}"
        return None
    visiting.add(id(node))
    wanted = str(step)
    merges: list[Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merges.append(value_node)
        elif isinstance(key_node, ScalarNode) and key_node.value == wanted:
            return key_node, value_node
    for merged in merges:
        sources = merged.value if isinstance(merged, SequenceNode) else [merged]
        for source in sources:
            if isinstance(source, MappingNode):
                found = _entry(source, step, visiting)
                if found is not None:
                    return found
    return None


def locate_all(
    text: str, wanted: Iterable[tuple[DataPath, bool]]
) -> dict[tuple[DataPath, bool], tuple[int, int]]:
    """Compose ``text`` once and locate every (path, at_key) of ``wanted``."""
    root = compose(text)
    return {item: locate(root, item[0], at_key=item[1]) for item in wanted}
