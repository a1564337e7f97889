"""A small YAML emitter's quoting for the secrets file: every scalar double-quoted, ASCII
only, so that no value is re-typed on reading and any YAML 1.1/1.2 loader reads it back."""

from __future__ import annotations


def quote(text: str) -> str:
    """A YAML double-quoted scalar, ASCII only, that any YAML 1.1/1.2 loader reads back."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# YAML limits an implicit key ("name": on one line) to 1024 characters, the quotes and
# escapes included; a longer name is written as an explicit key, which has no limit.
_IMPLICIT_KEY_CHARS = 1024


def entry_key(name: str) -> str:
    """The lines that open the entry of ``name``: ``"name":``, or ``? "name"`` and ``:``
    when the quoted name is too long for an implicit key (any YAML 1.2 loader reads both)."""
    quoted = quote(name)
    if len(quoted) <= _IMPLICIT_KEY_CHARS:
        return f"  {quoted}:\n"
    return f"  ? {quoted}\n  :\n"
