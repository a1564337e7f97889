"""What a key sink is given besides the key: its environment, and masked words.

The sink runs with an environment of its own (SPEC 5.5): ``PATH``, ``HOME``, ``LANG``,
``LC_*``, ``TMPDIR``, the variables ``key_sink_env`` lists, and ``MVSYNC_ENVIRONMENT``,
``MVSYNC_APP_NAME``, ``MVSYNC_APP_ID``, ``MVSYNC_APP_SLUG``. Nothing else of mvsync's
environment reaches it: not the API key, the webhook secrets, the state URL nor the
age identity. The manifest already refuses listing one of those; a listed variable whose
value holds one of the secrets mvsync was given is left out all the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from mvsync.escape import escape
from mvsync.model import KeySink, slug

PASSED_ALWAYS = ("PATH", "HOME", "LANG", "TMPDIR")
MASK = "***"
# Every secret of at least this many characters is masked (all of them, then).
MIN_MASKED = 1


def sink_environment(
    sink: KeySink,
    environ: Mapping[str, str],
    *,
    environment: str,
    name: str,
    app_id: str,
    secrets: Iterable[str] = (),
) -> dict[str, str]:
    """The whole environment of one run of ``sink``."""
    masked = [s for s in secrets if s]
    env: dict[str, str] = {}
    for variable, value in environ.items():
        if variable in PASSED_ALWAYS or variable.startswith("LC_"):
            env[variable] = value
    for variable in sink.env_names:
        listed = environ.get(variable)
        if listed is None or variable.startswith("MVSYNC_"):
            continue
        if any(secret in listed for secret in masked):
            continue
        env[variable] = listed
    env.setdefault("PATH", os.defpath)
    env.update(
        MVSYNC_ENVIRONMENT=environment,
        MVSYNC_APP_NAME=name,
        MVSYNC_APP_ID=app_id,
        MVSYNC_APP_SLUG=slug(name),
    )
    return env


def masked_tail(raw: bytes, secrets: Iterable[str], *, lines: int = 5, chars: int = 600) -> str:
    """The end of a sink's stderr fit for a message: every secret masked (in any case),
    then its last ``lines`` non-empty lines, each escaped, joined with `` | ``."""
    text = raw.decode("utf-8", errors="replace")
    for secret in sorted({s for s in secrets if len(s) >= MIN_MASKED}, key=len, reverse=True):
        text = re.sub(re.escape(secret), MASK, text, flags=re.IGNORECASE)
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(escape(line) for line in kept)
    return joined if len(joined) <= chars else "…" + joined[-chars:]
