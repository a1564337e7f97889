"""The live apply line: the applier's ``Reporter`` for a terminal or a CI log.

On a terminal (stderr a tty) one line redrawn in place, ``[done/total] rate/s, time left``
(``rate-limited, 78/s`` instead of the rate while the API's rate limit holds requests
back: ``rate_status`` tells); otherwise one plain line per event. Every name, id and
message is escaped before printing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from mvsync.planner import EnvironmentPlan, Plan
from mvsync.render import id_of, name_of, render_text, text_of, use_color

if TYPE_CHECKING:  # plan imports this module for print_retry: not the applier's modules
    from mvsync.api.ratelimit import LimiterStatus


def print_retry(text: str, err: TextIO | None = None) -> None:
    """A retry as it is decided, one line on stderr (``RetryPolicy.on_retry``)."""
    stream = err if err is not None else sys.stderr
    stream.write(f"mvsync: {text_of(text)}\n")
    stream.flush()


class CliReporter:
    """Renders the applier's progress: a live line on a terminal, plain lines otherwise."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        clock: Callable[[], float] = time.monotonic,
        rate_status: Callable[[], LimiterStatus] | None = None,
    ):
        self.out = out
        self.err = err
        self.live = err.isatty()
        self.started_creating = False
        self._clock = clock
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._last_draw = 0.0
        self.rate_status = rate_status
        self._err_lock = threading.Lock()  # retries are told from the create threads

    def plan_ready(self, plan: EnvironmentPlan) -> None:
        render_text(Plan((plan,)), self.out, color=use_color(self.out))
        self.out.flush()

    def not_captured(self, name: str, app_id: str) -> None:
        from mvsync.apply.settings import NOT_CAPTURED_ADVICE  # apply's: not plan's import

        self._line(f"! {name_of(name)} ({id_of(app_id)}): {NOT_CAPTURED_ADVICE}")
        self._tick()

    def creating(self, total: int) -> None:
        self.started_creating = True
        self._total = total
        self._started = self._clock()
        self._line(f"Creating {total} application{'s' if total != 1 else ''}...")

    def created(self, name: str, app_id: str) -> None:
        if not self.live:
            self._line(f"+ created {name_of(name)} ({id_of(app_id)})")
        self._tick()

    def failed(self, name: str, message: str) -> None:
        self._line(f"x {name_of(name)}: {text_of(message)}")
        self._tick()

    def note(self, message: str) -> None:
        self._line(text_of(message))

    def retrying(self, message: str) -> None:
        """A retry, on stderr as it happens (a CI log shows why it waits)."""
        with self._err_lock:
            if self.live and self._total:
                self.err.write("\r\x1b[K")
            print_retry(message, self.err)
        if self.live and self._total:
            self._draw(force=True)

    def finish(self) -> None:
        if self.live and self._total:
            self._draw(force=True)
            self.err.write("\n")
            self.err.flush()

    def _line(self, text: str) -> None:
        if self.live and self._total:
            self.err.write("\r\x1b[K")
            self.err.flush()
        self.out.write(text + "\n")
        self.out.flush()
        if self.live and self._total:
            self._draw(force=True)

    def _tick(self) -> None:
        self._done += 1
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.live or not self._total:
            return
        now = self._clock()
        if not force and now - self._last_draw < 0.1 and self._done < self._total:
            return
        self._last_draw = now
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        if rate > 0:
            left = f"about {(self._total - self._done) / rate:.0f}s left"
        else:
            left = "estimating time left"
        speed = f"{rate:.1f}/s"
        status = self.rate_status() if self.rate_status is not None else None
        if status is not None and status.limited:
            allowed = f"{status.rate:.0f}/s" if status.rate is not None else "paused"
            speed = f"rate-limited, {allowed}"
        with self._err_lock:
            self.err.write(f"\r\x1b[K[{self._done}/{self._total}] {speed}, {left}")
            self.err.flush()
