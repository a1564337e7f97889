"""Whether an expanded ``api_url`` can be used: pure checks on a URL's parts.

Kept apart from ``schema`` (which calls it on literal URLs) so that ``resolve`` can
call it on expanded ones without the schema module growing past its size.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    # The same hosts the API client allows plain http to (api.responses.is_loopback_host;
    # the manifest does not import the API package, and the client keeps its own check).
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_url_problem(url: str) -> str | None:
    """Why an (expanded) absolute ``api_url`` cannot be used, or ``None``.

    Plain http off loopback would send the API key unencrypted (the client refuses it
    too, but only at plan time and with no line); a path ending in ``/v1`` would make
    every call ``/v1/v1/applications``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme == "http" and host and not is_loopback(host):
        return (
            f"plain http to {host} would send the API key unencrypted: use https "
            "(plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
        )
    if parts.path.rstrip("/").lower().endswith("/v1"):
        path = parts.path.rstrip("/")[: -len("/v1")]
        base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}"  # never userinfo
        return (
            f"must be the API's base URL, without /v1 (mvsync adds /v1/applications): "
            f"write {base!r}"
        )
    return None
