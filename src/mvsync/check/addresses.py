"""Where a check may connect: refusals made before any request (SPEC section 8).

A manifest comes from a pull request, so its URLs are untrusted: a check must not
become a way to reach the runner's metadata service or a private network. The rules:

- plain ``http`` only to a host the URL itself names as loopback (``localhost``,
  ``*.localhost``, 127.0.0.0/8, ``::1``); ``https`` anywhere else;
- the host is resolved once per run; every address it resolves to must be globally
  routable (``ipaddress.is_global``, after unmapping IPv4-mapped, NAT64 and 6to4 forms,
  and never multicast, site-local, IPv4-compatible or the RFC 9637 documentation
  prefix), or the URL is refused and nothing is sent;
- loopback addresses are allowed only when the URL names a loopback host: a public
  name that resolves to 127.0.0.1 is refused;
- the connection goes to the checked addresses and nowhere else (``transport``).

``localhost`` and ``*.localhost`` are never looked up: they are loopback by definition
(RFC 6761), so no resolver is asked and none can answer otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mvsync.errors import MvsyncError
from mvsync.urls import is_loopback_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
# Not globally routable, though Python 3.11's is_global says so: deprecated site-local,
# deprecated IPv4-compatible (::a.b.c.d), and the newer documentation prefix (RFC 9637).
_NOT_GLOBAL_V6 = tuple(
    ipaddress.ip_network(n) for n in ("fec0::/10", "::/96", "3fff::/20", "64:ff9b:1::/48")
)
_LOCALHOST_ADDRESSES = ("127.0.0.1", "::1")


class RefusedError(MvsyncError):
    """A URL a check will not send to; the message says why, in words."""


@dataclass(frozen=True)
class Target:
    """A URL cleared for one check: the host as httpx connects to it and its addresses."""

    host: str  # the URL's host as the transport sees it (IDNA, no brackets), lower case
    port: int
    addresses: tuple[str, ...]


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def is_routable(address: IPAddress) -> bool:
    """Globally routable, as ``is_global`` says, for the address and what it embeds."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address) and any(
        address in network for network in _NOT_GLOBAL_V6
    ):
        return False
    inner = embedded_ipv4(address)
    return inner is None or is_routable(inner)


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def kind_of(address: IPAddress) -> str:
    """What sort of address is refused, in words."""
    inner = embedded_ipv4(address) or address
    if inner.is_unspecified:
        kind = "the unspecified address"
    elif inner.is_loopback:
        kind = "a loopback address"
    elif inner.is_link_local or str(address) == "fd00:ec2::254":
        kind = "a link-local address (where cloud metadata services live)"
    elif inner in ipaddress.ip_network("100.64.0.0/10"):
        kind = "a shared (carrier-grade NAT) address"
    elif inner.is_private:
        kind = "a private address"
    elif inner.is_multicast:
        kind = "a multicast address"
    else:
        kind = "an address that is not globally routable"
    return kind


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (TCP only).

    The lookup runs in a daemon thread of its own, not the loop's executor: a lookup
    that hangs past its budget is abandoned, and neither the end of the run nor the
    interpreter's exit waits for it.
    """
    loop = asyncio.get_running_loop()
    settled: asyncio.Future[list[Any]] = loop.create_future()

    def settle(result: list[Any] | BaseException) -> None:
        if settled.done():
            return  # given up on: the budget ran out first
        if isinstance(result, BaseException):
            settled.set_exception(result)
        else:
            settled.set_result(result)

    def look_up() -> None:
        result: list[Any] | BaseException
        try:
            result = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            result = error
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=look_up, name="mvsync-check-resolve", daemon=True).start()
    try:
        infos = await settled
    except socket.gaierror as error:
        raise RefusedError(f"cannot resolve {host} ({error.strerror})") from None
    except OSError as error:
        raise RefusedError(f"cannot resolve {host} ({error.strerror or 'error'})") from None
    found = [str(info[4][0]) for info in infos]
    return list(dict.fromkeys(found))


def url_problem(url: httpx.URL) -> str | None:
    """What makes ``url`` uncheckable before any address is known, or ``None``."""
    if url.scheme not in ("http", "https") or not url.host:
        return "not an absolute http(s) URL"
    if url.userinfo:
        return "it holds a user name or password (user:password@)"
    if url.scheme == "http" and not is_loopback_host(url.host):
        return "plain http is checked only on a loopback host: use https"
    return None


def host_of(url: httpx.URL) -> str:
    """The host as the transport connects to it: IDNA-encoded, no brackets, lower case."""
    return url.raw_host.decode("ascii").lower()


async def clear(url: httpx.URL, resolve: Resolver) -> Target:
    """``url`` cleared to be sent to, or ``RefusedError`` saying why not."""
    problem = url_problem(url)
    if problem is not None:
        raise RefusedError(problem)
    host = host_of(url)
    port = url.port or (443 if url.scheme == "https" else 80)
    named_loopback = is_loopback_host(host)
    try:
        literal: IPAddress | None = parse_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    elif named_loopback:
        addresses = list(_LOCALHOST_ADDRESSES)
    else:
        addresses = await resolve(host, port)
        if not addresses:
            raise RefusedError(f"{host} resolves to no address")
    for text in addresses:
        try:
            address = parse_address(text)
        except ValueError:
            raise RefusedError(f"{host} resolves to something that is not an address") from None
        if named_loopback and address.is_loopback:
            continue
        if not is_routable(address):
            what = (
                f"{address} is {kind_of(address)}"
                if literal is not None
                else f"{host} resolves to {address}, {kind_of(address)}"
            )
            raise RefusedError(
                f"{what}: only globally routable addresses are checked"
                " (loopback only where the URL names it)"
            )
    return Target(host, port, tuple(addresses))
