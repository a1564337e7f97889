"""The one HTTP client of the checks: no redirect, no proxy, and a connection only to an
address that ``addresses.clear`` checked (no DNS rebinding).

httpx resolves a host itself when it connects, which would let a name answer a safe
address to the check and a private one to the connection. Here httpcore's network
backend is replaced by ``PinnedBackend``: asked to connect to ``host:port``, it connects
to the addresses cleared for exactly that pair, and refuses any pair nobody cleared.
The URL is left as it is, so the ``Host`` header, TLS SNI and the certificate check all
still name the URL's host.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from mvsync.check.addresses import Target

MAX_IN_FLIGHT = 8


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects ``host:port`` only to the addresses cleared for it."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}

    def pin(self, target: Target) -> None:
        self._pins[(target.host, target.port)] = target.addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not cleared to connect to")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never connected to")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _NoCookies(DefaultCookiePolicy):
    """A receiver's cookie is never sent to the next one."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def pinned_client(backend: PinnedBackend) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` connecting through ``backend``: redirects not followed,
    environment proxies and ``.netrc`` not read, no cookie kept, at most
    ``MAX_IN_FLIGHT`` connections."""
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)
    # httpx offers no network backend option; its pool is rebuilt with one, with the
    # same settings. tests/test_check_safety.py fails if this stops taking effect.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=_NoCookies()),
        timeout=None,  # each exchange is bounded whole by the caller instead
    )
