"""The pin a user can rely on: requirements/mvsync.lock.txt.

The first tests read files only: the lock names every dependency pyproject.toml
declares, at a version its range allows, and nothing declared is missing (a dependency
added to pyproject.toml without ``make lock`` fails here). The rest install the way the
guide and the CI recipes do: the lock with ``--require-hashes --no-deps`` into a fresh
venv, then the wheel ``python -m build`` makes with ``--no-deps``; they need the package
index (CI has it) and skip only when pip says the index cannot be reached.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import REPO_ROOT
from mvsync import __version__

LOCK = REPO_ROOT / "requirements" / "mvsync.lock.txt"
PYPROJECT = REPO_ROOT / "pyproject.toml"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;\s*(.+?))?\s*\\?$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}\s*\\?$")
# What pip prints when it cannot reach the index at all (not a bad hash, not a conflict).
_UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
)


@dataclass
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def _lock() -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for raw in LOCK.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not raw.startswith((" ", "#")):
            match = _PIN.match(line)
            assert match, f"not a pinned requirement: {raw!r}"
            current = Pin(canonicalize_name(match[1]), match[2], match[3])
            pins[current.name] = current
        elif current is not None and line.startswith("--hash="):
            assert _HASH.match(line), f"{current.name}: not a sha256 hash: {line!r}"
            current.hashes.append(line)
        elif current is not None and line.startswith("#"):
            via = line.lstrip("#").strip().removeprefix("via").strip()
            if via:
                current.via.append(via)
    return pins


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def test_every_locked_package_has_a_version_and_a_sha256() -> None:
    pins = _lock()
    assert pins
    assert [name for name, pin in pins.items() if not pin.hashes] == []


def test_the_lock_holds_exactly_the_dependencies_pyproject_declares() -> None:
    pins = _lock()
    declared = _declared()
    direct = {name for name, pin in pins.items() if "mvsync (pyproject.toml)" in pin.via}
    assert direct == set(declared), "run `make lock` after changing pyproject's dependencies"
    for name, requirement in declared.items():
        pin = pins[name]
        assert requirement.specifier.contains(pin.version, prereleases=True), (name, pin.version)
        if requirement.marker is not None:
            assert pin.marker is not None, name
            assert str(Marker(pin.marker)) == str(requirement.marker), name
    # Every other pin is there for one of these: nothing stray.
    assert all(pin.via for pin in pins.values())


def test_the_lock_is_for_every_supported_python() -> None:
    header = LOCK.read_text("utf-8").splitlines()[:3]
    assert "#    make lock" in header
    # A lock for one interpreter would carry python_version markers of its own.
    markers = " ".join(pin.marker or "" for pin in _lock().values())
    assert "python_full_version" not in markers and "python_version" not in markers


def _pip(python: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="session")
def locked_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the lock (hash-checked) and this checkout's wheel (--no-deps)."""
    root = tmp_path_factory.mktemp("locked")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    done = _pip(python, "install", "--quiet", "--require-hashes", "--no-deps", "-r", LOCK, cwd=root)
    if done.returncode != 0 and any(s in done.stderr for s in _UNREACHABLE):
        pytest.skip("the package index is unreachable from here: " + done.stderr[-300:])
    _ok(done)
    dist = root / "dist"
    _ok(
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO_ROOT)],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    )
    wheel = dist / f"mvsync-{__version__}-py3-none-any.whl"
    _ok(_pip(python, "install", "--quiet", "--no-deps", wheel, cwd=root))
    return env_dir


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_check_finds_every_dependency_the_wheel_declares(locked_venv: Path) -> None:
    done = _ok(_pip(locked_venv / "bin" / "python", "check", cwd=locked_venv))
    assert "No broken requirements found" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_locked_install_runs_version_and_validate(locked_venv: Path, tmp_path: Path) -> None:
    mvsync = locked_venv / "bin" / "mvsync"
    done = _ok(subprocess.run([mvsync, "--version"], cwd=tmp_path, capture_output=True, text=True))
    # Installed from a wheel file: nothing records the commit.
    assert done.stdout == f"mvsync {__version__} (commit unknown)\n"
    manifest = REPO_ROOT / "examples" / "minivoice.yaml"
    done = subprocess.run(
        [mvsync, "-f", manifest, "validate"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The installed copy ran, not this checkout's source tree.
    where = subprocess.run(
        [locked_venv / "bin" / "python", "-c", "import mvsync, pydantic; print(mvsync.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(locked_venv) in where.stdout
