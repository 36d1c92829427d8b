"""The 401 resend: once, with the body whole, the 401 released first and in bounded time."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

import requests_criteo
from requests_criteo import CriteoAuth, TokenCache
from requests_criteo.auth import MAX_401_SECONDS
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, summary

#: How long the trickling 401 would take to send its whole body, one byte a tick.
TRICKLED_BYTES = 600
TICK = 0.05


@contextlib.contextmanager
def api_trickling_its_401() -> Iterator[str]:
    """An API on 127.0.0.1 whose first answer is a 401 sending its body a byte a tick.

    Every later request is answered 200 at once. The trickle stops when the client closes
    the connection, or after TRICKLED_BYTES ticks, or when the test ends.
    """
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    answered = 0

    def handle(conn: socket.socket) -> None:
        nonlocal answered
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                part = conn.recv(4096)
                if not part:
                    return
                request += part
            first, answered = answered == 0, answered + 1
            try:
                if not first:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    return
                head = f"HTTP/1.1 401 Unauthorized\r\nContent-Length: {TRICKLED_BYTES}\r\n\r\n"
                conn.sendall(head.encode())
                for _ in range(TRICKLED_BYTES):
                    if stop.wait(TICK):
                        return
                    conn.sendall(b"x")
            except OSError:  # the client closed the connection: the trickle ends
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() alone does not
        server.close()
        acceptor.join(5)


@pytest.mark.parametrize("way", ["auth", "mount"])
def test_a_trickling_401_is_drained_for_a_bounded_time_before_the_resend(
    way: str, fake: FakeCriteo
) -> None:
    with api_trickling_its_401() as api:
        auth = CriteoAuth(
            CLIENT_ID, SECRET, token_url=fake.token_url, api_origins=[api], cache=TokenCache()
        )
        with requests.Session() as s:
            if way == "mount":
                requests_criteo.mount(s, auth)
            else:
                s.auth = auth
            started = time.monotonic()
            r = s.get(f"{api}/2025-10/retail-media/me", timeout=(3, 3))
            took = time.monotonic() - started
            assert summary(r) == (200, [401])
    # The whole 401 would take TRICKLED_BYTES * TICK = 30 s; the per-read timeout (3 s)
    # never fires. The drain stops after MAX_401_SECONDS (give or take one tick).
    assert took < MAX_401_SECONDS + 2.0
    assert 0 < len(r.history[0].content) < TRICKLED_BYTES
