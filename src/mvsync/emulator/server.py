"""The emulator's HTTP server and its Python API (``Emulator``).

Standard library ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive:
it binds in about a millisecond, needs no dependency, and a thread per connection is
plenty for loopback tests (see benchmarks/bench_emulator.py). Handler threads are
tracked: ``stop()`` closes every open connection, wakes every injected wait, and joins
the threads, so nothing leaks from one test to the next.
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
from collections import Counter
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from mvsync.emulator import api, controls
from mvsync.emulator.errors import EmulatorError
from mvsync.emulator.faults import STATUS_FAULTS, Fault, FaultBook
from mvsync.emulator.state import Store

CONTROL_PREFIX = "/_emulator/"
MAX_BODY_BYTES = 1 << 20
IDLE_CONNECTION_SECONDS = 60.0


class Emulator:
    """A local MiniVoice Applications API on a loopback port, served from a background thread.

    ``api_keys`` each stand for one customer; every key issued by a create also
    authenticates as that create's customer. ``state_file`` keeps the applications
    across restarts. ``latency`` (seconds) is added before every API answer.
    """

    def __init__(
        self,
        api_keys: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        latency: float = 0.0,
    ) -> None:
        if isinstance(api_keys, str):
            raise EmulatorError("api_keys is a sequence of keys, not one string")
        self._host = host
        self._port = port
        self._store = Store(tuple(api_keys), state_file)
        self._faults = FaultBook()
        self._latency = 0.0
        self.set_latency(latency)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve in a background thread; returns once the port is listening."""
        if self._httpd is not None:
            raise EmulatorError("the emulator is already running")
        self._stopping.clear()
        try:
            httpd = _Server((self._host, self._port), self)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise EmulatorError(f"cannot listen on {self._host}:{self._port}: {reason}") from exc
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_until_stopped,
            name=f"mvsync-emulator:{self._port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: close open connections, join every request thread, close the state file."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes injected latency and slow answers
        httpd.stop_serving()
        thread.join()
        httpd.close_connections()
        httpd.server_close()  # joins the request threads
        self._store.close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- controls -----------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def faults(self) -> list[Fault]:
        """The faults not yet spent, in the order they will be used."""
        return self._faults.pending()

    def set_latency(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise EmulatorError(f"latency must be a number of seconds >= 0, not {seconds!r}")
        self._latency = float(seconds)

    @property
    def latency(self) -> float:
        return self._latency

    def add_api_key(self, api_key: str) -> None:
        """Accept one more key, as a new customer."""
        self._store.add_customer(api_key)

    # -- inspection ---------------------------------------------------------------------

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests arrived (faulted ones included), optionally of one method/path."""
        wanted_method = method.upper() if method is not None else None
        with self._counts_lock:
            return sum(
                count
                for (seen_method, seen_path), count in self._counts.items()
                if (wanted_method is None or seen_method == wanted_method)
                and (path is None or seen_path == path)
            )

    def request_counts(self) -> dict[str, int]:
        """``{"GET /v1/applications": n, ...}`` for every method and path seen."""
        with self._counts_lock:
            return {
                f"{method} {path}": count for (method, path), count in sorted(self._counts.items())
            }

    def reset_request_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    def applications(self, api_key: str) -> list[dict[str, Any]]:
        """The applications of that key's customer, as the list shows them."""
        customer_id = self._store.customer_of(api_key)
        if customer_id is None:
            raise EmulatorError("that API key is not known to this emulator")
        return [app.listed() for app in self._store.apps_of(customer_id)]

    def webhook_secret_of(self, app_id: str) -> str | None:
        """The webhook secret an application was created with (``None`` if none or no such app)."""
        app = self._store.app(app_id)
        return app.webhook_secret if app is not None else None

    # -- used by the request handler ----------------------------------------------------

    def _count(self, method: str, path: str) -> None:
        with self._counts_lock:
            self._counts[(method, path)] += 1

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _serve_api(self, method: str, authorization: str | None, body: bytes) -> api.Answer:
        token = api.bearer_token(authorization)
        customer_id = self._store.customer_of(token) if token is not None else None
        if customer_id is None:
            return api.UNAUTHORIZED
        if method == "GET":
            return api.list_applications(self._store, customer_id)
        try:
            return api.create_application(self._store, customer_id, body)
        except EmulatorError:
            # The state file could not be written: nothing was created (the app is only
            # remembered after its line is written), so say so like a real 500 would.
            return api.error(500, "internal_error", "the application could not be stored")


class _Server(ThreadingHTTPServer):
    # Request threads are daemons (they never keep the process alive), and the server
    # joins them itself in server_close(): socketserver's block_on_close only joins
    # threads that are *not* daemons, so it cannot be relied on here.
    daemon_threads = True
    block_on_close = False
    JOIN_SECONDS = 10.0
    request_queue_size = 128  # the default 5 refuses bursts of new connections

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
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
    server: _Server

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
        emulator = self.server.emulator
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path.startswith(CONTROL_PREFIX):
            if not _is_loopback(self.client_address[0]):
                self._send(api.error(403, "forbidden", "emulator controls answer loopback only"))
            else:
                self._send(controls.answer(emulator, method, path, body))
            return
        emulator._count(method, path)
        if path != api.APPLICATIONS_PATH:
            answer = api.not_found(method, path)
        elif method not in api.API_METHODS:
            answer = api.method_not_allowed(method, path, api.API_METHODS)
        else:
            self._serve_with_faults(method, body)
            return
        emulator._wait(emulator.latency)
        self._send(answer)

    def _serve_with_faults(self, method: str, body: bytes) -> None:
        emulator = self.server.emulator
        fault = emulator._faults.take(method)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind in STATUS_FAULTS:
            status, code, message = STATUS_FAULTS[fault.kind]
            headers = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
            emulator._wait(emulator.latency)
            self._send(api.error(status, code, message, headers))
            return
        if kind == "drop_before_commit":
            emulator._wait(emulator.latency)
            self._drop()
            return
        answer = emulator._serve_api(method, self.headers.get("Authorization"), body)
        if kind == "drop_after_commit":
            emulator._wait(emulator.latency)
            self._drop()
            return
        if fault is not None and kind == "slow":
            emulator._wait(fault.delay)
        emulator._wait(emulator.latency)
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
        payload = (json.dumps(answer.body) + "\n").encode("utf-8")
        status = HTTPStatus(answer.status)
        lines = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in answer.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write for header and body: no Nagle/delayed-ACK stall on keep-alive.
        self.wfile.write(head if self.command == "HEAD" else head + payload)
        self.wfile.flush()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
