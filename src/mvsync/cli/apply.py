"""``mvsync apply`` (owner: issue 5): the thin shell around ``mvsync.applier``.

It reads the manifest and the environment's API key, shows the plan, asks on a
terminal, installs the signal handlers, runs ``apply_environment`` and renders
its progress and result. It never prints a key.

Signals: before the first create, Ctrl-C/SIGTERM stops the run at once (nothing
was created). Once creates have started, the first one sets the stop event: no new
create starts, those in flight finish and their keys are stored, exit 130. A
second one exits at once (``os._exit(130)``): every key received is already in the
fsynced journal, and the next apply folds it.

Variables (seconds), for CI and tests: ``MVSYNC_API_DEADLINE`` bounds each API call
including its retries (default 60); ``MVSYNC_HTTP_TIMEOUT`` one HTTP request (default
10); ``MVSYNC_CONFIRM_DEADLINE`` the listing until new applications are visible
(default 30); ``MVSYNC_UNKNOWN_WAIT`` the pause before listing after a POST whose
outcome is unknown (default 0.5).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import click

from mvsync.cli.options import (
    API_DEADLINE_VARIABLE,
    env_seconds,
    manifest_option,
    manifest_path,
)
from mvsync.errors import AbortedError

if TYPE_CHECKING:
    from mvsync.applier import ApplyResult
    from mvsync.planner import EnvironmentPlan

EXIT_INTERRUPTED = 130


@click.command()
@manifest_option
@click.option("--env", "env", required=True, help="The environment to apply.")
@click.option("--yes", is_flag=True, help="Do not ask before creating.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    help="Apply exactly this saved plan.",
)
@click.option(
    "--max-creates",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse a plan with more creates.",
)
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=4, show_default=True)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for another apply's lock.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    env: str,
    yes: bool,
    plan_file: str | None,
    max_creates: int | None,
    concurrency: int,
    lock_timeout: float,
) -> int:
    """Create what the manifest wants and the environment lacks, exactly once."""
    from mvsync.applier import ApplySettings, apply_environment
    from mvsync.client import MiniVoiceClient, RetryPolicy
    from mvsync.manifest import expand_secret, load_manifest, read_api_key, resolve_environment
    from mvsync.planfile import read_plan

    lookup = os.environ.get
    path = manifest_path(ctx)
    manifest = load_manifest(path)
    desired = resolve_environment(manifest, env, lookup)
    saved = read_plan(Path(plan_file)).environment(env) if plan_file else None
    api_key = read_api_key(desired, lookup)
    settings = ApplySettings(
        concurrency=concurrency,
        max_creates=max_creates,
        lock_timeout=lock_timeout,
        command=f"mvsync apply --env {env}",
        unknown_wait=env_seconds("MVSYNC_UNKNOWN_WAIT", 0.5),
        confirm_deadline=env_seconds("MVSYNC_CONFIRM_DEADLINE", 30.0),
    )
    retry = RetryPolicy(deadline=env_seconds(API_DEADLINE_VARIABLE, 60.0, positive=True))
    timeout = env_seconds("MVSYNC_HTTP_TIMEOUT", 10.0, positive=True)

    out = sys.stdout
    reporter = CliReporter(out, sys.stderr)
    stop = threading.Event()
    ask = not yes and sys.stdin.isatty()

    def confirm(plan: EnvironmentPlan) -> bool:
        if not ask:
            return True
        count = len(plan.creates)
        noun = "application" if count == 1 else "applications"
        return click.confirm(
            f"Create {count} {noun} in environment '{plan.name}'?", default=False, err=True
        )

    with (
        MiniVoiceClient(desired.api_url, api_key, timeout=timeout, retry=retry) as client,
        _signals(stop, reporter),
    ):
        result = apply_environment(
            desired,
            client,
            settings=settings,
            saved=saved,
            confirm=confirm,
            secret_of=lambda ref: expand_secret(ref, lookup),
            reporter=reporter,
            stop=stop,
        )
    reporter.finish()
    render_result(result, out)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.ok else 1


@contextmanager
def _signals(stop: threading.Event, reporter: CliReporter) -> Iterator[None]:
    """SIGINT/SIGTERM: stop at once before creating; then stop starting; twice: exit now."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os.write(2, b"\nmvsync: interrupted again: exiting now\n")
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        if not reporter.started_creating:
            # Nothing was created yet: stop now (click would turn KeyboardInterrupt into exit 1).
            raise AbortedError("interrupted: nothing was created", exit_code=EXIT_INTERRUPTED)
        os.write(
            2,
            b"\nmvsync: stopping: no new create starts; storing the keys of those in flight"
            b" (interrupt again to exit now)\n",
        )

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (CliRunner in a thread, say)
        return
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class CliReporter:
    """Renders the applier's progress: a live line on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO, err: TextIO, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.err = err
        self.live = err.isatty()
        self.started_creating = False
        self._clock = clock
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._last_draw = 0.0

    def plan_ready(self, plan: EnvironmentPlan) -> None:
        from mvsync.planner import Plan
        from mvsync.render import render_text, use_color

        render_text(Plan((plan,)), self.out, color=use_color(self.out))
        self.out.flush()

    def not_captured(self, name: str, app_id: str) -> None:
        from mvsync.applier import NOT_CAPTURED_ADVICE

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
        self.err.write(f"\r\x1b[K[{self._done}/{self._total}] {rate:.1f}/s, {left}")
        self.err.flush()


def text_of(text: str) -> str:
    """Any text from the API or the manifest (an error message, say), safe to print."""
    from mvsync.escape import escape

    return escape(text)


def name_of(name: str) -> str:
    """A name safe to print: quoted, control and bidi characters escaped (no terminal tricks)."""
    return f'"{text_of(name)}"'


def id_of(app_id: str) -> str:
    """An application id as the API gave it, safe to print."""
    return text_of(app_id)


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else name_of(value)


def render_result(result: ApplyResult, out: TextIO) -> None:
    """The final summary: what was done, what is left, and where the keys are."""
    from mvsync.applier import NOT_CAPTURED_ADVICE

    env = result.environment
    lines = [""]
    for change in result.drift:
        fields = ", ".join(
            f"{d.field} remote {_shown(d.remote)}, manifest {_shown(d.desired)}"
            for d in change.drift
        )
        lines.append(
            f"~ {name_of(change.name)} ({id_of(change.id or '')}) drifted: {fields}; the API "
            "cannot update: change it in MiniVoice or in the manifest"
        )
    for change in result.ambiguous:
        lines.append(
            f"! {name_of(change.name)}: {len(change.ids)} applications have this name "
            f"({', '.join(id_of(i) for i in change.ids)}); apply leaves it alone: delete or "
            "rename all but one"
        )
    for name, app_id in result.not_captured:
        lines.append(
            f"environment {text_of(env)}, name {name_of(name)}, id {id_of(app_id)}: "
            f"{NOT_CAPTURED_ADVICE}"
        )
    not_captured_ids = {app_id for _, app_id in result.not_captured}
    for name, app_id in result.unconfirmed:
        key = "key not captured" if app_id in not_captured_ids else "key stored"
        lines.append(
            f"? {name_of(name)} ({id_of(app_id)}) was created ({key}) but is not yet in the list; "
            "run mvsync plan later to check"
        )
    for name, message in result.failed:
        lines.append(f"x {name_of(name)}: {text_of(message)}")
    if result.skipped:
        why = "interrupted" if result.interrupted else "stopped after the error above"
        lines.append(f"- {len(result.skipped)} create(s) not started ({why}); apply again")
    for name, app_id in result.renamed:
        lines.append(
            f"note: the key of {id_of(app_id)} is stored as {name_of(name)}: its name already "
            "had an entry"
        )
    created = len(result.created)
    already = len(result.already_existed)
    verdict = (
        "Interrupted"
        if result.interrupted
        else "Apply complete"
        if result.ok
        else "Apply incomplete"
    )
    lines.append(
        f"{verdict} for environment '{text_of(env)}': {created} created, "
        f"{already} already existed, {len(result.not_captured)} key(s) not captured, "
        f"{len(result.failed)} failed; now {result.unchanged} equal to the manifest, "
        f"{len(result.drift)} drifted, {len(result.ambiguous)} ambiguous."
    )
    lines.append(
        f"Keys are in {text_of(str(result.secrets_path))} (mode 0600; keep it out of git)."
    )
    out.write("\n".join(lines) + "\n")
    out.flush()
