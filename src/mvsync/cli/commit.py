"""Which commit a plan is made at, for the pull-request comment to say.

``MVSYNC_COMMIT`` when set (the CI recipe gives the pull request's head commit: the
``GITHUB_SHA`` of a ``pull_request`` run is a merge commit no reviewer has seen), else
``GITHUB_SHA``, else ``git rev-parse HEAD`` in the manifest's folder, else none. Only a
hexadecimal commit id is kept: the value is shown in the comment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

COMMIT_VARIABLE = "MVSYNC_COMMIT"
_COMMIT = re.compile(r"[0-9a-f]{7,64}")


def current_commit(manifest: Path) -> str | None:
    for name in (COMMIT_VARIABLE, "GITHUB_SHA"):
        value = os.environ.get(name, "").strip().lower()
        if value:
            return value if _COMMIT.fullmatch(value) else None
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=manifest.resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            stdin=subprocess.DEVNULL,
            # Not this process's environment: it holds API keys git has no use for.
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())},
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no commit to name: the comment says when, not where
    value = done.stdout.strip()
    return value if done.returncode == 0 and _COMMIT.fullmatch(value) else None
