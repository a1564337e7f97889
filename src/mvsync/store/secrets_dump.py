"""Writing the secrets file: a small emitter of our own (``dump``), ~50x faster than a
YAML dumper. Every scalar is double-quoted, so no value is ever re-typed on reading; an
armored key is a literal block, as age writes it. ``keys.parse`` reads it back."""

from __future__ import annotations

from mvsync.store.secrets_model import ReplacedKey, SecretsFile, header
from mvsync.store.yamlquote import entry_key as _key
from mvsync.store.yamlquote import quote as _quote


def _armor(armored: str, indent: str) -> str:
    """An armored key as a literal block (ASCII lines of base64)."""
    return "|\n" + "".join(f"{indent}{line}\n" for line in armored.strip().splitlines())


def _replaced(old: ReplacedKey) -> str:
    """One item of an entry's ``history``."""
    fields = []
    if old.sealed_api_key is not None:
        fields.append("sealed_api_key: " + _armor(old.sealed_api_key, "          "))
    if old.created_at is not None:
        fields.append(f"created_at: {_quote(old.created_at)}\n")
    fields.append(f"replaced_at: {_quote(old.replaced_at)}\n")
    return "      - " + "        ".join(fields)


def dump(secrets: SecretsFile) -> bytes:
    """The file's text. A small emitter of our own: ~50x faster than a YAML dumper,
    and every scalar is double-quoted, so no value is ever re-typed on reading."""
    lines = [
        header(
            secrets.environment,
            sealed_only=bool(secrets.applications)
            and all(entry.api_key is None for entry in secrets.applications.values()),
        ),
        f"environment: {_quote(secrets.environment)}\n",
        f"api_url: {_quote(secrets.api_url)}\n",
    ]
    if not secrets.applications:
        lines.append("applications: {}\n")
    else:
        lines.append("applications:\n")
    for name, entry in secrets.applications.items():
        lines.append(f"{_key(name)}    id: {_quote(entry.id)}\n")
        if entry.api_key is not None:
            lines.append(f"    api_key: {_quote(entry.api_key.get_secret_value())}\n")
        if entry.sealed_api_key is not None:
            # A literal block: the armor as age writes it (ASCII lines of base64).
            lines.append("    sealed_api_key: " + _armor(entry.sealed_api_key, "      "))
        if entry.created_at is not None:
            lines.append(f"    created_at: {_quote(entry.created_at)}\n")
        if not entry.key_captured:
            lines.append("    key_captured: false\n")
        if entry.delivered_at is not None:
            lines.append(f"    delivered_at: {_quote(entry.delivered_at)}\n")
        if entry.history:
            lines.append("    history:\n")
            lines.extend(_replaced(old) for old in entry.history)
    return "".join(lines).encode("ascii")
