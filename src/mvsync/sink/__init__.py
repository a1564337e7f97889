"""The sink step: each new key handed to the program where it is used (SPEC 5.5).

``environment`` (what the sink sees, masking) ← ``run`` (``SinkRunner``: find the
program, run it once per key, bounded). Imports nothing of apply or store: apply calls
it once a key is stored.
"""

from __future__ import annotations

from mvsync.sink.run import (
    DEFAULT_TIMEOUT,
    TIMEOUT_VARIABLE,
    Delivery,
    SinkError,
    SinkRunner,
    runner_for,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "TIMEOUT_VARIABLE",
    "Delivery",
    "SinkError",
    "SinkRunner",
    "runner_for",
]
