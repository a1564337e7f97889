"""A ``state_url`` as libpq reads it: refused when ambiguous, named without its secrets.

The password of a database URL must never reach a message (SPEC 5.4). Python's
``urlsplit`` and libpq disagree about URLs whose password holds an unencoded ``@ / # ?``
or space: libpq scans for the first ``@`` or ``/``, ``urlsplit`` stops at ``#`` and
``?`` too. A redactor reading with one set of rules while the driver reads with the other
prints the part of the password it thought was a host or a path. So:

- ``refuse_ambiguous`` rejects, before any connection, a URL whose user or password part
  holds such a character (or any malformed ``%`` escape, which libpq's own error would
  quote), without quoting any part of it;
- ``describe`` names the database from libpq's own parse (psycopg's ``conninfo``) as
  ``postgresql://USER@HOST:PORT/DB`` and nothing else;
- ``scrub`` removes every secret of the URL from a driver message and keeps its first
  line only (a server's CONTEXT or DETAIL lines would add lines to the one error).

This module imports psycopg only inside ``describe`` and ``secrets_of``: the check runs
before psycopg is loaded.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from mvsync.errors import StateUrlError

# Parameters whose value is a secret: libpq's own list of "password-like" options.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
_UNSAFE_IN_USERINFO = frozenset("@/#? \t")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_ambiguous(url: str, where: str) -> None:
    """StateUrlError when libpq would read ``url`` otherwise than its author meant."""
    advice = (
        f"{where}: the URL's user or password holds a character that must be "
        "percent-encoded (@ as %40, / as %2F, # as %23, ? as %3F, a space as %20), or "
        "a malformed %-escape; encode it in the variable's value (the value is not shown)"
    )
    if _BAD_ESCAPE.search(url) or _CONTROL.search(url) or " " in url:
        raise StateUrlError(advice)
    rest = url.partition("://")[2]
    userinfo, at, _ = rest.rpartition("@")
    if at and _UNSAFE_IN_USERINFO.intersection(userinfo):
        raise StateUrlError(advice)


def _parse(url: str) -> dict[str, str]:
    import psycopg
    from psycopg import conninfo  # libpq's own parser (PQconninfoParse)

    try:
        parsed = conninfo.conninfo_to_dict(url)
    except psycopg.Error:  # its text may quote the URL: named generically instead
        return {}
    return {key: str(value) for key, value in parsed.items() if value is not None}


def describe(url: str) -> str:
    """``postgresql://USER@HOST:PORT/DB`` from libpq's parse; no other part of ``url``."""
    parsed = _parse(url)
    if not parsed:
        return "the state_url database"
    user = parsed.get("user")
    host = parsed.get("host") or parsed.get("hostaddr") or "localhost"
    port = parsed.get("port")
    text = "postgresql://"
    if user:
        text += quote(user, safe="") + "@"
    text += quote(host, safe=",")
    if port:
        text += ":" + quote(port, safe=",")
    return text + "/" + quote(parsed.get("dbname") or user or "", safe="")


def secrets_of(url: str) -> tuple[str, ...]:
    """Every secret ``url`` holds, in the forms a message could show it (longest first)."""
    values = {url}
    for key, value in _parse(url).items():
        if key in SECRET_PARAMETERS and value:
            values.update({value, quote(value, safe=""), quote(value)})
    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    if password:
        values.update({password, unquote(password)})
    return tuple(sorted((v for v in values if v), key=len, reverse=True))


def scrub(message: str, secrets: tuple[str, ...]) -> str:
    """The first line of ``message`` with every one of ``secrets`` masked."""
    for secret in secrets:
        message = message.replace(secret, "***")
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return _CONTROL.sub(" ", lines[0]) if lines else ""
