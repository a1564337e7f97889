"""What the tests share besides fixtures: the canaries, the paths, the secrets check.

Tests import these with ``from helpers import ...`` (pytest advises against importing
from ``conftest``); ``tests/`` is on ``sys.path`` because it holds the rootdir's
``conftest.py`` and has no ``__init__.py`` (pytest's default "prepend" import mode).

- ``TEST_API_KEY``, ``TEST_WEBHOOK_SECRET``: canaries that must never appear in output,
  logs, error text, plan files or snapshots; ``assert_no_secrets(text, extra=...)``
  checks a text for them (and for any issued ``mv_live_`` key passed in ``extra``), in
  every case form: as sent, upper-cased and lower-cased (an echo may change case).
- ``REPO_ROOT``: the checkout; ``FIXTURES``: ``tests/fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

TEST_API_KEY = "mvtest_BEARER_CANARY_7f3a9c"
TEST_WEBHOOK_SECRET = "whsec_CANARY_2b8e41"

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def case_forms(secret: str) -> tuple[str, ...]:
    """``secret`` as sent, upper-cased and lower-cased (each once)."""
    return tuple(dict.fromkeys((secret, secret.upper(), secret.lower())))


def assert_no_secrets(text: str, extra: Iterable[str] = ()) -> None:
    """Fail when a canary secret, or any of the ``extra`` values (issued keys), is in
    ``text`` in any case form (as sent, upper, lower)."""
    for secret in (TEST_API_KEY, TEST_WEBHOOK_SECRET, *extra):
        if not secret:
            continue
        for form in case_forms(secret):
            if form in text:
                pytest.fail(f"a secret leaked into the text (canary {secret[:8]}…, some case)")
