"""No pydantic plugin installed beside mvsync is handed what mvsync validates.

A plugin (a tracer, a logger) registered under the ``pydantic`` entry-point group would be
given every value a model validates: API keys, webhook secrets. The console script turns
plugins off before its first model is built. Here a real plugin is installed (a
``.dist-info`` on ``PYTHONPATH``) that writes a file when pydantic loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = """
import os
from pathlib import Path
Path(os.environ["PLUGIN_MARK"]).write_text("loaded")


class Plugin:
    def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind,
                             config, plugin_settings):
        Path(os.environ["PLUGIN_MARK"]).write_text("validated")
        return None, None, None


plugin = Plugin()
"""


def install_plugin(site: Path) -> None:
    (site / "snoop_plugin.py").write_text(PLUGIN)
    info = site / "snoop_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snoop-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pydantic]\nsnoop = snoop_plugin:plugin\n")


def run(code: str, site: Path, mark: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site), "PLUGIN_MARK": str(mark)}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def test_the_plugin_is_loaded_by_pydantic_elsewhere(tmp_path: Path) -> None:
    # The test can fail: without mvsync, pydantic loads the plugin and hands it a model.
    install_plugin(tmp_path)
    mark = tmp_path / "mark"
    run("import pydantic\nclass M(pydantic.BaseModel):\n    x: int\n", tmp_path, mark)
    assert mark.read_text() == "validated"


def test_mvsync_hands_nothing_to_a_pydantic_plugin(tmp_path: Path) -> None:
    install_plugin(tmp_path)
    mark = tmp_path / "mark"
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        "version: 1\nenvironments:\n  dev: {}\napplications:\n"
        "  - name: Support IVR\n    answer_url: https://ivr.example.com/answer\n"
    )
    run(f"from mvsync.cli import main\nmain(['validate', '-f', {str(manifest)!r}])", tmp_path, mark)
    assert not mark.exists()
