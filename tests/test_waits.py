"""Waits you can see: a countdown on a terminal, nothing on a pipe, plain messages, quiet logs.

The command line counts down each wait of over a second on stderr when stderr is a
terminal (a 429's wait, pacing, a token-endpoint retry); the library says whether the token
endpoint could not be connected to or did not answer; pacing logs one INFO line a minute
at most. Only the two pseudo-terminal runs sleep for real (about a second each).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses

from requests_criteo import CriteoAuth, CriteoRetry, RateLimiter, TokenCache, _waits
from requests_criteo.__main__ import main
from requests_criteo._countdown import Countdown, show_waits
from requests_criteo.exceptions import TokenRequestError
from requests_criteo.testing import FakeCriteo

from .conftest import SECRET, TOKEN_URL, FakeClock, Sleeps, token_json

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


# -- every kind of wait is announced, with its reason ----------------------------------------


class Heard(list[tuple[float, str]]):
    """A watcher that records each wait it is told of."""

    def __call__(self, seconds: float, reason: str) -> Callable[[], None]:
        self.append((seconds, reason))
        return lambda: None


@pytest.fixture
def heard() -> Iterator[Heard]:
    heard = Heard()
    stop = _waits.watch(heard)
    yield heard
    stop()


def test_a_429_wait_is_announced(heard: Heard, sleeps: Sleeps) -> None:
    from urllib3.response import HTTPResponse

    retry = CriteoRetry(sleep=sleeps)
    retry.sleep(HTTPResponse(status=429, headers={"Retry-After": "7"}))
    assert heard == [(7.0, "Criteo asked to wait (HTTP 429)")]
    assert sleeps == [7.0]


def test_a_backoff_is_announced(heard: Heard, sleeps: Sleeps) -> None:
    from urllib3.response import HTTPResponse

    retry = CriteoRetry(sleep=sleeps, backoff_jitter=0.0).increment("GET", "/x", error=OSError())
    retry.sleep(HTTPResponse(status=503))
    assert heard == [(0.5, "retrying after HTTP 503")]


def test_pacing_is_announced(heard: Heard, clock: FakeClock, sleeps: Sleeps) -> None:
    limiter = RateLimiter(30, clock=clock, sleep=sleeps)
    limiter.acquire()
    limiter.acquire()
    assert heard == [(2.0, "pacing calls to 30 a minute")]


def test_a_token_retry_is_announced(
    heard: Heard, mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps
) -> None:
    mocked.post(TOKEN_URL, status=503)
    mocked.post(TOKEN_URL, json=token_json())
    auth.token()
    assert heard == [
        (0.5, "retrying the token request (the token endpoint answered HTTP 503)"),
    ]
    assert sleeps == [0.5]


def test_a_watcher_hears_of_the_end_even_when_the_sleep_fails(heard: Heard) -> None:
    ended = []
    stop = _waits.watch(lambda seconds, reason: lambda: ended.append(reason))

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            _waits.pause(3.0, "why", interrupted)
    finally:
        stop()
    assert ended == ["why"]
    _waits.pause(3.0, "after", lambda s: None)
    assert ended == ["why"]  # a stopped watcher hears nothing more


# -- the countdown, under a pseudo-terminal and through a pipe -------------------------------


class Tty(io.StringIO):
    """A terminal as far as the countdown can tell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def slow_token_endpoint(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fake whose token endpoint answers 503 "retry after 1.1 s" once; the CLI's env."""
    with FakeCriteo(clients={"client-1": SECRET}) as fake:
        fake.inject_token_fault(503, body="{}", headers={"Retry-After": "1.1"})
        yield {
            **os.environ,
            "CRITEO_CLIENT_ID": "client-1",
            "CRITEO_CLIENT_SECRET": SECRET,
            "CRITEO_TOKEN_URL": fake.token_url,
            "NO_PROXY": "127.0.0.1",
            "XDG_CACHE_HOME": str(tmp_path),  # whatever the CLI keeps, not in the user's home
        }


def run_token_command(env: dict[str, str], stderr: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "requests_criteo", "token"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )


def read_all(fd: int) -> bytes:
    """What a pseudo-terminal's other end wrote, up to its close."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_sees_a_token_retry_counted_down(slow_token_endpoint: dict[str, str]) -> None:
    import fcntl
    import pty
    import termios

    controller, terminal = pty.openpty()
    # 120 columns wide (a new pseudo-terminal has none, read as 80), so no frame is cut.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        child = run_token_command(slow_token_endpoint, stderr=terminal)
        os.close(terminal)  # the child holds the only copy: the end of its output ends ours
        err = read_all(controller).decode()
        out, _ = child.communicate(timeout=30)
    finally:
        os.close(controller)
    assert child.returncode == 0, err
    assert out.decode().count(".") == 2  # the token, on stdout alone
    reason = "retrying the token request (the token endpoint answered HTTP 503)"
    assert f"\rcriteo-auth: waiting 2 s: {reason}" in err
    assert f"\rcriteo-auth: waiting 1 s: {reason}" in err  # rewritten in place
    frame = f"criteo-auth: waiting 1 s: {reason}"
    assert "\r" + " " * len(frame) + "\r" in err  # and wiped when the wait is over


def test_a_pipe_gets_the_log_lines_and_no_countdown(slow_token_endpoint: dict[str, str]) -> None:
    child = run_token_command(slow_token_endpoint, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out.decode().count(".") == 2
    assert (
        "criteo-auth: token request failed (the token endpoint answered HTTP 503); "
        "attempt 2 in 1.10 s\n"
    ) in err.decode()
    assert "waiting" not in err.decode()
    assert "\r" not in err.decode()  # nothing rewritten in place, nothing wiped


def test_a_429_s_wait_is_counted_down_by_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()

    def sleep(seconds: float) -> None:  # sleeping moves the fake's clock on
        clock.advance(seconds)

    def unix_time() -> float:
        return 1_700_000_000.0 + clock()

    terminal = Tty()
    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "time", unix_time)
    monkeypatch.setattr(sys, "stderr", terminal)
    with FakeCriteo(clients={"client-1": SECRET}, timer=clock) as fake:
        fake.wall_clock = unix_time
        fake.rate_limit = 1
        monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
        monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert main(["request", "GET", "/2025-10/a"]) == 0
        assert main(["request", "GET", "/2025-10/b"]) == 0  # over the limit once, then waits
    assert "\rcriteo-auth: waiting 21 s: Criteo asked to wait (HTTP 429)" in terminal.getvalue()
    assert _waits._watchers == []  # the CLI stopped watching when it was done


def test_a_wait_of_a_second_or_less_is_not_shown() -> None:
    terminal = Tty()
    Countdown(terminal)(1.0, "short")()
    assert terminal.getvalue() == ""


def test_the_countdown_line_is_wiped_when_the_wait_ends() -> None:
    terminal = Tty()
    end = Countdown(terminal, prefix="cli: ", clock=lambda: 100.0)(30.0, "why")
    end()
    frame = "cli: waiting 30 s: why"
    assert terminal.getvalue() == f"\r{frame}\r{' ' * len(frame)}\r"


def test_a_frame_never_wraps_past_the_terminal_s_width() -> None:
    terminal = Tty()  # no size to ask a StringIO: 80 columns assumed
    Countdown(terminal)(5.0, "x" * 200)()
    first_frame = terminal.getvalue().split("\r")[1]
    assert first_frame.startswith("waiting 5 s: xxx")
    assert len(first_frame) == 79  # the last column left free: no wrap, "\r" stays on the line


def test_nothing_is_registered_for_a_stream_that_is_not_a_terminal() -> None:
    stop = show_waits(io.StringIO())
    assert _waits._watchers == []
    stop()
