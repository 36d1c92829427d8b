"""A token request abandoned at its deadline closes its connection and its worker ends.

Against a raw-socket token endpoint on 127.0.0.1 that never finishes its answer: it
trickles a byte per tick, which resets every read timeout, so only the deadline can end a
call, and only closing the socket can end the worker that was reading it.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import pytest
import requests

from requests_criteo import CriteoAuth, TokenCache, TokenRequestError

from .conftest import CLIENT_ID, SECRET

#: Seconds between two bytes of the endpoint: well under the read timeout.
TICK = 0.1
DEADLINE = 0.4
CALLS = 10
WORKER = "requests-criteo-token"
#: Prompt headers of an answer whose body then trickles until the connection closes.
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
#: The start of a status line and headers that trickle (an endless header line).
HEAD = b"HTTP/1.1 200 OK\r\nX-Pad: "


class TricklingEndpoint:
    """A token endpoint that trickles its headers (``"head"``) or its body (``"body"``).

    It counts the connections it accepted and those the client closed (EOF or reset).
    """

    def __init__(self, part: str) -> None:
        self.part = part
        self.accepted = 0
        self.closed_by_client = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(TICK)
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/oauth2/token"

    def __enter__(self) -> TricklingEndpoint:
        self._threads[0].start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            closed = self._trickle(conn)
        if closed:
            with self._lock:
                self.closed_by_client += 1

    def _trickle(self, conn: socket.socket) -> bool:
        """Trickle the answer until the client closes (``True``) or the test ends."""
        conn.settimeout(5)
        stream: Iterator[int]
        try:
            conn.recv(65536)  # the request, or its first part
            if self.part == "body":
                conn.sendall(HEADERS)
                stream = itertools.repeat(ord(" "))
            else:
                stream = itertools.chain(HEAD, itertools.repeat(ord("a")))
            conn.settimeout(TICK)
            for byte in stream:
                if self._stop.is_set():
                    return False
                try:
                    if not conn.recv(65536):  # the rest of the request, or EOF
                        return True
                except TimeoutError:
                    conn.sendall(bytes([byte]))
        except OSError:  # reset by the client
            return True
        return False  # pragma: no cover - the stream is endless


def workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == WORKER and t.is_alive()}


def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll *condition* every 50 ms for at most *within* seconds; the asserts follow."""
    end = time.monotonic() + within
    while not condition() and time.monotonic() < end:
        time.sleep(0.05)


def call_until_deadline(auth: CriteoAuth, calls: int) -> None:
    for _ in range(calls):
        start = time.monotonic()
        with pytest.raises(TokenRequestError, match="deadline"):
            auth.token()
        assert time.monotonic() - start < DEADLINE + 1


def trickled_auth(endpoint: TricklingEndpoint, **options: Any) -> CriteoAuth:
    """An auth whose token endpoint trickles, with a short deadline and a cache of its own."""
    return CriteoAuth(
        CLIENT_ID,
        SECRET,
        token_url=endpoint.url,
        cache=TokenCache(),
        timeout=(1, 5),
        deadline=DEADLINE,
        **options,
    )


@pytest.mark.parametrize("part", ["head", "body"])
def test_abandoned_token_requests_close_their_sockets_and_their_workers_end(
    part: str,
) -> None:
    before = workers()  # left by other tests: ignored
    with TricklingEndpoint(part) as endpoint:
        auth = trickled_auth(endpoint)
        call_until_deadline(auth, CALLS)
        wait_until(lambda: not workers() - before and endpoint.closed_by_client == CALLS)
        assert endpoint.accepted == CALLS
        assert endpoint.closed_by_client == CALLS
        assert not workers() - before


def test_with_an_injected_session_a_trickled_body_is_still_abandoned() -> None:
    before = workers()
    # The worker is blocked in the caller's own session only until the next byte: it then
    # sees that it was abandoned and closes the connection. (Trickled headers would hold
    # it until its read timeout: no public interface of a foreign session can cut them.)
    with TricklingEndpoint("body") as endpoint:
        auth = trickled_auth(endpoint, token_session=requests.Session())
        call_until_deadline(auth, 3)
        wait_until(lambda: not workers() - before and endpoint.closed_by_client == 3)
        assert endpoint.closed_by_client == 3
        assert not workers() - before
