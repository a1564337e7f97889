"""The refusals made before any request: a base URL that would send the bearer token in
the clear or to a host it does not name, and an API key that cannot be a key."""

from __future__ import annotations

import re

import httpx

from mvsync.api.responses import display_url
from mvsync.errors import MvsyncError
from mvsync.escape import escape
from mvsync.urls import is_loopback_host


class UnsafeApiUrlError(MvsyncError):
    """An ``api_url`` or API key that mvsync refuses to use (before any request)."""


_USERINFO = re.compile(r"//[^/?#]*@")


def _without_userinfo(api_url: str) -> str:
    # For a URL too broken to parse: never show what may be a password.
    return escape(_USERINFO.sub("//", api_url))


def checked_base_url(api_url: str) -> httpx.URL:
    try:
        url = httpx.URL(api_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeApiUrlError(
            f"api_url {_without_userinfo(str(api_url))!r} is not a valid URL"
        ) from None
    if url.userinfo:
        # httpx would send them as Basic auth instead of the bearer token, and they
        # would show in every message that names the URL.
        raise UnsafeApiUrlError(
            f"api_url {display_url(url)!r} holds a user name or password (user:password@):"
            " mvsync authenticates with the API key only — remove them from api_url"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise UnsafeApiUrlError(
            f"api_url {display_url(url)!r} is not an absolute http(s) URL"
        ) from None
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise UnsafeApiUrlError(
            f"refusing to send the API key over plain http to {url.host}: use https "
            "(plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
        )
    return url


def check_api_key(api_key: str) -> None:
    # A key with spaces or control characters cannot be a header value, and the HTTP
    # stack's own error would quote it: refuse it here without ever showing it.
    if not api_key:
        raise UnsafeApiUrlError("the API key is empty")
    if not api_key.isascii() or not api_key.isprintable() or any(c.isspace() for c in api_key):
        raise UnsafeApiUrlError(
            "the API key contains spaces, control or non-ASCII characters (it is not shown)"
        )
