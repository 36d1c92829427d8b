"""The 401 resend: once, with the body whole, the 401 released first and in bounded time."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

import requests_criteo
from requests_criteo import CriteoAuth, CriteoRetry, TokenCache
from requests_criteo._request_path import MAX_401_SECONDS
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, WAYS, V, criteo_client, echo, me, summary

pytestmark = pytest.mark.usefixtures("never_left_installed")


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


# -- a large 401 body ---------------------------------------------------------------------------


def _clearing_on_token(fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry) -> CriteoAuth:
    """An auth whose every new token clears the fake's canned answers.

    A canned 401 is then for the first call only: the new token's arrival takes it away.
    """
    return CriteoAuth(
        CLIENT_ID,
        SECRET,
        token_url=fake.token_url,
        cache=cache,
        retry=retry,
        on_token=lambda stored: fake.clear_responses(),
    )


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("size", [70_000, 2_000_000])
def test_a_large_401_body_never_breaks_the_resend(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry, size: int, stream: bool
) -> None:
    path = f"/{V}/retail-media/x"
    auth = _clearing_on_token(fake, cache, retry)
    auth.token()
    big = b"x" * size
    for _ in range(20):
        fake.set_response(
            path, status=401, body=big, headers={"Content-Type": "text/plain"}, authorize=False
        )
        r = requests.get(fake.url + path, auth=auth, timeout=5, stream=stream)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
            assert r.json()["data"]["attributes"]["path"] == path
    assert fake.api_requests == 40
    assert fake.tokens_issued == 21


def test_a_large_401_body_never_breaks_the_adapter_resend(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    path = f"/{V}/retail-media/x"
    auth = _clearing_on_token(fake, cache, retry)
    auth.token()
    with criteo_client("mount", fake, auth, pool_maxsize=1) as s:
        for _ in range(20):
            fake.set_response(path, status=401, body=b"y" * 70_000, authorize=False)
            assert summary(s.get(fake.url + path, timeout=5)) == (200, [401])


# -- what the caller sees of the resend ---------------------------------------------------------


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_session_hook_sees_the_resend_not_the_401(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    seen: list[tuple[int, list[int]]] = []

    def assert_status(r: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((r.status_code, [h.status_code for h in r.history]))
        r.raise_for_status()

    with criteo_client(way, fake, criteo_auth) as s:
        s.hooks = {"response": [assert_status]}
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()  # Criteo revokes the cached token
        assert summary(s.get(me(fake), timeout=5)) == (200, [401])
    assert seen == [(200, []), (200, [401])]
    assert fake.token_requests == 2


# -- bodies resent whole ------------------------------------------------------------------------


@pytest.mark.parametrize("way", ["auth", "session"])
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytearray_and_memoryview_bodies_are_resent_whole(
    way: str, kind: Callable[[bytes], Any], fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    payload = json.dumps({"rows": list(range(3000))}).encode()
    with criteo_client(way, fake, criteo_auth) as s:
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()
        r = s.post(echo(fake, "things"), data=kind(payload), timeout=5)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
            attributes = r.json()["data"]["attributes"]
    assert attributes["bodyLength"] == len(payload)
    assert attributes["bodySha256"] == hashlib.sha256(payload).hexdigest()
    posted = [c for c in fake.api_calls() if c.method == "POST"]
    assert [c.body for c in posted] == [payload, payload]
    assert posted[0].bearer != posted[1].bearer
