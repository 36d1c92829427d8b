"""The loopback HTTP/1.1 server under :class:`~requests_criteo.testing.FakeCriteo`.

What lives here: ``_Server``, a threading HTTP server on ``127.0.0.1`` (a free port) that
tracks its connections so that stopping is prompt; ``_Handler``, which reads one request at
a time (request line, then a ``Content-Length`` or chunked body under a size cap) and writes
answers whose framing it computes itself; ``_Running``, a server answering on its own
thread; and ``_LoopbackService``, the base of the fake: ``start``, ``stop``, ``with`` and
``url``. What does not: what to answer, which the ``respond`` callable given to the
service decides (``requests_criteo.testing.api._respond`` for the fake). Nothing here
knows about Criteo.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from ._wire import _JSON, _dumps

MAX_BODY: Final = 10 * 1024 * 1024
"""Largest request body the fake accepts (10 MiB); a larger one gets ``413``."""

_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_MAX_LINE: Final = 65536
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_TOO_LARGE: Final = f"Request body larger than {MAX_BODY} bytes"


class _BodyError(Exception):
    """A request body the server refuses: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _guess_content_type(body: bytes) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return _JSON


class _Server(ThreadingHTTPServer):
    """A threading HTTP server on loopback that tracks its connections so stop is prompt."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 drops SYNs under concurrent tests (1 s stalls)

    def __init__(self, respond: Callable[[_Handler], None], name: str) -> None:
        self.respond = respond
        self.name = name
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed on loopback.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        thread = threading.Thread(
            target=self._run_connection,
            args=(request, client_address),
            name=f"{self.name}-connection",
            daemon=self.daemon_threads,
        )
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections[request] = thread
        thread.start()

    def _run_connection(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            if isinstance(request, socket.socket):
                with self._connections_lock:
                    self._connections.pop(request, None)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Stay silent: a client that hangs up is not worth a traceback on stderr."""

    def close_connections(self, timeout: float) -> None:
        """Wake up every connection thread (EOF on its socket) and wait for them, bounded."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def serve_until_woken(self, wake: socket.socket) -> None:
        """Accept connections until a byte arrives on ``wake`` (no polling delay on stop)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                try:
                    request, client_address = self.get_request()
                except OSError:
                    continue
                self.process_request(request, client_address)


_S = TypeVar("_S", bound="_LoopbackService")


class _LoopbackService:
    """Something a :class:`_Server` answers, on its own thread, between start and stop."""

    def __init__(self, respond: Callable[[_Handler], None], name: str) -> None:
        self._respond = respond
        self._name = name
        self._lifecycle = threading.Lock()
        self._running: _Running | None = None

    def start(self: _S) -> _S:
        """Start serving (on a new free port) and return ``self``; no-op if already running."""
        with self._lifecycle:
            if self._running is None:
                self._running = _Running(_Server(self._respond, self._name))
            return self

    def stop(self) -> None:
        """Stop serving promptly: close the listening socket and every open connection.

        Requests still waiting on an injected ``delay`` get their connection closed. Calling
        ``stop`` on a stopped fake does nothing.
        """
        with self._lifecycle:
            running, self._running = self._running, None
        if running is not None:
            running.stop()

    def __enter__(self: _S) -> _S:
        """Start (``with FakeCriteo() as fake:``)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, ``"http://127.0.0.1:PORT"``; raises ``RuntimeError`` when not running."""
        url = self._url_if_running()
        if url is None:
            raise RuntimeError(f"{self._name} is not running; call start() or use it in a with")
        return url

    def _url_if_running(self) -> str | None:
        running = self._running
        return None if running is None else f"http://127.0.0.1:{running.server.server_port}"


class _Running:
    """A :class:`_Server` answering on its own thread, until :meth:`stop`."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self._wake_recv, self._wake_send = socket.socketpair()
        self._thread = threading.Thread(
            target=server.serve_until_woken,
            args=(self._wake_recv,),
            name=f"{server.name}-{server.server_port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and every open connection, waiting a bounded time."""
        self.server.stopping.set()
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")
        self._thread.join(5.0)
        self.server.server_close()
        self.server.close_connections(timeout=2.0)
        self._wake_send.close()
        self._wake_recv.close()


class _Handler(BaseHTTPRequestHandler):
    """Reads one HTTP/1.1 request at a time and hands it to the server's ``respond``.

    Before ``respond`` is called, ``body`` holds the request body and ``body_error`` the
    reason it was refused (then ``body`` is empty), or ``None``.
    """

    protocol_version = "HTTP/1.1"
    server_version = "FakeCriteo/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    body: bytes = b""
    body_error: _BodyError | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set when the server stops: a request waiting on purpose should give up."""
        return cast(_Server, self.server).stopping

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent (the base class writes every request to stderr)."""

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
            if len(self.raw_requestline) > _MAX_LINE:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._read_request_body()
            cast(_Server, self.server).respond(self)
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    # -- request body ----------------------------------------------------------------------

    def _read_request_body(self) -> None:
        try:
            self.body, self.body_error = self._read_body(), None
        except _BodyError as exc:
            self.body, self.body_error = b"", exc

    def _read_body(self) -> bytes:
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            codings = [c.strip().lower() for c in transfer_encoding.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise _BodyError(501, f"Unsupported Transfer-Encoding {transfer_encoding!r}")
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        length_text = length_text.strip()
        if not length_text.isdigit() or not length_text.isascii():
            raise _BodyError(400, f"Invalid Content-Length {length_text!r}")
        length = int(length_text)
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            raise _BodyError(413, _TOO_LARGE)
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BodyError(400, "Request body shorter than its Content-Length")
        return body

    def _drain(self, length: int) -> None:
        while length > 0:
            data = self.rfile.read(min(length, 1024 * 1024))
            if not data:
                return
            length -= len(data)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while size := self._read_chunk_size():
            total += size
            if total > _DRAIN_LIMIT:
                raise _BodyError(413, _TOO_LARGE)
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(_MAX_LINE + 1) != b"\r\n":
                raise _BodyError(400, "Truncated or malformed chunk")
            if total <= MAX_BODY:
                chunks.append(data)
        self._skip_trailers()
        if total > MAX_BODY:
            raise _BodyError(413, _TOO_LARGE)
        return b"".join(chunks)

    def _read_chunk_size(self) -> int:
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise _BodyError(400, "Truncated chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or not _HEX_DIGITS.issuperset(size_text):
            raise _BodyError(400, f"Invalid chunk size {size_text!r}")
        return int(size_text, 16)

    def _skip_trailers(self) -> None:
        """Read the trailer section of a chunked body, up to its empty line."""
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line:
                raise _BodyError(400, "Truncated chunked body")
            if line in (b"\r\n", b"\n"):
                return

    # -- answering -------------------------------------------------------------------------

    def answer(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        close: bool = False,
    ) -> None:
        """Send one answer; ``Content-Length`` and ``Connection`` are the server's to write."""
        self.send_response(status)
        has_content_type = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in ("content-length", "transfer-encoding"):
                continue  # the server always computes the framing itself
            if lowered == "connection":
                close = close or value.strip().lower() == "close"
                continue
            has_content_type = has_content_type or lowered == "content-type"
            self.send_header(name, value)
        if status in (204, 304):
            body = b""
        elif body and not has_content_type:
            self.send_header("Content-Type", _guess_content_type(body))
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def answer_json(
        self, status: int, value: object, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Send ``value`` as compact JSON."""
        self.answer(status, _dumps(value), [("Content-Type", _JSON), *headers])
