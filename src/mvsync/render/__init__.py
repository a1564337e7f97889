"""Plan renderers: one function ``(plan, file) -> None`` per format, in ``RENDERERS``.

    text      for people at a terminal (``render.text``): SPEC markers ``+`` create,
              ``~`` drift, ``!`` ambiguous, ``?`` unmanaged; unchanged applications are
              only counted; colour only on a terminal and never with ``NO_COLOR``
    json      one document, ``format_version`` 1 (``render.json_``, docs/plan-format.md)
    markdown  a pull-request comment for every environment at once, always under
              GitHub's 65,535-character limit (``render.markdown``)

``render.apply_result`` renders what an apply did. Names and URLs come from the API and
the manifest, so control characters are escaped before they reach a terminal, and
Markdown puts them inside code fences or escapes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from mvsync.escape import escape
from mvsync.planner import Plan
from mvsync.render.json_ import plan_json, render_json
from mvsync.render.markdown import MARKDOWN_LIMIT, render_markdown
from mvsync.render.text import (
    MARKERS,
    change_lines,
    id_of,
    name_of,
    render_text,
    render_text_auto,
    summary_text,
    text_of,
    use_color,
)

if TYPE_CHECKING:
    from mvsync.render.apply_result import render_apply_result, render_last_resort


def __getattr__(name: str) -> Any:
    """``render_apply_result`` and ``render_last_resort``, imported when first asked for:
    a plan does not import what renders an apply (nor apply's settings)."""
    if name in ("render_apply_result", "render_last_resort"):
        from mvsync.render import apply_result

        return getattr(apply_result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RENDERERS: dict[str, Callable[[Plan, TextIO], None]] = {
    "text": render_text_auto,
    "json": render_json,
    "markdown": render_markdown,
}

__all__ = [
    "MARKDOWN_LIMIT",
    "MARKERS",
    "RENDERERS",
    "change_lines",
    "escape",
    "id_of",
    "name_of",
    "plan_json",
    "render_apply_result",
    "render_json",
    "render_last_resort",
    "render_markdown",
    "render_text",
    "render_text_auto",
    "summary_text",
    "text_of",
    "use_color",
]
