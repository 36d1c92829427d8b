"""Waits you can see: a countdown on a terminal, nothing on a pipe, plain messages, quiet logs.

The command line counts down each wait of over a second on stderr when stderr is a
terminal (a 429's wait, pacing, a token-endpoint retry); the library says whether the token
endpoint could not be connected to or did not answer; pacing logs one INFO line a minute
at most. Only the two pseudo-terminal runs sleep for real (about a second each).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses

from requests_criteo import CriteoAuth, CriteoRetry, RateLimiter, TokenCache
from requests_criteo.exceptions import TokenRequestError

from .conftest import SECRET, TOKEN_URL, FakeClock, Sleeps

ROOT = Path(__file__).resolve().parents[1]


# -- could not connect, or connected and no answer -------------------------------------------


def no_retries(sleeps: Sleeps) -> CriteoRetry:
    return CriteoRetry(total=0, sleep=sleeps)


def test_a_closed_port_is_could_not_connect(sleeps: Sleeps) -> None:
    with socket.socket() as s:  # bound, never listening: connection refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/oauth2/token"
        auth = CriteoAuth("client-1", SECRET, token_url=url, retry=no_retries(sleeps))
        with pytest.raises(TokenRequestError) as info:
            auth.token()
    assert str(info.value) == (
        "could not connect to the token endpoint (ConnectionError); gave up after 1 attempts"
    )


def test_a_connect_timeout_is_could_not_connect_within(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectTimeout("slow"))
    auth = CriteoAuth("client-1", SECRET, timeout=(2.0, 9.0), retry=no_retries(sleeps))
    with pytest.raises(
        TokenRequestError, match=r"^could not connect to the token endpoint within 2 s;"
    ):
        auth.token()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A token URL on a loopback socket that accepts connections and never answers."""
    held: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def accept() -> None:
            try:
                while True:
                    held.append(server.accept()[0])
            except OSError:  # the listening socket closed: the test is over
                pass

        threading.Thread(target=accept, daemon=True).start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}/oauth2/token"
        server.shutdown(socket.SHUT_RDWR)
    for connection in held:
        connection.close()


def test_an_endpoint_that_never_answers_is_connected_no_answer(
    silent_endpoint: str, sleeps: Sleeps, clock: FakeClock
) -> None:
    auth = CriteoAuth(
        "client-1",
        SECRET,
        token_url=silent_endpoint,
        timeout=(2.0, 0.2),
        retry=no_retries(sleeps),
        cache=TokenCache(timer=clock),
    )
    with pytest.raises(TokenRequestError) as info:
        auth.token()
    assert str(info.value) == (
        "connected to the token endpoint, no answer within 0.2 s; gave up after 1 attempts"
    )


# -- pacing in the logs: each wait at DEBUG, one INFO line a minute at most -----------------


def paced(clock: FakeClock, calls: int, per_minute: float = 60) -> RateLimiter:
    """A limiter that has paced *calls* calls, its sleeps moving *clock* on."""
    limiter = RateLimiter(per_minute, clock=clock, sleep=clock.advance)
    for _ in range(calls):
        limiter.acquire()
    return limiter


def test_each_pacing_wait_is_logged_at_debug(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="requests_criteo")
    paced(clock, 4)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == ["rate limit (60 calls/min): waiting 1.00 s"] * 3


def test_pacing_is_summed_up_at_info_once_a_minute_at_most(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="requests_criteo")
    paced(clock, 151)  # one a second: 150 waits over 150 s of the fake clock
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    summed = "s waited in all (at most one such line a minute; each wait at DEBUG)"
    assert info == [
        f"rate limit (60 calls/min): 1 call(s) paced, 1.00 {summed}",  # the first, at once
        f"rate limit (60 calls/min): 60 call(s) paced, 60.00 {summed}",
        f"rate limit (60 calls/min): 60 call(s) paced, 60.00 {summed}",
    ]
