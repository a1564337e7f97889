"""Key sink scripts for the tests, as real executables (shared by the sink tests).

``recording_sink(folder)`` writes, per run, a JSON file ``<folder>/<MVSYNC_APP_SLUG>.json``
with what it got: stdin (exactly), argv, its whole environment and its pid. Its behaviour
is chosen by the variable ``SINK_MODE`` (listed in ``key_sink_env``):

- ``ok`` (default): record, exit 0;
- ``fail``: record, write the key and a message to stderr, exit 3;
- ``hang``: record, write ``<folder>/<slug>.pid``, sleep 600 s;
- ``hang-unrecorded``: as ``hang`` but record nothing (a sink killed before its store
  took the key).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_SCRIPT = """#!{python}
import json, os, sys, time
folder = {folder!r}
key = sys.stdin.buffer.read().decode()
mode = os.environ.get("SINK_MODE", "ok")
slug = os.environ.get("MVSYNC_APP_SLUG", "none")
record = {{"stdin": key, "argv": sys.argv, "env": dict(os.environ), "pid": os.getpid()}}
if mode != "hang-unrecorded":
    with open(os.path.join(folder, slug + ".json"), "w") as out:
        json.dump(record, out)
if mode == "fail":
    sys.stderr.write("line one\\nrefused key " + key + " upper " + key.upper() + "\\n")
    sys.stdout.write("stdout holds " + key + "\\n")
    sys.exit(3)
if mode.startswith("hang"):
    with open(os.path.join(folder, slug + ".pid"), "w") as out:
        out.write(str(os.getpid()))
    time.sleep(600)
print("stored " + key)
"""


def recording_sink(folder: Path) -> Path:
    """An executable sink script that records each run in ``folder`` (see module doc)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "record-sink"
    script.write_text(_SCRIPT.format(python=sys.executable, folder=str(folder)))
    script.chmod(0o755)
    return script


def recorded(folder: Path) -> dict[str, dict[str, object]]:
    """Every run recorded in ``folder``, by slug."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
