"""The emulator's HTTP/1.1 plumbing: sockets, threads, request bodies, answer bytes.

Standard library ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive:
it binds in about a millisecond, needs no dependency, and a thread per connection is
plenty for loopback tests (see benchmarks/bench_emulator.py). Handler threads are
tracked: the owner can close every open connection and join the threads, so nothing
leaks from one test to the next.

What to answer is not decided here: every request goes to the ``Responder`` the server
was made with (the ``Emulator``), which returns an ``api.Answer`` to send, or ``None``
to close the connection without an answer. This module imports only ``api``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import selectors
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from mvsync.emulator import api

MAX_BODY_BYTES = 1 << 20
IDLE_CONNECTION_SECONDS = 60.0


@dataclass(frozen=True)
class Request:
    """One request as the responder sees it (the body already read in full)."""

    method: str
    path: str
    authorization: str | None
    body: bytes
    client_host: str
    # Every header as received, and the query string: the sample receiver (--receiver)
    # reads its webhook-* headers; the API itself looks at the Authorization only.
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""


class Responder(Protocol):
    def respond(self, request: Request) -> api.Answer | None:
        """The answer to send, or ``None`` to close the connection without one."""
        ...


class Server(ThreadingHTTPServer):
    # Request threads are daemons (they never keep the process alive), and the server
    # joins them itself in server_close(): socketserver's block_on_close only joins
    # threads that are *not* daemons, so it cannot be relied on here.
    daemon_threads = True
    block_on_close = False
    JOIN_SECONDS = 10.0
    request_queue_size = 128  # the default 5 refuses bursts of new connections

    def __init__(self, address: tuple[str, int], responder: Responder) -> None:
        self.responder = responder
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._request_threads: list[threading.Thread] = []
        self._stopped = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can take seconds
        # on a machine without DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def serve_until_stopped(self) -> None:
        """Accept connections until ``stop_serving``; woken at once, no polling interval."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopped:
                for key, _events in selector.select():
                    if key.fileobj is self and not self._stopped:
                        self.handle_request()  # ready: accepts one and starts its thread

    def stop_serving(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()
        with self._connections_lock:
            threads, self._request_threads = self._request_threads, []
        deadline = time.monotonic() + self.JOIN_SECONDS
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._connections_lock:
            self._connections.add(request)
            self._request_threads = [t for t in self._request_threads if t.is_alive()]
            self._request_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock every request thread (idle keep-alive reads included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is normal here; the core never prints.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mvsync-emulator"
    sys_version = ""
    disable_nagle_algorithm = True  # header and body go in one write anyway
    timeout = IDLE_CONNECTION_SECONDS
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the emulator never prints (and a header could hold a key)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _handle(self, method: str) -> None:
        body = self._read_body()
        if body is None:
            return
        target = urlsplit(self.path)
        request = Request(
            method=method,
            path=target.path,
            authorization=self.headers.get("Authorization"),
            body=body,
            client_host=str(self.client_address[0]),
            headers=tuple(self.headers.items()),
            query=target.query,
        )
        answer = self.server.responder.respond(request)
        if answer is None:
            self._drop()
        else:
            self._send(answer)

    def _read_body(self) -> bytes | None:
        """The whole request body (so a dropped connection is a clean close), or ``None``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(api.error(400, "invalid_request", "malformed Content-Length"))
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(api.error(413, "invalid_request", "request body too large"))
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                size = -1
            total += max(size, 0)
            if size < 0 or total > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(api.error(400, "invalid_request", "malformed or too large chunked body"))
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _drop(self) -> None:
        # No answer at all: the connection is closed once this request returns.
        self.close_connection = True

    def _send(self, answer: api.Answer) -> None:
        payload = (
            answer.raw if answer.raw is not None else (json.dumps(answer.body) + "\n").encode()
        )
        status = HTTPStatus(answer.status)
        lines = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {answer.content_type}",
            f"Content-Length: {len(payload)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in answer.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write for header and body: no Nagle/delayed-ACK stall on keep-alive.
        self.wfile.write(head if self.command == "HEAD" else head + payload)
        self.wfile.flush()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
