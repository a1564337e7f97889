"""What the checks found, as values: one ``CheckResult`` per URL checked, grouped by
environment in a ``CheckReport``, with its JSON form (the ``check -o`` file that
``mvsync show`` reads back).

JSON (``format_version`` 1)::

    {"format_version": 1, "kind": "mvsync-check",
     "summary": {"passed": n, "failed": n, "not_configured": n},
     "environments": [{"name": "prod", "results": [
        {"application": "Support IVR", "check": "answer_url", "url": "https://...",
         "verdict": "failed", "reason": "answered text/html, not JSON",
         "status": 200, "elapsed_ms": 12}]}]}

A result never holds a response body, a secret or a signature: only words, a status
and a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mvsync.errors import MvsyncError
from mvsync.files import UnreadableFileError, read_bounded

FORMAT_VERSION = 1
KIND = "mvsync-check"

Verdict = Literal["passed", "failed", "not_configured"]
CheckName = Literal["answer_url", "webhook_url"]
VERDICTS: tuple[Verdict, ...] = ("passed", "failed", "not_configured")
CHECKS: tuple[CheckName, ...] = ("answer_url", "webhook_url")


@dataclass(frozen=True)
class CheckResult:
    """One check of one URL of one application."""

    application: str
    check: CheckName
    url: str | None
    verdict: Verdict
    reason: str
    status: int | None = None
    elapsed_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "check": self.check,
            "url": self.url,
            "verdict": self.verdict,
            "reason": self.reason,
            "status": self.status,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclass(frozen=True)
class EnvironmentResults:
    name: str
    results: tuple[CheckResult, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for result in self.results if result.verdict == verdict)


@dataclass(frozen=True)
class CheckReport:
    environments: tuple[EnvironmentResults, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(env.count(verdict) for env in self.environments)

    @property
    def passed(self) -> bool:
        """Every check passed (``not_configured`` is not a failure)."""
        return self.count("failed") == 0

    def summary(self) -> dict[str, int]:
        return {verdict: self.count(verdict) for verdict in VERDICTS}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "summary": self.summary(),
            "environments": [
                {"name": env.name, "results": [r.to_json() for r in env.results]}
                for env in self.environments
            ],
        }


class CheckFileError(MvsyncError):
    """A saved check result that is not one."""


def is_check_document(data: Any) -> bool:
    """Whether a JSON document is a saved check result (not a plan)."""
    return isinstance(data, dict) and data.get("kind") == KIND


def _result_of(data: Any, where: str) -> CheckResult:
    if not isinstance(data, dict):
        raise CheckFileError(f"{where}: a result is not an object")
    text_fields = ("application", "reason")
    if any(not isinstance(data.get(field), str) for field in text_fields):
        raise CheckFileError(f"{where}: a result has no application or reason")
    if data.get("check") not in CHECKS or data.get("verdict") not in VERDICTS:
        raise CheckFileError(f"{where}: a result has an unknown check or verdict")
    url, status, elapsed = data.get("url"), data.get("status"), data.get("elapsed_ms")
    if url is not None and not isinstance(url, str):
        raise CheckFileError(f"{where}: a result's url is not a string")
    for number in (status, elapsed):
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise CheckFileError(f"{where}: a result's status or elapsed_ms is not a number")
    return CheckResult(
        data["application"], data["check"], url, data["verdict"], data["reason"], status, elapsed
    )


def report_of(data: Any, where: str) -> CheckReport:
    """A ``CheckReport`` from its JSON form; ``CheckFileError`` naming ``where`` if malformed."""
    if not is_check_document(data) or data.get("format_version") != FORMAT_VERSION:
        raise CheckFileError(f"{where}: not a check result of format_version {FORMAT_VERSION}")
    environments = data.get("environments")
    if not isinstance(environments, list):
        raise CheckFileError(f"{where}: environments is not a list")
    found: list[EnvironmentResults] = []
    for env in environments:
        if not isinstance(env, dict) or not isinstance(env.get("name"), str):
            raise CheckFileError(f"{where}: an environment has no name")
        results = env.get("results")
        if not isinstance(results, list):
            raise CheckFileError(f"{where}: environment {env['name']!r} has no results list")
        found.append(EnvironmentResults(env["name"], tuple(_result_of(r, where) for r in results)))
    return CheckReport(tuple(found))


MAX_REPORT_BYTES = 64 * 1024 * 1024


def read_report(path: Path) -> CheckReport | None:
    """The saved check result in ``path``; ``None`` when the file is JSON but not a check
    result (a plan, say); ``CheckFileError`` when it cannot be read or is malformed."""
    try:
        raw = read_bounded(path, MAX_REPORT_BYTES)
    except (UnreadableFileError, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or "unreadable"
        raise CheckFileError(f"{path}: cannot read the saved check result: {reason}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return report_of(data, str(path)) if is_check_document(data) else None
