"""The preflight step (``mvsync check``): does each application's answer_url answer a
call with JSON, quickly, and does its webhook_url take signed events and refuse forged
ones? From the manifest alone; no MiniVoice API call. Imports run one way::

    signing   addresses  <-  transport  <-  exchange  <-  verdicts
       ^          ^--------------------------------------------  run  <-  targets
    events  <--------------------------------------------------'
    results  <---------------------------------------------------'

``targets`` turns the manifest into ``AppCheck`` values, ``run.run_checks`` sends the
requests and returns a ``results.CheckReport``; renderers are in ``mvsync.render.check``.
"""

from __future__ import annotations

from mvsync.check.results import CheckReport, CheckResult, EnvironmentResults, report_of
from mvsync.check.run import DEFAULT_DEADLINE_SECONDS, AppCheck, CheckSettings, run_checks
from mvsync.check.targets import checks_of

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "AppCheck",
    "CheckReport",
    "CheckResult",
    "CheckSettings",
    "EnvironmentResults",
    "checks_of",
    "report_of",
    "run_checks",
]
