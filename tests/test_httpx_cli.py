"""The ``mvsync`` command does not import httpx's command line client.

httpx imports its own CLI (``httpx._main``: pygments, and rich when installed) whenever
click is importable, which it always is beside mvsync. Here a stand-in ``pygments`` on
``PYTHONPATH`` writes a file when it is imported: a bare ``import httpx`` writes it, and
``mvsync plan`` against the emulator, which lists over httpx, does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mvsync.emulator import Emulator
from test_cli_apply import cli_env, write_manifest

STAND_IN = """
import os
from pathlib import Path
Path(os.environ["PYGMENTS_MARK"]).write_text("imported")
"""


def run(args: list[str], site: Path, mark: Path) -> subprocess.CompletedProcess[str]:
    (site / "pygments").mkdir(exist_ok=True)
    (site / "pygments" / "__init__.py").write_text(STAND_IN)
    env = {**cli_env(), "PYTHONPATH": str(site), "PYGMENTS_MARK": str(mark)}
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False
    )


def test_a_bare_import_of_httpx_imports_its_command_line_client(tmp_path: Path) -> None:
    # The test can fail: outside mvsync, httpx reaches for pygments.
    mark = tmp_path / "mark"
    done = run(["-c", "import httpx"], tmp_path, mark)
    assert done.returncode == 0, done.stderr
    assert mark.read_text() == "imported"


def test_mvsync_plan_does_not(emulator: Emulator, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, emulator.url)
    mark = tmp_path / "mark"
    done = run(["-m", "mvsync", "-f", str(manifest), "plan", "--env", "dev"], tmp_path, mark)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 to create" in done.stdout, done.stdout
    assert emulator.request_count("GET") == 1
    assert not os.path.exists(mark)
