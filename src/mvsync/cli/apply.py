"""``mvsync apply`` (owner: issue 5): the thin shell around ``mvsync.apply.run``.

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
(default 30); ``MVSYNC_LAG_WINDOW`` how long a create in doubt waits for the list before it
may be sent again (default: the confirm deadline); ``MVSYNC_STORE_RETRY`` how long a failed
write of the journal or secrets file is retried (default 5); ``MVSYNC_UNKNOWN_WAIT`` the
pause before listing after a POST whose
outcome is unknown (default 0.5); ``MVSYNC_SINK_TIMEOUT`` each run of the key sink (default
30).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from mvsync.cli.options import (
    API_DEADLINE_VARIABLE,
    env_option,
    env_seconds,
    key_sink_of,
    lock_timeout_option,
    manifest_option,
    manifest_path,
)
from mvsync.cli.pipe import CUT_NOTE, guarded_stdout
from mvsync.cli.status import EXIT_INTERRUPTED
from mvsync.errors import AbortedError

if TYPE_CHECKING:
    from mvsync.cli.progress import CliReporter


@click.command()
@manifest_option
@env_option("The environment to apply.")
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Create without asking. Required without a terminal (CI, cron, ssh, < /dev/null).",
)
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
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Exit 0 when every create was done and every key stored, even if drift or "
    "ambiguous names remain (they are still reported).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=64),
    default=4,
    show_default=True,
    help="Creates in flight at once.",
)
@lock_timeout_option
@click.pass_context
def apply(
    ctx: click.Context,
    env: str,
    yes: bool,
    plan_file: str | None,
    max_creates: int | None,
    allow_drift: bool,
    concurrency: int,
    lock_timeout: float,
) -> int:
    """Create what the manifest wants and the environment lacks, exactly once.

    \b
    On a terminal apply shows the plan and asks; only the answer 'yes', typed
    out, creates ('y' or Enter cancel: exit 1, nothing created). --yes skips the
    question. Without a terminal (CI, cron, ssh host mvsync apply, < /dev/null)
    and without --yes, apply refuses: exit 1, nothing created. In CI pass --yes:
    the merged pull request is the approval. A plan with nothing to create asks
    nothing.

    \b
    Before the question, apply checks all it can without creating: the secrets
    file, the environment's lock, every variable the creates send (webhook
    secrets), and the key sink's program on PATH. No answer is asked for a run
    that would fail anyway.
    """
    from mvsync.api.client import MiniVoiceClient, RetryPolicy
    from mvsync.apply.pace import remembered_pace
    from mvsync.apply.run import apply_environment
    from mvsync.apply.settings import ApplySettings
    from mvsync.cli.confirm import check_before_asking, make_confirm
    from mvsync.cli.progress import CliReporter
    from mvsync.manifest import expand_secret, load_manifest, read_api_key, resolve_environment
    from mvsync.planfile import read_plan
    from mvsync.render import render_apply_result, render_last_resort

    lookup = os.environ.get
    path = manifest_path(ctx)
    manifest = load_manifest(path)
    desired = resolve_environment(manifest, env, lookup)
    saved = read_plan(Path(plan_file)).environment(env) if plan_file else None
    api_key = read_api_key(desired, lookup)
    sink = key_sink_of(manifest, desired, path)  # its program found before anything is asked
    settings = ApplySettings(
        concurrency=concurrency,
        max_creates=max_creates,
        lock_timeout=lock_timeout,
        command=f"mvsync apply --env {env}",
        unknown_wait=env_seconds("MVSYNC_UNKNOWN_WAIT", 0.5),
        confirm_deadline=env_seconds("MVSYNC_CONFIRM_DEADLINE", 30.0),
        lag_window=env_seconds("MVSYNC_LAG_WINDOW", -1.0)
        if "MVSYNC_LAG_WINDOW" in os.environ
        else None,
        store_retry=env_seconds("MVSYNC_STORE_RETRY", 5.0),
        sink=sink,
        # A key a secrets file holds is vouched for by MiniVoice before the sink gets it.
        client_for=lambda key: MiniVoiceClient(desired.api_url, key, timeout=timeout, retry=retry),
    )
    timeout = env_seconds("MVSYNC_HTTP_TIMEOUT", 10.0, positive=True)

    # A closed stdout (``| head``) never changes what apply does nor its status (cli/pipe.py).
    out, guard = guarded_stdout()
    reporter = CliReporter(out, sys.stderr)
    retry = RetryPolicy(
        deadline=env_seconds(API_DEADLINE_VARIABLE, 60.0, positive=True),
        on_retry=reporter.retrying,
    )
    stop = threading.Event()
    check_before_asking(sink)
    confirm = make_confirm(yes=yes, terminal=sys.stdin.isatty())

    with (
        MiniVoiceClient(desired.api_url, api_key, timeout=timeout, retry=retry) as client,
        remembered_pace(desired, client),  # start from the rate the last run learned
        _signals(stop, reporter),
    ):
        reporter.rate_status = client.rate_status
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
    render_last_resort(result, sys.stderr)
    # Without a terminal each create had its line as it happened: the summary only counts.
    render_apply_result(result, out, allow_drift=allow_drift, list_created=reporter.live)
    out.flush()
    if guard.closed_early:
        sys.stderr.write(CUT_NOTE)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if (result.creates_done if allow_drift else result.ok) else 1


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
