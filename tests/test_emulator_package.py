"""The emulator package's shape: imports run one way, no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "mvsync" / "emulator"
MAX_LINES = 400


def module_name(path: Path) -> str:
    return "mvsync.emulator" if path.name == "__init__.py" else f"mvsync.emulator.{path.stem}"


def emulator_imports(path: Path) -> set[str]:
    """Every mvsync.emulator module ``path`` imports, at any level (TYPE_CHECKING included)."""
    modules = {module_name(p) for p in PACKAGE.glob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in modules)
    return found - {module_name(path)}


def test_no_import_cycle_inside_the_emulator_package() -> None:
    # The package's __init__ only re-exports: leave it out, as every submodule import
    # of "mvsync.emulator" would otherwise look like an edge back to it.
    graph = {
        module_name(path): emulator_imports(path) - {"mvsync.emulator"}
        for path in PACKAGE.glob("*.py")
        if path.name != "__init__.py"
    }
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, "import cycle: " + " -> ".join((*trail, module))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    assert "mvsync.emulator.server" not in graph["mvsync.emulator.controls"]
    assert "mvsync.emulator.server" not in graph["mvsync.emulator.httpd"]


def test_the_submodules_import_the_package_only_by_its_modules() -> None:
    # "from mvsync.emulator import api" is fine; importing a name __init__ re-exports
    # (Emulator, Fault) from inside the package would run through __init__ and back.
    reexported = {"Emulator", "Fault", "EmulatorError", "FAULT_KINDS", "RateLimit"}
    for path in PACKAGE.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "mvsync.emulator":
                assert not {alias.name for alias in node.names} & reexported, path.name


def test_no_emulator_module_is_over_400_lines() -> None:
    lengths = {
        path.name: len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.glob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
