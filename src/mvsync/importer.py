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
- A ``webhook_url`` shared by every imported application (two or more) is written
  once, in ``defaults``. With an ``ImportBase`` (``import --into FILE``) what the API
  cannot show is kept from FILE: recipients, the environment's block, defaults; an
  entry then says only where it differs from those defaults (``webhook_url: null``
  drops one it does not have).
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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mvsync.model import RemoteApp

WEBHOOK_SECRET_PLACEHOLDER = "${MV_WEBHOOK_SECRET}"


@dataclass(frozen=True)
class ImportBase:
    """What an import keeps of an existing manifest (``import --into FILE``): all that the
    API cannot show. Raw manifest values (``${}`` templates stay templates), as loaded.

    ``environment`` is the block of the imported environment (``api_url``, ``api_key_env``,
    ``secrets_file``, ``recipients``, ``state_url``, ``key_sink``, ``checks``...), written
    back whole; ``recipients`` the top-level list; ``defaults`` the ``defaults`` mapping.
    """

    source: str
    environment: dict[str, Any]
    recipients: list[Any] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


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


@dataclass(frozen=True)
class _Defaults:
    """The webhook fields every entry inherits: the base manifest's ``defaults``, or the
    one ``webhook_url`` every imported application shares (factored out)."""

    has_url: bool = False  # defaults gives a webhook_url
    url: str | None = None  # that webhook_url as a remote value; None: a template
    has_secret: bool = False  # defaults gives a webhook_secret
    factored: bool = False  # the url was found shared here (not in the base)


def _entry_lines(app: RemoteApp, defaults: _Defaults = _Defaults()) -> list[str]:
    lines = [
        f"  # from {_comment_text(app.id)}, created {_comment_text(app.created_at)}",
        f"  - name: {manifest_string(app.name)}",
        f"    answer_url: {manifest_string(app.answer_url)}",
    ]
    remote_url = app.webhook_url or None
    if remote_url is None:
        if defaults.has_url:  # no webhook in MiniVoice, but defaults has one: drop it
            lines.append("    webhook_url: null  # none in MiniVoice: not the default")
            if defaults.has_secret:
                lines.append("    webhook_secret: null")
        return lines
    if not (defaults.has_url and remote_url == defaults.url):
        lines.append(f"    webhook_url: {manifest_string(remote_url)}")
    if not defaults.has_secret:
        lines.append(_SECRET_LINE)
    return lines


_SECRET_LINE = (
    f"    webhook_secret: {WEBHOOK_SECRET_PLACEHOLDER}"
    "  # write-only in the API: not read back; used only by a create"
)


def _defaults_of(imported: Sequence[RemoteApp], base: ImportBase | None) -> _Defaults:
    """The base's webhook defaults, else the ``webhook_url`` all of at least two imported
    applications share (the default then says it once, with the placeholder secret)."""
    given = base.defaults if base is not None else {}
    has_secret = given.get("webhook_secret") is not None
    if given.get("webhook_url") is not None:
        # A template (``${CRM}/hooks``) cannot be compared with a remote value: every
        # application then says its own webhook_url.
        url = str(given["webhook_url"])
        return _Defaults(True, url if "$" not in url else None, has_secret)
    urls = {app.webhook_url or None for app in imported}
    if len(imported) >= 2 and len(urls) == 1 and None not in urls:
        return _Defaults(True, urls.pop(), True, factored=True)
    return _Defaults(False, None, has_secret)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return yaml_string(str(value))  # a raw manifest value: its ``$`` stay as written


def _dumped(value: Any, indent: int) -> list[str]:
    """A raw manifest value (kept from the base: mappings, lists, scalars) as block YAML
    lines indented ``indent``, each string written so that it loads back the same."""
    pad = " " * indent
    if isinstance(value, dict):
        items = [(f"{pad}{yaml_string(str(key))}:", item) for key, item in value.items()]
    elif isinstance(value, list):
        items = [(f"{pad}-", item) for item in value]
    else:
        return [pad + _scalar(value)]
    lines: list[str] = []
    for head, item in items:
        if isinstance(item, dict | list) and item:
            lines += [head, *_dumped(item, indent + 2)]
        elif isinstance(item, dict | list):
            lines.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
        else:
            lines.append(f"{head} {_scalar(item)}")
    return lines


def _defaults_lines(base: ImportBase | None, defaults: _Defaults) -> list[str]:
    kept = dict(base.defaults) if base is not None else {}
    if not (kept or defaults.factored):
        return []
    lines = ["defaults:", *(_dumped(kept, 2) if kept else [])]
    if defaults.factored:
        lines.append(f"  webhook_url: {manifest_string(defaults.url or '')}  # every one shares it")
        if "webhook_secret" not in kept:
            lines.append(_SECRET_LINE[2:])
    return [*lines, ""]


def _base_lines(env_name: str, base: ImportBase) -> list[str]:
    lines = [
        f"# Kept from {_comment_text(base.source)}: recipients, the settings of environment",
        f"# {json.dumps(env_name)} and defaults. Not kept: its comments, its other "
        "environments and its",
        "# applications (this manifest holds what MiniVoice lists).",
        "version: 1",
        "",
    ]
    if base.recipients is not None:
        lines += ["recipients:", *_dumped(base.recipients, 2), ""]
    lines += ["environments:", f"  {yaml_string(env_name)}:"]
    if base.environment:
        lines += _dumped(base.environment, 4)
    else:
        lines[-1] += " {}"
    return [*lines, ""]


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
    base: ImportBase | None = None,
) -> str:
    """A manifest of ``remote``, the applications listed by environment ``env_name``.

    ``api_url`` and ``api_key_env`` are written verbatim (they may hold ``${}``
    templates, as in the manifest they came from); ``api_key_env`` is left out
    when ``None`` (the manifest's default, ``MINIVOICE_API_KEY``, applies). With
    ``base``, its recipients, environment block and defaults are kept instead.
    A ``webhook_url`` that every imported application shares goes into defaults.
    """
    ordered = sorted(remote, key=lambda app: (app.name, app.id))
    name_counts = Counter(app.name for app in ordered)
    imported, _ = import_counts(ordered)
    defaults = _defaults_of([a for a in ordered if _imported(a, name_counts)], base)
    lines = [
        f"# mvsync import of environment {json.dumps(env_name)} at {_comment_text(generated_at)}.",
        f"# {_plural(len(ordered), 'application')} listed, {imported} imported, sorted by name "
        "then id; each entry",
        "# says which remote application it came from. MiniVoice never returns webhook "
        "secrets, so each",
        f"# webhook_secret is the placeholder {WEBHOOK_SECRET_PLACEHOLDER}: set that variable",
        "# (or give each application its own) before an apply that creates something.",
    ]
    if base is not None and base.defaults.get("webhook_secret") is not None:
        # The base's defaults give the secret: no placeholder is written anywhere.
        lines[2:] = ["# says which remote application it came from."]
    if base is not None:
        lines += _base_lines(env_name, base)
    else:
        lines += [
            "version: 1",
            "",
            "environments:",
            f"  {yaml_string(env_name)}:",
            f"    api_url: {yaml_string(api_url)}",
        ]
        if api_key_env is not None:
            lines.append(f"    api_key_env: {yaml_string(api_key_env)}")
        lines.append("")
    lines += _defaults_lines(base, defaults)

    entries: list[str] = []
    noted_names: set[str] = set()
    for app in ordered:
        entry = _entry_lines(app, defaults)
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
