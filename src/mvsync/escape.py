"""The one escaping of everything mvsync prints that came from outside.

Names, ids and URLs from the API or the manifest, and the API's error messages, may
hold characters that a terminal or a CI log acts on: C0 and C1 controls, DEL, the
format characters that reorder or hide text (bidi embeddings, overrides and isolates,
the Arabic letter mark, zero-width marks, the BOM) and the Unicode line separators.
``escape`` writes each of them as a visible escape, so no value can move the cursor,
recolour the terminal, set a window title, start a line of its own (a GitHub Actions
``::`` command, a Markdown heading) or reorder the text around it.
"""

from __future__ import annotations

import re

UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every unsafe character shown as ``\\xNN`` or ``\\uNNNN``."""
    return UNSAFE.sub(_escaped, text)
