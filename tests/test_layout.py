"""The shape of the package: no import cycle, the core apart from cli/ and emulator/,
only apply/ touching store/, every module importable alone, none over 400 lines.

Imports are read from the AST, function-level and ``TYPE_CHECKING`` ones included: a
lazy import hides a cycle from Python, not from this test.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "mvsync"
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, source: str, modules: set[str]) -> set[str]:
    """Every mvsync module ``source`` imports, anywhere in the file."""
    found: set[str] = set()
    package = name if MODULES.get(name, Path()).name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub when there is one (its
            # package is imported first in any case); ``from pkg import name``, pkg itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    modules = set(sources)
    return {name: imports_of(name, text, modules) for name, text in sources.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def the_graph() -> dict[str, set[str]]:
    return import_graph({name: path.read_text() for name, path in MODULES.items()})


def test_no_import_cycle_anywhere() -> None:
    assert find_cycle(the_graph()) is None


def test_the_cycle_finder_sees_a_lazy_cycle() -> None:
    # The check itself can fail: a cycle hidden in a function body and under TYPE_CHECKING.
    sources = {
        "mvsync.a": "def f():\n    from mvsync.b import g\n",
        "mvsync.b": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mvsync import a\n"
        ),
    }
    assert find_cycle(import_graph(sources)) == ["mvsync.a", "mvsync.b", "mvsync.a"]


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_core_never_imports_the_cli_or_the_emulator() -> None:
    for name, targets in the_graph().items():
        if _is_in(name, "mvsync.cli") or _is_in(name, "mvsync.emulator"):
            continue
        if name == "mvsync.__main__":  # ``python -m mvsync``: the CLI's entry point
            continue
        bad = {t for t in targets if _is_in(t, "mvsync.cli") or _is_in(t, "mvsync.emulator")}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_the_emulator_imports_nothing_of_the_core_but_errors_and_files() -> None:
    # A fake must not share the client's assumptions: only the error base class and the
    # bounded file reader (standard library only) are shared.
    for name, targets in the_graph().items():
        if _is_in(name, "mvsync.emulator"):
            outside = {t for t in targets if not _is_in(t, "mvsync.emulator")}
            assert outside <= {"mvsync.errors", "mvsync.files"}, f"{name} imports {sorted(outside)}"


def test_only_apply_imports_the_store() -> None:
    for name, targets in the_graph().items():
        if _is_in(name, "mvsync.store") or _is_in(name, "mvsync.apply"):
            continue
        bad = {t for t in targets if _is_in(t, "mvsync.store")}
        assert not bad, f"{name} imports {sorted(bad)}: only mvsync.apply uses the store"


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


def test_few_modules_stand_directly_in_the_package() -> None:
    top = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports_alone(name: str) -> None:
    # A fresh interpreter per module (pip-tools' test_circular_imports): an import that
    # only works after another module was imported first fails here.
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
