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


# --- mvsync as a real process, with a key sink ------------------------------------------

API_KEY_VARIABLE = "MV_TEST_KEY"
# Held in mvsync's environment by the tests: none of them may reach a sink.
STATE_URL_CANARY = "postgresql://mvsync:pw_STATE_CANARY_51c0@127.0.0.1:9/db"
IDENTITY_CANARY = "AGE-SECRET-KEY-1CANARYCANARYCANARYCANARYCANARYCANARYCANARYCANARYCANA"


def sink_manifest(
    folder: Path,
    url: str,
    script: Path,
    *,
    count: int = 2,
    args: str = '"MINIVOICE_KEY_{slug}", --env, "{environment}", "{id}"',
    recipients: list[str] | None = None,
    state_url: bool = False,
) -> Path:
    """A manifest whose environment ``dev`` hands each key to ``script`` (``SINK_MODE``
    and ``GH_TOKEN`` listed in ``key_sink_env``)."""
    folder.mkdir(parents=True, exist_ok=True)
    apps = "".join(
        f"  - name: App {n}\n    answer_url: https://example.com/{n}/answer\n" for n in range(count)
    )
    top = f"recipients: [{', '.join(recipients)}]\n" if recipients else ""
    state = "    state_url: ${MVSYNC_STATE_URL}\n" if state_url else ""
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        f"version: 1\n{top}environments:\n"
        f"  dev:\n    api_url: {url}\n    api_key_env: {API_KEY_VARIABLE}\n{state}"
        f"    key_sink: [{json.dumps(str(script))}, {args}]\n"
        "    key_sink_env: [SINK_MODE, GH_TOKEN]\n"
        "defaults:\n"
        "  webhook_url: https://example.com/hooks\n"
        "  webhook_secret: ${MV_WEBHOOK_SECRET}\n"
        f"applications:\n{apps}"
    )
    return manifest
