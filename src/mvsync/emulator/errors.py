"""The one error the emulator raises to its caller (the CLI or a test)."""

from __future__ import annotations

from mvsync.errors import MvsyncError


class EmulatorError(MvsyncError):
    """The emulator cannot start, load its state file, or accept a control value."""
