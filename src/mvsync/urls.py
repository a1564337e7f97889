"""URL predicates shared by the manifest and the stores, on the floor below both.

``is_loopback_host``: the hosts plain ``http`` may reach (the manifest refuses other
plain-http URLs, the client refuses to send the bearer token to them).
``account_url``: one spelling of an ``api_url``, so that one account is recognised
(and locked) once, however its URL is written.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def account_url(api_url: str) -> str:
    """``api_url`` normalised enough that one account is recognised under two spellings."""
    if "$" in api_url:
        return api_url
    try:
        parts = urlsplit(api_url)
    except ValueError:
        return api_url
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    try:
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        host, port = netloc, None
    if host and not parts.username and not parts.password:
        shown = f"[{host}]" if ":" in host else host
        default = {"https": 443, "http": 80}.get(scheme)
        netloc = shown if port in (None, default) else f"{shown}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"
