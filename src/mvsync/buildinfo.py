"""Which commit this mvsync was built from, for ``mvsync --version``.

Read from files only (no git process, no importlib.metadata), so --version stays quick:

- installed by pip from a git URL (``mvsync @ git+https://...@<sha>``): pip records the
  commit in the dist-info's direct_url.json (PEP 610, ``vcs_info.commit_id``);
- an editable install or a source checkout: the HEAD of the git checkout the package
  sits in (a worktree's ``.git`` file and packed refs are followed);
- anything else (a wheel from an index, a copied tree): unknown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mvsync import __version__

_SHA = re.compile(r"[0-9a-f]{40}")
_PACKAGE = Path(__file__).resolve().parent


def version_line() -> str:
    """``mvsync 0.3.0 (commit abc1234)``, or ``(commit unknown)``."""
    commit = build_commit()
    return f"mvsync {__version__} (commit {commit[:7] if commit else 'unknown'})"


def build_commit() -> str | None:
    """The full commit id this package was built from, or None when nothing records it."""
    return _from_direct_url() or _from_checkout()


def _from_direct_url() -> str | None:
    for dist in _PACKAGE.parent.glob("mvsync-*.dist-info"):
        try:
            data = json.loads((dist / "direct_url.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        commit = data.get("vcs_info", {}).get("commit_id") if isinstance(data, dict) else None
        if isinstance(commit, str) and _SHA.fullmatch(commit):
            return commit
    return None


def _from_checkout() -> str | None:
    # src/mvsync -> src -> the checkout's root
    dot_git = _PACKAGE.parent.parent / ".git"
    try:
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return None
            git_dir = (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()
        else:
            git_dir = dot_git
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if _SHA.fullmatch(head):
        return head
    if not head.startswith("ref: "):
        return None
    return _resolve_ref(git_dir, head.removeprefix("ref: ").strip())


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    # A linked worktree names the common folder (its refs, packed-refs) in commondir.
    common_name = _read(git_dir / "commondir")
    common = (git_dir / common_name).resolve() if common_name else git_dir
    for base in dict.fromkeys((git_dir, common)):
        value = _read(base / ref)
        if value and _SHA.fullmatch(value):
            return value
    for line in (_read(common / "packed-refs") or "").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _SHA.fullmatch(sha):
            return sha
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
