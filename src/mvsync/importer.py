"""A manifest from the applications that exist in one environment (``mvsync import``).

Pure: it is given the remote list and the time, and returns the manifest text.
The text is generated line by line rather than dumped, so that every entry can
carry a comment saying where it came from, and so that the output is the same
bytes for the same input (stable order: by name, then by id).

Choices, each one so that the output validates and plans as all-unchanged
against the environment it was read from:

- Remote strings are written as YAML scalars that load back as the same
  string, with ``$`` doubled: the manifest reads ``${VAR}`` as a variable.
- ``webhook_secret`` is write-only in the API, so it can never be read back. An
  application with a ``webhook_url`` gets a ``${MV_WEBHOOK_SECRET}``
  placeholder with a comment; planning never needs its value, only a create
  does.
- A manifest cannot hold two applications of one name. Applications that share
  a name are written commented out, with a note: the plan then lists them as
  ``unmanaged`` (information, not a pending change) instead of ``ambiguous``.
  The same is done for an application whose URL the manifest would refuse
  (not an absolute http(s) URL) or whose name it would refuse (empty or blank).
  A name or URL holding a lone surrogate never gets here: the client refuses
  such a list as a malformed answer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

from mvsync.model import RemoteApp

WEBHOOK_SECRET_PLACEHOLDER = "${MV_WEBHOOK_SECRET}"

# A scalar made only of these characters, starting with a letter or digit, is
# a plain YAML string in both YAML 1.1 and 1.2 unless it looks like a number,
# a boolean or null (checked separately). ": " and " #" cannot occur: neither
# a space followed by "#" nor ":" followed by a space is allowed below.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,/:?&=%+()@~!*'-]*")
_NOT_A_STRING = re.compile(
    r"""(?ix)
    ~ | null | true | false | yes | no | on | off | y | n
    | [-+]?(\d[\d_]*)?\.?\d[\d_]*([eE][-+]?\d+)?
    | [-+]?0[xob][0-9a-f_]+
    | [-+]?\.?(inf|nan)
    | [-+]?\d[\d_]*(:[0-5]?\d)+(\.\d*)?
    | \d{4}-\d\d?-\d\d?([Tt ].*)?
    """
)


def yaml_string(value: str) -> str:
    """``value`` as a YAML scalar that loads back as exactly that string."""
    if (
        _PLAIN.fullmatch(value)
        and not _NOT_A_STRING.fullmatch(value)
        and not value.endswith((" ", ":"))
        and ": " not in value
        and " #" not in value
    ):
        return value
    # A JSON string is a valid YAML double-quoted scalar with the same value; YAML
    # readers also refuse some characters JSON leaves raw (DEL, NEL...), so every
    # non-printable character is escaped.
    return "".join(
        char if char.isprintable() else _escape(char)
        for char in json.dumps(value, ensure_ascii=False)
    )


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def manifest_string(value: str) -> str:
    """A remote value as a manifest string: ``$`` doubled so nothing expands."""
    return yaml_string(value.replace("$", "$$"))


def _comment_text(value: str) -> str:
    # Remote text inside a comment must not end the comment line.
    return value if value.isprintable() else json.dumps(value)


def _is_manifest_url(value: str | None) -> bool:
    if not value:
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _entry_lines(app: RemoteApp) -> list[str]:
    lines = [
        f"  # from {_comment_text(app.id)}, created {_comment_text(app.created_at)}",
        f"  - name: {manifest_string(app.name)}",
        f"    answer_url: {manifest_string(app.answer_url)}",
    ]
    if app.webhook_url:
        lines.append(f"    webhook_url: {manifest_string(app.webhook_url)}")
        lines.append(
            f"    webhook_secret: {WEBHOOK_SECRET_PLACEHOLDER}"
            "  # write-only in the API: not read back; used only by a create"
        )
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _imported(app: RemoteApp, name_counts: Counter[str]) -> bool:
    """Whether ``app`` becomes a manifest entry (not one commented out)."""
    return name_counts[app.name] == 1 and (
        _is_manifest_url(app.answer_url) and _is_manifest_url(app.webhook_url)
    )


def import_counts(remote: Sequence[RemoteApp]) -> tuple[int, int]:
    """(applications imported as entries, applications left out as comments)."""
    name_counts = Counter(app.name for app in remote)
    imported = sum(1 for app in remote if _imported(app, name_counts))
    return imported, len(remote) - imported


def render_import(
    env_name: str,
    api_url: str,
    remote: Sequence[RemoteApp],
    generated_at: str,
    *,
    api_key_env: str | None = None,
) -> str:
    """A manifest of ``remote``, the applications listed by environment ``env_name``.

    ``api_url`` and ``api_key_env`` are written verbatim (they may hold ``${}``
    templates, as in the manifest they came from); ``api_key_env`` is left out
    when ``None`` (the manifest's default, ``MINIVOICE_API_KEY``, applies).
    """
    ordered = sorted(remote, key=lambda app: (app.name, app.id))
    name_counts = Counter(app.name for app in ordered)
    imported, _ = import_counts(ordered)
    lines = [
        f"# mvsync import of environment {json.dumps(env_name)} at {_comment_text(generated_at)}.",
        f"# {_plural(len(ordered), 'application')} listed, {imported} imported, sorted by name "
        "then id; each entry",
        "# says which remote application it came from. MiniVoice never returns webhook "
        "secrets, so each",
        f"# webhook_secret is the placeholder {WEBHOOK_SECRET_PLACEHOLDER}: set that variable",
        "# (or give each application its own) before an apply that creates something.",
        "version: 1",
        "",
        "environments:",
        f"  {yaml_string(env_name)}:",
        f"    api_url: {yaml_string(api_url)}",
    ]
    if api_key_env is not None:
        lines.append(f"    api_key_env: {yaml_string(api_key_env)}")
    lines.append("")

    entries: list[str] = []
    noted_names: set[str] = set()
    for app in ordered:
        entry = _entry_lines(app)
        if name_counts[app.name] > 1:
            if app.name not in noted_names:
                noted_names.add(app.name)
                entries.append(
                    f"  # NOT IMPORTED: {name_counts[app.name]} applications are named"
                    f" {_comment_text(json.dumps(app.name))} and a manifest holds one per name."
                )
                entries.append(
                    "  # Keep one (uncomment it) once the others are deleted in MiniVoice."
                )
        elif not app.name.strip():
            entries.append("  # NOT IMPORTED: the manifest refuses an empty or blank name.")
        elif not (_is_manifest_url(app.answer_url) and _is_manifest_url(app.webhook_url)):
            entries.append("  # NOT IMPORTED: the manifest accepts only absolute http(s) URLs.")
        else:
            entries.extend(entry)
            continue
        # Commented out with its indentation kept, so uncommenting gives a valid entry.
        entries.extend(f"  # {line[2:]}" if i else line for i, line in enumerate(entry))

    if any(not line.lstrip().startswith("#") for line in entries):
        lines.append("applications:")
        lines.extend(entries)
    else:
        lines.append("applications: []")
        lines.extend(entries)
    return "\n".join(lines) + "\n"
