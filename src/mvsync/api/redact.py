"""Masking what must never be shown: the bearer token, a webhook secret, an issued key.

``Redactor`` holds the texts of one client call that must never leave it, and masks
every form each takes in an answer that echoes it: as sent, JSON-escaped (a secret
holding a quote or a backslash is echoed escaped), and URL-encoded; case-insensitively,
since an echo may change case. Its ``repr`` masks everything.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus

from mvsync.escape import escape

MASK = "***"


class Redactor:
    """The bearer token, other texts that must never leave this module, and the scrubber.

    ``scrub`` masks every form a secret takes in an answer that echoes it: as sent,
    JSON-escaped (a secret holding a quote or a backslash is echoed escaped), and
    URL-encoded; case-insensitively, since an echo may change case.
    Its ``repr`` masks everything, so no debugger, log or traceback shows the token.
    """

    def __init__(self, token: str, *others: str | None) -> None:
        self.token = token
        self._values = tuple(v for v in (token, *others) if v)
        forms = {form for value in self._values for form in _forms_of(value) if form}
        # Longest first, so that a longer form is masked whole, not around a shorter one.
        alternatives = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile(
            "|".join(re.escape(form) for form in alternatives), re.IGNORECASE
        )

    def __repr__(self) -> str:
        return f"<secrets: {len(self._values)} masked>"

    def authorization(self) -> str:
        return f"Bearer {self.token}"

    def with_(self, other: str | None) -> Redactor:
        return Redactor(self.token, *self._values[1:], other)

    def scrub(self, text: str) -> str:
        return self._pattern.sub(MASK, text)

    def shown(self, text: str, limit: int | None = None) -> str:
        """``text`` from the server made safe to show: masked, cut, then escaped.

        Masking comes first, so that a cut never leaves most of a secret unmasked;
        escaping comes after the cut, and is masked again (an escaped form of a secret
        holding a control character is also its JSON form).
        """
        masked = self.scrub(text)
        if limit is not None and len(masked) > limit:
            masked = masked[:limit] + "…"
        return self.scrub(escape(masked))


def _forms_of(value: str) -> set[str]:
    # As sent, and as a JSON string holds it; each of those also URL-encoded (an API
    # may echo the raw body in a query string or a form).
    escaped = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    encoded = {code(form) for form in escaped for code in (_quote_all, quote, quote_plus)}
    return escaped | encoded


def _quote_all(text: str) -> str:
    return quote(text, safe="")
