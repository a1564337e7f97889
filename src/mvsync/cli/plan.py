"""``mvsync plan`` (owner: issue 4).

Loads the manifest, resolves the chosen environments, reads each API key, lists every
environment's applications concurrently (one GET each, a small thread pool), builds the
plan (``mvsync.planner``), optionally saves it (``mvsync.planfile``) and renders it
(``mvsync.render``). In GitHub Actions (``GITHUB_STEP_SUMMARY`` set) the Markdown form is
also appended to the step summary.

``MVSYNC_API_DEADLINE`` (seconds, default 60) bounds each API call including its
retries, so that CI can fail fast when the API is unreachable.
"""

from __future__ import annotations

import atexit
import functools
import gc
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from mvsync.cli.options import (
    API_DEADLINE_VARIABLE,
    env_option,
    env_seconds,
    format_option,
    manifest_option,
    manifest_path,
    out_option,
)
from mvsync.cli.pipe import guarded_stdout
from mvsync.cli.status import EXIT_CHANGES
from mvsync.errors import MvsyncError

if TYPE_CHECKING:
    from mvsync.manifest import Lookup
    from mvsync.model import Account, DesiredEnvironment
    from mvsync.planner import EnvironmentPlan


F = TypeVar("F", bound=Callable[..., int])


def _without_cyclic_gc(command: F) -> F:
    """A 10,000-application plan holds a few hundred thousand small, long-lived objects
    that CPython's cyclic collector would scan again and again (about a tenth of the
    run); this short command makes no garbage cycles worth collecting.

    Nor is any worth collecting when the interpreter exits: its last collections took
    a fifth of a second after a 10,000-application plan, so what is alive then is
    frozen first (``gc.freeze`` at exit) and left to the exit. The command leaves no
    file for a finaliser to flush: its outputs are flushed and closed before it
    returns. A process that runs the command and goes on (tests) is only affected
    when it exits."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        atexit.unregister(gc.freeze)  # once, however often the command runs
        atexit.register(gc.freeze)
        collecting = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return run  # type: ignore[return-value]


@click.command()
@manifest_option
@env_option("Plan this environment (repeatable; default all).", multiple=True)
@format_option
@out_option("Also save the plan (JSON) here.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when any create, drift or ambiguous is present.",
)
@click.pass_context
@_without_cyclic_gc
def plan(
    ctx: click.Context,
    envs: tuple[str, ...],
    output_format: str,
    out_file: str | None,
    detailed_exitcode: bool,
) -> int:
    """Show what differs between the manifest and the live applications.

    Exit status 0 when done, 1 on an error, 2 with --detailed-exitcode when any create,
    drift or ambiguous is present. MVSYNC_API_DEADLINE (seconds, default 60) bounds each
    API call including its retries. Formats: docs/plan-format.md.

    Warns of every webhook-secret variable a create will need that is not set here;
    MVSYNC_APPLY_VARIABLES (names, space separated) lists those set where apply runs.
    The Markdown and the saved plan name the commit planned: MVSYNC_COMMIT, else
    GITHUB_SHA, else the git HEAD of the manifest's folder.
    """
    from datetime import UTC, datetime

    from mvsync.api.listing import list_environments
    from mvsync.cli.commit import current_commit
    from mvsync.cli.progress import print_retry
    from mvsync.manifest import (
        environment_names,
        load_manifest,
        read_api_key,
        resolve_environment,
        unknown_environment,
    )
    from mvsync.model import Account
    from mvsync.planner import Plan, build_plan
    from mvsync.render import RENDERERS, render_markdown
    from mvsync.render.markdown import Provenance

    lookup = os.environ.get
    deadline = env_seconds(API_DEADLINE_VARIABLE, 60.0, positive=True)
    path = manifest_path(ctx)
    manifest = load_manifest(path)
    known = environment_names(manifest)
    chosen = list(dict.fromkeys(envs)) or list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise unknown_environment(unknown[0], list(known))
    desired_envs = [resolve_environment(manifest, name, lookup) for name in chosen]
    # The manifest's models are not needed past here: freed before the list, whose
    # models would otherwise come on top of theirs (the peak of a large plan).
    del manifest
    api_keys: list[str] = []
    missing: list[str] = []
    for desired in desired_envs:  # every missing key at once, before any request
        try:
            api_keys.append(read_api_key(desired, lookup))
        except MvsyncError as error:
            missing.append(str(error))
    if missing:
        raise MvsyncError("\n".join(missing))

    with ExitStack() as stack:
        # Opened before anything is listed or written, written last: an unwritable step
        # summary fails the run before the plan file or stdout hold a plan.
        summary = _open_step_summary(lookup("GITHUB_STEP_SUMMARY", ""), stack)
        remote_lists = list_environments(
            desired_envs, api_keys, deadline=deadline, on_retry=print_retry
        )
        saving = out_file is not None  # only a saved plan needs its inputs' fingerprints
        the_plan = Plan(
            tuple(
                _with_keys(
                    _with_warnings(build_plan(d, r, fingerprints=saving), lookup),
                    d,
                    Account.of(k, r),
                )
                for d, r, k in zip(desired_envs, remote_lists, api_keys, strict=True)
            )
        )
        del remote_lists  # the plan holds none of them: freed before it is rendered

        planned_at = datetime.now(UTC)
        # Named only where it is shown: a saved plan, the Markdown, the step summary.
        # Reading git's HEAD starts a process, which a text or JSON plan need not wait for.
        shown = out_file is not None or output_format == "markdown" or summary is not None
        commit = current_commit(path) if shown else None
        if out_file is not None:
            from mvsync.planfile import write_plan  # its pydantic models only when saving

            write_plan(the_plan, Path(out_file), path, created_at=planned_at, commit=commit)
        about = Provenance(commits=(commit,) if commit else (), planned_at=(planned_at,))
        # A reader that closed the pipe (``| head -1``) changes nothing: the plan file and
        # the step summary are still written, and the status is still 0 or 2 (cli/pipe.py).
        out, _guard = guarded_stdout()
        if output_format == "markdown":
            render_markdown(the_plan, out, about=about)
        else:
            RENDERERS[output_format](the_plan, out)
        out.flush()

        if summary is not None:
            try:
                render_markdown(the_plan, summary, about=about)
                summary.flush()
            except OSError as error:
                raise MvsyncError(
                    f"cannot append to GITHUB_STEP_SUMMARY ({summary.name}): {error.strerror}"
                ) from error

    return EXIT_CHANGES if detailed_exitcode and the_plan.has_changes else 0


def _with_keys(
    env_plan: EnvironmentPlan, desired: DesiredEnvironment, account: Account
) -> EnvironmentPlan:
    """The plan with each application's key status where the ledger can be read (SPEC 4):
    in a shared database, the ledger of ``account``, the one the list was made with.

    No ledger yet: the plan as it is. A ledger that cannot be read (malformed, unsafe
    mode) does not stop the plan (apply will refuse it): the plan says so in a warning.
    """
    if desired.key_sink is not None:  # where new keys go, and which are not delivered
        env_plan = _with_delivery(env_plan, desired)
    if desired.state_url is None and not desired.secrets_path.parent.is_dir():
        # No secrets folder, so neither a secrets file nor a journal: no ledger yet, and
        # the modules that read one (the store, age) are not imported for nothing.
        return env_plan
    from mvsync.apply.ledger import local_only, push_advice, read_ledger
    from mvsync.errors import StateUrlError
    from mvsync.model import LedgerPlace
    from mvsync.planner import with_key_status

    try:
        ledger = read_ledger(LedgerPlace.of(desired), account=account)
    except StateUrlError:
        raise  # the URL as written is wrong: an error, not a key status
    except MvsyncError as error:
        warning = f"key status unknown: {error}"
        return replace(env_plan, warnings=(*env_plan.warnings, warning))
    place = LedgerPlace.of(desired)
    local = local_only(place, ledger)
    if local:
        env_plan = replace(env_plan, warnings=(*env_plan.warnings, push_advice(place, len(local))))
    if ledger is None:
        return env_plan
    held = ledger.held_by_id()
    held.update(dict.fromkeys(local, True))  # the key exists: pushing it needs no new one
    if desired.key_sink is not None:
        env_plan = _with_delivery(env_plan, desired, ledger.undelivered())
    return with_key_status(env_plan, held)


def _with_delivery(
    env_plan: EnvironmentPlan,
    desired: DesiredEnvironment,
    undelivered: list[tuple[str, str]] | None = None,
) -> EnvironmentPlan:
    from mvsync.planner import with_delivery

    assert desired.key_sink is not None
    return with_delivery(env_plan, desired.key_sink.as_written(), undelivered or [])


APPLY_VARIABLES = "MVSYNC_APPLY_VARIABLES"


def _with_warnings(env_plan: EnvironmentPlan, lookup: Lookup) -> EnvironmentPlan:
    """The plan, warning of every webhook-secret variable its creates will need that is
    not set here: a green pull request must not fail on main for want of one."""
    from mvsync.manifest import describe_missing, missing_secret_variables

    # In CI the plan jobs do not get apply's secrets: MVSYNC_APPLY_VARIABLES names the
    # ones the apply environments set, so that only the others are warned of.
    assumed = set((lookup(APPLY_VARIABLES) or "").split())

    def is_set(name: str) -> str | None:
        return "(set where apply runs)" if name in assumed else lookup(name)

    apps = [change.desired for change in env_plan.creates if change.desired is not None]
    missing = missing_secret_variables(apps, is_set)
    if not missing:
        return env_plan
    noun = "variables" if len(missing) > 1 else "variable"
    warning = f"apply will need webhook secret {noun} not set here: {describe_missing(missing)}"
    return replace(env_plan, warnings=(*env_plan.warnings, warning))


def _open_step_summary(step_summary: str, stack: ExitStack) -> TextIO | None:
    """GitHub Actions' step summary, open for append; ``None`` outside GitHub Actions."""
    if not step_summary:
        return None
    from mvsync.files import open_append

    try:
        # Opening a FIFO for writing would wait for a reader: a regular file only.
        return stack.enter_context(open_append(Path(step_summary)))
    except OSError as error:
        raise MvsyncError(
            f"cannot append to GITHUB_STEP_SUMMARY ({step_summary}): {error.strerror}; "
            "nothing was written"
        ) from error
