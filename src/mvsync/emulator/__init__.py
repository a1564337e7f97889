"""A local MiniVoice Applications API for trying mvsync and for tests (SPEC section 7).

Nothing in mvsync imports this package except ``mvsync.cli.emulator``, lazily.

    from mvsync.emulator import Emulator, Fault

    with Emulator(["my-key"], rate_limit=(100, 10)) as emulator:
        emulator.add_fault(Fault("429", method="POST", retry_after="1"))
        ...  # talk to emulator.url
"""

from __future__ import annotations

from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.faults import FAULT_KINDS, Fault
from mvsync.emulator.ratelimit import RateLimit
from mvsync.emulator.server import Emulator

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorError", "Fault", "RateLimit"]
