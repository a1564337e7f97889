"""mvsync installs as a user installs it: build the sdist and the wheel, install the
wheel into a clean virtual environment, run the installed ``mvsync --version``.

No package called mvsync is published, so this is the only install path the docs
give (``pip install "mvsync @ git+https://...@<sha>"`` builds exactly this wheel).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from helpers import REPO_ROOT
from mvsync import __version__

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the folder holding the sdist and the wheel, the build's output)."""
    dist = tmp_path_factory.mktemp("dist")
    done = _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist)
    return dist, done.stdout + done.stderr


def test_the_build_makes_one_sdist_and_one_wheel_of_this_version(
    built: tuple[Path, str],
) -> None:
    dist, _ = built
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"mvsync-{__version__}-py3-none-any.whl", f"mvsync-{__version__}.tar.gz"]


def test_the_build_gives_no_setuptools_deprecation_warning(built: tuple[Path, str]) -> None:
    _, output = built
    assert "deprecated" not in output.lower(), output


def test_the_version_is_read_from_the_package() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["dynamic"] == ["version"]
    assert project["license"] == "MIT"


def test_the_sdist_and_the_wheel_carry_the_license_and_the_typing_marker(
    built: tuple[Path, str],
) -> None:
    dist, _ = built
    with tarfile.open(dist / f"mvsync-{__version__}.tar.gz") as sdist:
        sdist_names = sdist.getnames()
    with zipfile.ZipFile(dist / f"mvsync-{__version__}-py3-none-any.whl") as wheel:
        wheel_names = wheel.namelist()
        metadata = wheel.read(f"mvsync-{__version__}.dist-info/METADATA").decode()
    assert f"mvsync-{__version__}/LICENSE" in sdist_names
    assert "mvsync/py.typed" in wheel_names
    assert any(name.endswith("licenses/LICENSE") for name in wheel_names)
    assert "License-Expression: MIT" in metadata


def test_the_wheel_installed_in_a_clean_venv_runs_mvsync_version(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    dist, _ = built
    env_dir = tmp_path / "clean venv"  # a space in the path, as on some runners
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    wheel = dist / f"mvsync-{__version__}-py3-none-any.whl"
    _run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    done = _run(env_dir / "bin" / "mvsync", "--version", cwd=tmp_path)
    # A wheel installed from a file records no commit (only a git install does).
    assert done.stdout.strip() == f"mvsync {__version__} (commit unknown)"
    # The installed copy, not this checkout's source tree.
    where = _run(python, "-c", "import mvsync; print(mvsync.__file__)", cwd=tmp_path)
    assert str(env_dir) in where.stdout
