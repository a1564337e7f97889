"""Run every check of a set of applications: at most eight requests at once, each
within its budget, the whole run within a deadline (SPEC section 8).

``run_checks`` is the one entry point; it takes values (``AppCheck``), not the manifest,
and returns a ``CheckReport``. A check that the deadline leaves no time for is reported
as not run (a failure), so a run always ends with a result for every URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from mvsync.check import events
from mvsync.check.addresses import Resolver, system_resolver
from mvsync.check.exchange import Outcome, exchange
from mvsync.check.results import CheckReport, CheckResult, EnvironmentResults
from mvsync.check.signing import SecretFormatError, secret_key
from mvsync.check.transport import MAX_IN_FLIGHT, PinnedBackend, pinned_client
from mvsync.check.verdicts import MAX_ANSWER_BYTES, answer_verdict, no_answer, webhook_verdict
from mvsync.escape import escape

DEFAULT_DEADLINE_SECONDS = 300.0
# A webhook's answer is not looked at: only enough is read to reuse the connection.
_MAX_WEBHOOK_BODY = 64 * 1024


@dataclass(frozen=True)
class CheckSettings:
    """One environment's ``checks:`` settings."""

    answer_method: str = "GET"
    answer_timeout_ms: int = 1000
    webhook_timeout_ms: int = 5000


@dataclass(frozen=True)
class AppCheck:
    """One application to check. ``webhook_secret`` is the secret's value, kept in
    memory only; ``secret_ref`` is its ``${VAR}``, the only form ever shown."""

    name: str
    answer_url: str
    webhook_url: str | None
    secret_ref: str | None
    webhook_secret: str | None = field(default=None, repr=False)
    settings: CheckSettings = field(default_factory=CheckSettings)


def shown_url(url: str) -> str:
    """The URL as results show it: escaped, without any ``user:password@``."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return escape(url.split("@")[-1])
    if parsed.userinfo:
        parsed = parsed.copy_with(username=None, password=None)
    return escape(str(parsed))


class _Run:
    def __init__(self, deadline: float, resolve: Resolver) -> None:
        self.deadline = time.monotonic() + deadline
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.backend = PinnedBackend()
        self.client = pinned_client(self.backend)
        self._resolve = resolve
        self._resolved: dict[tuple[str, int], asyncio.Task[list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        """Each host is resolved once per run: every request to it uses that answer."""
        task = self._resolved.get((host, port))
        if task is None:
            task = asyncio.ensure_future(self._resolve(host, port))
            self._resolved[(host, port)] = task
        return list(await asyncio.shield(task))

    async def send(self, request: httpx.Request, budget_ms: int, max_body: int) -> Outcome:
        """One request in a free slot, within its budget and the run's deadline;
        ``Outcome.timed_out`` with ``elapsed_ms`` -1 when the deadline left no time."""
        async with self.slots:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return Outcome(-1, problem="not run: the run's deadline had passed", timed_out=True)
            budget = min(budget_ms / 1000, left)
            return await exchange(
                self.client, self.backend, self.resolve, request, budget, max_body
            )

    def cut(self, outcome: Outcome, budget_ms: int) -> bool:
        """Whether a timeout came from the run's deadline rather than the budget."""
        return outcome.timed_out and outcome.elapsed_ms < budget_ms - 5


async def _answer_check(run: _Run, app: AppCheck) -> CheckResult:
    budget = app.settings.answer_timeout_ms
    url = shown_url(app.answer_url)
    try:
        request = events.answer_request(app.answer_url, app.settings.answer_method)
    except (httpx.InvalidURL, ValueError):
        return CheckResult(app.name, "answer_url", url, "failed", "not a valid URL")
    outcome = await run.send(request, budget, MAX_ANSWER_BYTES)
    if outcome.status is None:
        reason = no_answer(outcome, budget, run.cut(outcome, budget))
        return CheckResult(app.name, "answer_url", url, "failed", reason, None, _ms(outcome))
    passed, reason = answer_verdict(outcome, budget)
    return CheckResult(
        app.name,
        "answer_url",
        url,
        "passed" if passed else "failed",
        reason,
        outcome.status,
        outcome.elapsed_ms,
    )


def _ms(outcome: Outcome) -> int | None:
    return outcome.elapsed_ms if outcome.elapsed_ms >= 0 else None


async def _webhook_check(run: _Run, app: AppCheck) -> CheckResult:
    if not app.webhook_url:
        return CheckResult(app.name, "webhook_url", None, "not_configured", "no webhook_url")
    url = shown_url(app.webhook_url)
    if app.secret_ref is None or app.webhook_secret is None:
        return CheckResult(
            app.name,
            "webhook_url",
            url,
            "not_configured",
            "no webhook_secret: events cannot be signed",
        )
    try:
        key = secret_key(app.webhook_secret)
    except SecretFormatError as error:
        return CheckResult(
            app.name, "webhook_url", url, "failed", f"{app.secret_ref}: {error}; nothing was sent"
        )
    budget = app.settings.webhook_timeout_ms
    body = events.completed_event()
    try:
        signed_request = events.webhook_request(app.webhook_url, body, key)
    except (httpx.InvalidURL, ValueError):
        return CheckResult(app.name, "webhook_url", url, "failed", "not a valid URL")
    signed = await run.send(signed_request, budget, _MAX_WEBHOOK_BODY)
    if signed.status is None:
        why = no_answer(signed, budget, run.cut(signed, budget))
        reason = why if signed.refused else f"the signed event: {why}"
        return CheckResult(app.name, "webhook_url", url, "failed", reason, None, _ms(signed))
    forged: Outcome | None = None
    if 200 <= signed.status < 300:
        forged_request = events.webhook_request(app.webhook_url, body, None)
        forged = await run.send(forged_request, budget, _MAX_WEBHOOK_BODY)
    forged_cut = forged is not None and run.cut(forged, budget)
    passed, reason = webhook_verdict(signed, forged, budget, forged_cut)
    return CheckResult(
        app.name,
        "webhook_url",
        url,
        "passed" if passed else "failed",
        reason,
        signed.status,
        signed.elapsed_ms,
    )


async def _run_all(
    environments: Sequence[tuple[str, Sequence[AppCheck]]], deadline: float, resolve: Resolver
) -> CheckReport:
    run = _Run(deadline, resolve)
    try:
        tasks = [
            [
                (
                    asyncio.ensure_future(_answer_check(run, app)),
                    asyncio.ensure_future(_webhook_check(run, app)),
                )
                for app in apps
            ]
            for _name, apps in environments
        ]
        found: list[EnvironmentResults] = []
        for (name, _apps), pairs in zip(environments, tasks, strict=True):
            results: list[CheckResult] = []
            for answer, webhook in pairs:
                results.append(await answer)
                results.append(await webhook)
            found.append(EnvironmentResults(name, tuple(results)))
        return CheckReport(tuple(found))
    finally:
        await run.client.aclose()
        for task in run._resolved.values():
            task.cancel()


def run_checks(
    environments: Sequence[tuple[str, Sequence[AppCheck]]],
    *,
    deadline: float = DEFAULT_DEADLINE_SECONDS,
    resolve: Resolver = system_resolver,
) -> CheckReport:
    """Check every application of every environment given, in order."""
    return asyncio.run(_run_all(environments, deadline, resolve))
