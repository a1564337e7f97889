"""Bring the mvsync under test to the state ``pip install`` leaves it in: byte-compiled.

``pip install mvsync`` writes every module's ``.pyc``, and so it does for httpx, ruamel,
click and pydantic, which the floors import. A source checkout installed with
``pip install -e`` has none until an interpreter writes them, and none ever when
``PYTHONDONTWRITEBYTECODE`` is set (as in many CI images): then every ``mvsync`` started
compiles its ~60 modules from source, ~0.1 s that no installed copy pays and the floors
never pay. Each benchmark calls ``byte_compile_mvsync()`` once before it times anything.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import mvsync


def byte_compile_mvsync() -> None:
    """Write the ``.pyc`` of every mvsync module that lacks a current one, and say so."""
    package = Path(mvsync.__file__).resolve().parent
    if not compileall.compile_dir(str(package), quiet=1):
        raise SystemExit(f"cannot byte-compile {package}")
    print(f"mvsync byte-compiled as an installed copy is ({package})", flush=True)
