"""One check request, bounded whole in time and in size, reduced to an ``Outcome``.

The budget covers the whole exchange — resolving, connecting, TLS, sending, the
headers and the last byte of the body — so a receiver that trickles its answer a byte
at a time still runs out of it. The URL is cleared (``addresses.clear``) inside the same
budget, and pinned on the transport before anything is sent. What comes back is kept
as a status, a media type and at most ``max_body`` raw bytes that the caller parses and
drops (``Accept-Encoding: identity`` is asked for and a compressed body is not inflated,
so no small answer can grow past the cap in memory). No body, header value or exception
text of the receiver's is ever shown.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import time
from dataclasses import dataclass

import httpx

from mvsync.check.addresses import RefusedError, Resolver, clear
from mvsync.check.transport import PinnedBackend

_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
_MEDIA_TYPE = re.compile(f"{_TOKEN}/{_TOKEN}")


@dataclass(frozen=True)
class Outcome:
    """What one request came to: an answer (``status`` set) or why there was none."""

    elapsed_ms: int
    status: int | None = None
    media_type: str | None = None  # "text/html"; None when absent or not a media type
    body: bytes = b""
    too_large: bool = False
    encoded: bool = False  # a Content-Encoding other than identity, though none was asked for
    problem: str | None = None  # words, when there was no answer
    refused: bool = False  # refused before sending: nothing left this machine
    timed_out: bool = False


def media_type_of(headers: httpx.Headers) -> str | None:
    value = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else None


def _words_for(error: httpx.HTTPError) -> str:
    """A transport error in words of our own (its text may quote the receiver)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "its TLS certificate is not valid for this host"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "could not connect: connection refused"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError):
        return "could not connect"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the connection closed or the answer was not valid HTTP"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return "the exchange failed"


async def exchange(
    client: httpx.AsyncClient,
    backend: PinnedBackend,
    resolve: Resolver,
    request: httpx.Request,
    budget: float,
    max_body: int,
) -> Outcome:
    """Send ``request`` once, within ``budget`` seconds all told."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(budget):
            target = await clear(request.url, resolve)
            backend.pin(target)
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                too_large = False
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > max_body:
                        too_large = True
                        break
            finally:
                await response.aclose()
    except RefusedError as refusal:
        return Outcome(elapsed(), problem=f"refused: {refusal}", refused=True)
    except TimeoutError:
        return Outcome(elapsed(), problem="timed out", timed_out=True)
    except httpx.HTTPError as error:
        return Outcome(elapsed(), problem=_words_for(error))
    return Outcome(
        elapsed(),
        status=response.status_code,
        media_type=media_type_of(response.headers),
        body=bytes(body[:max_body]),
        too_large=too_large,
        encoded=response.headers.get("content-encoding", "identity").strip().lower()
        not in ("", "identity"),
    )
