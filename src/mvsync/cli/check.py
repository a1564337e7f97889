"""``mvsync check`` (SPEC section 8): preflight of every application's answer_url and
webhook_url, from the manifest alone — no MiniVoice API call, no API key.

``MVSYNC_CHECK_DEADLINE`` (seconds, default 300) bounds the whole run; each request has
its environment's ``checks:`` budget. Exit 0 only when every check passed.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mvsync.cli.options import (
    env_option,
    env_seconds,
    format_option,
    manifest_option,
    manifest_path,
    out_option,
)
from mvsync.cli.pipe import guarded_stdout
from mvsync.cli.status import EXIT_ERROR, EXIT_OK

DEADLINE_VARIABLE = "MVSYNC_CHECK_DEADLINE"


@click.command()
@manifest_option
@env_option("Check this environment (repeatable; default all).", multiple=True)
@format_option
@out_option("Also save the results (JSON) here, for mvsync show.")
@click.pass_context
def check(
    ctx: click.Context, envs: tuple[str, ...], output_format: str, out_file: str | None
) -> int:
    """Preflight: answer_url answers JSON in time, webhook_url takes signed events.

    \b
    For every application of every environment named (default all): answer_url gets
    one test call (GET with call_id, from, to; or POST, checks.answer_method) and must
    answer 2xx JSON within checks.answer_timeout_ms (default 1000); webhook_url gets a
    call.completed event signed with webhook_secret (Standard Webhooks), which it must
    accept within checks.webhook_timeout_ms (default 5000), and the same event with a
    wrong signature, which it must refuse. Every request is marked as a test
    (MiniVoice-Test: 1, ids check_..., "test": true). No redirect is followed; only
    globally routable addresses are checked (plain http and loopback only where the
    URL names a loopback host). Exit 0 when every check passed, 1 otherwise.
    MVSYNC_CHECK_DEADLINE (seconds, default 300) bounds the run. See docs/check.md.
    """
    import json

    from mvsync.check import DEFAULT_DEADLINE_SECONDS, checks_of, run_checks
    from mvsync.errors import MvsyncError
    from mvsync.files import UnwritableFileError, write_atomic
    from mvsync.manifest import load_manifest
    from mvsync.render.check import CHECK_RENDERERS

    deadline = env_seconds(DEADLINE_VARIABLE, DEFAULT_DEADLINE_SECONDS, positive=True)
    manifest = load_manifest(manifest_path(ctx))
    targets = checks_of(manifest, envs, os.environ.get)
    report = run_checks(targets, deadline=deadline)
    if out_file is not None:
        document = json.dumps(report.to_json(), indent=2) + "\n"
        try:
            write_atomic(Path(out_file), document.encode(), 0o644)
        except UnwritableFileError as error:
            raise MvsyncError(f"cannot write {out_file}: {error}") from None
    out, _guard = guarded_stdout()
    CHECK_RENDERERS[output_format](report, out)
    out.flush()
    return EXIT_OK if report.passed else EXIT_ERROR
