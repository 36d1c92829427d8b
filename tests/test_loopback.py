"""CriteoAuth and CriteoAdapter over real sockets, against FakeCriteo on 127.0.0.1.

test_auth.py and test_token_endpoint.py check the request path with ``responses``; here
the same promises are held against a real HTTP/1.1 server: many threads at once, real
connection pools, real bodies on the wire, redirects between two origins (a second
FakeCriteo on its own port plays the foreign host), faults of the token endpoint (a
raw-socket one trickles its headers past the deadline), a ``.netrc``, every log record,
``os.fork`` and the ``demo`` command. Nothing leaves 127.0.0.1; time is a FakeClock and
retry waits go to a recording ``sleep``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from requests_criteo import (
    CriteoAdapter,
    CriteoAuth,
    CriteoRetry,
    InvalidTokenResponse,
    TokenCache,
    TokenRequestError,
)
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, FakeClock, Sleeps, V, assert_no_secret, echo, me, summary

ROOT = Path(__file__).resolve().parents[1]
MAX_401_BODY = 64 * 1024
T = TypeVar("T")


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def criteo_auth(fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry) -> CriteoAuth:
    return new_auth(fake, clock, retry)


def new_auth(fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry, **kw: Any) -> CriteoAuth:
    kw.setdefault("timeout", (2.0, 5.0))
    return CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, timer=clock, retry=retry, **kw)


@contextlib.contextmanager
def adapter_session(
    auth: CriteoAuth, adapter: CriteoAdapter | None = None, **kw: Any
) -> Iterator[requests.Session]:
    """A session with a CriteoAdapter mounted on the fake's origin (trailing slash)."""
    mounted = adapter if adapter is not None else CriteoAdapter(auth, **kw)
    with requests.Session() as s:
        for origin in auth.api_origins:
            s.mount(origin + "/", mounted)
        yield s


def get(via: str, s: requests.Session, url: str, auth: CriteoAuth) -> requests.Response:
    """GET *url* the drop-in way (``auth=``) or through the session's mounted adapter."""
    if via == "auth":
        return requests.get(url, auth=auth, timeout=10)
    return s.get(url, timeout=10)


def in_threads(n: int, call: Callable[[int], T], timeout: float = 30.0) -> list[T | BaseException]:
    """Run *call(i)* in *n* threads released together; results (or exceptions) by index."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException | None] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = call(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock?"
    return [r for r in results if r is not None]


def bearers(fake: FakeCriteo) -> list[str | None]:
    return [seen.bearer for seen in fake.api_calls()]


def echoed(r: requests.Response) -> dict[str, Any]:
    attributes: dict[str, Any] = r.json()["data"]["attributes"]
    return attributes


# -- D.17: one token request for 64 threads --------------------------------------------------


def _call_64(mode: str, fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry) -> list[object]:
    if mode == "session-adapter":
        auth = new_auth(fake, clock, retry)
        with adapter_session(auth, pool_maxsize=64) as s:
            return list(in_threads(64, lambda _: summary(s.get(me(fake), timeout=10))))

    def own_auth(_: int) -> tuple[int, list[int]]:
        auth = new_auth(fake, clock, retry)  # a new CriteoAuth per call, as scripts do
        return summary(requests.get(me(fake), auth=auth, timeout=10))

    return list(in_threads(64, own_auth))


@pytest.mark.parametrize("mode", ["session-adapter", "auth-per-thread"])
def test_64_threads_at_a_cold_start_make_one_token_request(
    fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry, mode: str
) -> None:
    results = _call_64(mode, fake, clock, retry)
    assert results == [(200, [])] * 64
    assert fake.token_requests == 1
    assert fake.tokens_issued == 1
    assert fake.api_requests == 64
    assert len(set(bearers(fake))) == 1


@pytest.mark.parametrize("mode", ["session-adapter", "auth-per-thread"])
def test_64_threads_at_expiry_make_one_more_token_request(
    fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry, mode: str
) -> None:
    new_auth(fake, clock, retry).token()
    first = fake.token_requests
    clock.advance(841)  # past the refresh time (900 - 60), not yet expired at the fake
    results = _call_64(mode, fake, clock, retry)
    assert results == [(200, [])] * 64  # refreshed before use: no 401 at all
    assert (first, fake.token_requests) == (1, 2)
    assert len(set(bearers(fake))) == 1  # all 64 carried the new token


def test_a_401_storm_of_64_threads_makes_one_token_request_and_64_resends(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    with adapter_session(criteo_auth, pool_maxsize=64) as s:
        assert summary(s.get(me(fake), timeout=10)) == (200, [])
        old = fake.api_calls()[-1].bearer
        # Every thread holds the old token before it is revoked (prepared in advance).
        prepared = [
            s.prepare_request(requests.Request("GET", me(fake), auth=criteo_auth))
            for _ in range(64)
        ]
        assert {p.headers["Authorization"] for p in prepared} == {f"Bearer {old}"}
        fake.revoke()
        fake.reset_counters()
        results = in_threads(64, lambda i: summary(s.send(prepared[i], timeout=10)))
    assert results == [(200, [401])] * 64
    assert fake.token_requests == 1
    calls = bearers(fake)
    assert len(calls) == 128
    assert calls.count(old) == 64  # the 64 first sends
    resent = [b for b in calls if b != old]
    assert len(resent) == 64 and len(set(resent)) == 1  # 64 resends, all with one new token


# -- D.18: a failed fetch reaches every waiter ---------------------------------------------


@pytest.mark.parametrize("fault", ["invalid_client", "503-exhausted"])
def test_a_failed_fetch_reaches_16_waiters_promptly_then_a_call_recovers(
    fake: FakeCriteo, criteo_auth: CriteoAuth, sleeps: Sleeps, fault: str
) -> None:
    if fault == "invalid_client":
        # The delay keeps the fetch under way while the 15 others line up behind it.
        fake.inject_token_fault(400, body='{"error":"invalid_client"}', delay=0.5)
        attempts, status = 1, 400
    else:
        fake.inject_token_fault(503, delay=0.5)
        fake.inject_token_fault(503, times=4)
        attempts, status = 5, 503  # CriteoRetry(total=4): one fetch is 5 attempts

    def call(_: int) -> tuple[float, BaseException | tuple[int, list[int]]]:
        start = time.monotonic()
        try:
            result: BaseException | tuple[int, list[int]] = summary(
                requests.get(me(fake), auth=criteo_auth, timeout=10)
            )
        except Exception as exc:
            result = exc
        return time.monotonic() - start, result

    outcomes = in_threads(16, call)
    assert len(outcomes) == 16
    codes = set()
    for outcome in outcomes:
        assert isinstance(outcome, tuple)
        elapsed, error = outcome
        assert isinstance(error, TokenRequestError), error
        assert error.status_code == status
        codes.add(error.error)
        assert elapsed < 3.0  # promptly: nobody waits for the 125 s follower timeout
    if fault == "invalid_client":
        assert codes == {"invalid_client"}
    else:
        assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert fake.token_requests == attempts  # one fetch's attempts, not 16 fetches
    assert fake.api_calls() == []  # never sent without a token
    assert summary(requests.get(me(fake), auth=criteo_auth, timeout=10)) == (200, [])
    assert fake.token_requests == attempts + 1


# -- E.22: bodies on the resend -----------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 64 + b"|end"
SKIP = b"header-to-skip|"


def _body(kind: str, tmp_path: Path, stack: contextlib.ExitStack) -> tuple[Any, bytes]:
    """A request body of *kind* and the bytes that must arrive, on each send."""
    if kind == "bytesio":
        buffer = io.BytesIO(SKIP + PAYLOAD)
        buffer.seek(len(SKIP))  # positioned part-way: the resend starts here again
        return buffer, PAYLOAD
    if kind == "file":
        path = tmp_path / "upload.bin"
        path.write_bytes(SKIP + PAYLOAD)
        handle = stack.enter_context(path.open("rb"))
        handle.seek(len(SKIP))
        return handle, PAYLOAD
    if kind == "str":
        text = "name=report&period=2025-10&" + "x" * 5000
        return text, text.encode()
    assert kind == "bytes"
    return PAYLOAD, PAYLOAD


@pytest.mark.parametrize("via", ["auth", "adapter"])
@pytest.mark.parametrize("kind", ["bytesio", "file", "str", "bytes"])
def test_the_resend_carries_the_whole_body_from_its_recorded_position(
    fake: FakeCriteo, criteo_auth: CriteoAuth, tmp_path: Path, kind: str, via: str
) -> None:
    criteo_auth.token()
    fake.revoke()
    with contextlib.ExitStack() as stack, adapter_session(criteo_auth) as s:
        body, expected = _body(kind, tmp_path, stack)
        if via == "auth":
            r = requests.post(echo(fake), data=body, auth=criteo_auth, timeout=10)
        else:
            r = s.post(echo(fake), data=body, timeout=10)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
            attributes = echoed(r)
    first, resend = fake.api_calls()
    assert first.body == expected  # the first send started at the recorded position
    assert resend.body == expected  # and the resend, never empty, never a tail
    assert first.bearer != resend.bearer
    assert attributes["bodyLength"] == len(expected)
    assert attributes["bodySha256"] == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("kind", ["generator", "pipe"])
def test_a_body_that_cannot_be_replayed_is_not_resent(
    fake: FakeCriteo, criteo_auth: CriteoAuth, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.WARNING, logger="requests_criteo")
    criteo_auth.token()
    fake.revoke()
    data = b"part-1|part-2"
    with contextlib.ExitStack() as stack:
        body: Any
        if kind == "generator":
            body = (chunk for chunk in (b"part-1|", b"part-2"))
        else:  # a non-seekable stream: tell() fails, seekable() is False
            read_fd, write_fd = os.pipe()
            os.write(write_fd, data)
            os.close(write_fd)
            body = stack.enter_context(os.fdopen(read_fd, "rb"))
        assert summary(requests.post(echo(fake), data=body, auth=criteo_auth, timeout=10)) == (
            401,
            [],
        )
    (only,) = fake.api_calls()  # sent once: a resend would go out with 0 bytes
    assert only.body == data
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot be sent again" in r.getMessage() for r in warnings)
    assert fake.token_requests == 1  # no refresh wasted on a request that is not resent
    # The refused token was dropped: the next call fetches a new one and succeeds.
    assert summary(requests.post(echo(fake), data=data, auth=criteo_auth, timeout=10)) == (
        200,
        [],
    )
    assert fake.token_requests == 2


# -- E.23: stream=True and a blocking pool of one connection ------------------------------------


@pytest.mark.timeout(10)
def test_stream_resend_with_a_blocking_pool_of_one_does_not_deadlock(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    adapter = CriteoAdapter(criteo_auth, pool_connections=1, pool_maxsize=1, pool_block=True)
    with adapter_session(criteo_auth, adapter) as s:
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()
        with s.get(me(fake), stream=True, timeout=5) as r:
            assert r.status_code == 200
            assert [h.status_code for h in r.history] == [401]
            assert r.json()["data"]["id"] == CLIENT_ID
        assert summary(s.get(me(fake), stream=True, timeout=5)) == (200, [])

        # A 1 MB 401: read up to the cap, connection released, the resend still goes.
        big = b"x" * (1024 * 1024)
        fake.set_response(f"/{V}/retail-media/big", status=401, body=big)
        before = fake.token_requests
        with s.get(echo(fake, "big"), stream=True, timeout=5) as r:
            assert r.status_code == 401  # the canned 401 answers the resend too
            assert [h.status_code for h in r.history] == [401]
            assert len(r.history[0].content) <= MAX_401_BODY
            assert r.content == big
        first, resend = fake.api_calls()[-2:]
        assert first.path == resend.path == f"/{V}/retail-media/big"
        assert first.bearer != resend.bearer
        assert fake.token_requests == before + 1
        assert summary(s.get(me(fake), stream=True, timeout=5)) == (200, [])


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
def test_the_cookies_of_a_drained_401_reach_the_resend(
    fake: FakeCriteo, criteo_auth: CriteoAuth, stream: bool
) -> None:
    path = f"/{V}/retail-media/cookie"
    body = b"x" * 5000
    fake.set_response(path, status=401, body=body, headers={"Set-Cookie": "sid=abc; Path=/"})
    with requests.Session() as s:
        s.auth = criteo_auth
        with s.get(fake.url + path, stream=stream, timeout=5) as r:
            assert [h.status_code for h in r.history] == [401]
            assert r.history[0].content == body  # drained, and still there to read
    first, resend = fake.api_calls()[-2:]
    assert "Cookie" not in first.headers
    assert "sid=abc" in resend.headers.get("Cookie", "")


# -- E.24: the resend keeps the caller's options -------------------------------------------


class RecordingAdapter(CriteoAdapter):
    """Records the keyword arguments of every send (the first one and the resend)."""

    def __init__(self, auth: CriteoAuth, **kwargs: Any) -> None:
        super().__init__(auth, **kwargs)
        self.sends: list[dict[str, Any]] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.sends.append(dict(kwargs))
        return super().send(request, **kwargs)


def test_the_resend_keeps_timeout_verify_cert_proxies_and_stream(
    fake: FakeCriteo, criteo_auth: CriteoAuth, tmp_path: Path
) -> None:
    cert = (str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
    for name in cert:
        Path(name).write_text("unused over http\n")
    adapter = RecordingAdapter(criteo_auth)
    with adapter_session(criteo_auth, adapter) as s:
        criteo_auth.token()
        fake.revoke()
        with s.get(
            me(fake),
            timeout=(3.5, 7.5),
            stream=True,
            verify=False,
            cert=cert,
            proxies={"no_proxy": "127.0.0.1"},
        ) as r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
    first, resend = adapter.sends
    assert first["timeout"] == (3.5, 7.5)
    assert first["stream"] is True
    assert first["verify"] is False
    assert first["cert"] == cert
    assert first["proxies"].get("no_proxy") == "127.0.0.1"
    for key in ("timeout", "verify", "cert", "proxies", "stream"):
        assert resend[key] == first[key], key
    assert resend == first


# -- A.1: redirects --------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["auth", "adapter"])
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_another_origin_answering_401_gets_no_token(
    fake: FakeCriteo, foreign: FakeCriteo, criteo_auth: CriteoAuth, status: int, via: str
) -> None:
    fake.set_response(
        f"/{V}/retail-media/moved", status=status, headers={"Location": foreign.url + "/catch"}
    )
    foreign.set_response(
        "/catch", status=401, authorize=False, json={"errors": [{"code": "who-are-you"}]}
    )
    with adapter_session(criteo_auth) as s:
        assert summary(get(via, s, echo(fake, "moved"), criteo_auth)) == (401, [status])
    (moved,) = fake.api_calls()
    assert moved.bearer is not None  # the Criteo hop was authenticated (canned needs it)
    (caught,) = foreign.requests  # one request, no resend
    assert caught.path == "/catch"
    assert caught.header("Authorization") is None
    assert all(moved.bearer not in value for value in caught.headers.values())
    assert foreign.token_requests == 0
    assert fake.token_requests == 1  # no refresh for the foreign 401


@pytest.mark.parametrize("via", ["auth", "adapter"])
def test_a_same_origin_redirect_keeps_working(
    fake: FakeCriteo, criteo_auth: CriteoAuth, via: str
) -> None:
    fake.set_response(f"/{V}/retail-media/moved", status=302, headers={"Location": me(fake)})
    with adapter_session(criteo_auth) as s, get(via, s, echo(fake, "moved"), criteo_auth) as r:
        assert (r.status_code, [h.status_code for h in r.history]) == (200, [302])
        assert r.json()["data"]["id"] == CLIENT_ID
    moved, target = fake.api_calls()
    assert moved.bearer is not None and target.bearer == moved.bearer
    assert fake.token_requests == 1


# -- A.4: the token endpoint redirects ------------------------------------------------------


@pytest.mark.parametrize("via", ["auth", "adapter"])
@pytest.mark.parametrize("status", [307, 308])
def test_a_redirecting_token_endpoint_is_an_error_and_sends_nothing_elsewhere(
    fake: FakeCriteo, foreign: FakeCriteo, criteo_auth: CriteoAuth, status: int, via: str
) -> None:
    fake.inject_token_fault(status, headers={"Location": foreign.token_url})
    with (
        adapter_session(criteo_auth) as s,
        pytest.raises(TokenRequestError, match="redirect") as info,
    ):
        get(via, s, me(fake), criteo_auth)
    assert info.value.status_code == status
    assert foreign.requests == []  # the form, secret included, went nowhere else
    assert fake.api_calls() == []  # and the API call was not sent without a token
    assert fake.token_requests == 1
    assert_no_secret(str(info.value))


# -- C.11-13: token endpoint faults ---------------------------------------------------------


def test_503_twice_then_success(fake: FakeCriteo, criteo_auth: CriteoAuth, sleeps: Sleeps) -> None:
    fake.inject_token_fault(503, body='{"error":"temporarily_unavailable"}', times=2)
    assert summary(requests.get(me(fake), auth=criteo_auth, timeout=10)) == (200, [])
    assert fake.token_requests == 3
    assert fake.tokens_issued == 1
    assert sleeps == [0.5, 1.0]  # exponential backoff through the injected sleep
    assert fake.api_requests == 1


def test_a_dropped_connection_is_retried(
    fake: FakeCriteo, criteo_auth: CriteoAuth, sleeps: Sleeps
) -> None:
    fake.inject_token_fault(drop=True)
    assert summary(requests.get(me(fake), auth=criteo_auth, timeout=10)) == (200, [])
    assert fake.token_requests == 2
    assert fake.tokens_issued == 1
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("reset", "wait"),
    [("1700000007", 7.0), ("1700003600", 60.0)],  # the retry's wall clock is 1_700_000_000
)
def test_429_waits_as_x_ratelimit_reset_says_up_to_the_cap(
    fake: FakeCriteo, criteo_auth: CriteoAuth, sleeps: Sleeps, reset: str, wait: float
) -> None:
    fake.inject_token_fault(
        429,
        body='{"errors":[{"code":"rate-limited"}]}',
        headers={
            "x-ratelimit-limit": "10",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": reset,
        },
    )
    assert summary(requests.get(me(fake), auth=criteo_auth, timeout=10)) == (200, [])
    assert sleeps == [wait]
    assert fake.token_requests == 2


def test_a_garbage_token_answer_is_a_typed_error_and_nothing_is_cached(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    fake.inject_token_fault(
        200,
        body="<html><body>Maintenance</body></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(InvalidTokenResponse, match="not JSON"):
        requests.get(me(fake), auth=criteo_auth, timeout=10)
    assert fake.api_calls() == []
    assert summary(requests.get(me(fake), auth=criteo_auth, timeout=10)) == (200, [])
    assert fake.token_requests == 2  # fetched again: the garbage was not cached


def test_a_slow_token_endpoint_fails_within_the_deadline_and_releases_the_lock(
    fake: FakeCriteo, clock: FakeClock, retry: CriteoRetry
) -> None:
    auth = new_auth(fake, clock, retry, timeout=(1, 0.3), deadline=1.5)
    fake.inject_token_fault(delay=2.0, times=10)

    def call(_: int) -> tuple[float, object]:
        start = time.monotonic()
        try:
            result: object = summary(requests.get(me(fake), auth=auth, timeout=10))
        except Exception as exc:
            result = exc
        return time.monotonic() - start, result

    outcomes = in_threads(2, call)  # a leader and a waiter
    for outcome in outcomes:
        assert isinstance(outcome, tuple)
        elapsed, error = outcome
        assert isinstance(error, TokenRequestError), error
        assert elapsed < 1.4  # well before the 2 s the endpoint would take
    assert fake.tokens_issued == 0
    assert fake.api_calls() == []
    fake.clear_token_faults()
    # Right after, another thread's call goes through: no lock or flight was left behind.
    (after,) = in_threads(1, call)
    assert isinstance(after, tuple)
    assert after[1] == (200, [])
    assert after[0] < 1.0


# -- slow token endpoints: headers trickled past the deadline ---------------------------------


@contextlib.contextmanager
def trickling_token_endpoint() -> Iterator[tuple[str, threading.Event]]:
    """A raw socket server on 127.0.0.1 sending its status line and headers a byte per 0.2 s."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    port = srv.getsockname()[1]
    stop, accepted = threading.Event(), threading.Event()
    head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 400 + b"\r\nContent-Length: 2\r\n\r\n{}"

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                accepted.set()
                for i in range(len(head)):
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(head[i : i + 1])
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/oauth2/token", accepted
    finally:
        stop.set()
        thread.join(5)
        srv.close()


def test_a_trickling_token_endpoint_is_cut_off_at_the_deadline(
    cache: TokenCache, sleeps: Sleeps
) -> None:
    with trickling_token_endpoint() as (token_url, accepted):
        auth = CriteoAuth(
            CLIENT_ID,
            SECRET,
            token_url=token_url,
            cache=cache,
            timeout=(1, 1),
            deadline=1.5,
            retry=CriteoRetry(total=0, sleep=sleeps),
        )
        outcome: dict[str, tuple[object, float]] = {}

        def call(name: str) -> None:
            start = time.monotonic()
            try:
                result: object = auth.token()
            except BaseException as exc:
                result = exc
            outcome[name] = (result, time.monotonic() - start)

        t0 = time.monotonic()
        leader = threading.Thread(target=call, args=("leader",))
        leader.start()
        assert accepted.wait(2)
        waiter = threading.Thread(target=call, args=("waiter",))
        waiter.start()
        leader.join(4)
        waiter.join(4)
        total = time.monotonic() - t0
        assert not leader.is_alive()
        assert not waiter.is_alive()
    for name in ("leader", "waiter"):
        error, elapsed = outcome[name]
        assert isinstance(error, TokenRequestError), name
        assert elapsed < 3, name
    assert total < 3


# -- A.5: .netrc --------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["auth", "adapter"])
def test_a_netrc_entry_is_never_used_for_the_token_request(
    fake: FakeCriteo,
    criteo_auth: CriteoAuth,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login u password netrc-SENTINEL\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    # Plain requests does read it for this host: the checks below can fail.
    assert summary(requests.get(fake.url + "/plain", timeout=10))[0] == 404
    (plain,) = fake.api_calls()
    assert (plain.header("Authorization") or "").startswith("Basic ")
    fake.reset_counters()
    with adapter_session(criteo_auth) as s:
        assert summary(get(via, s, me(fake), criteo_auth)) == (200, [])
    (token_request,) = fake.token_endpoint_requests()
    assert token_request.header("Authorization") is None
    assert b"netrc-SENTINEL" not in token_request.body
    (api_call,) = fake.api_calls()
    assert (api_call.header("Authorization") or "").startswith("Bearer ")


# -- B.7-8: nothing secret in any log record -----------------------------------------------


def test_no_secret_or_token_in_any_log_record(
    fake: FakeCriteo, criteo_auth: CriteoAuth, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "requests_criteo", "oauthlib", "requests_oauthlib"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[BaseException] = []
    with adapter_session(criteo_auth) as s:
        assert summary(s.get(me(fake), timeout=10)) == (200, [])  # a fetch
        fake.revoke()
        assert summary(s.get(me(fake), timeout=10)) == (200, [401])  # a 401, refresh, resend
        fake.inject_token_fault(503)
        clock.advance(841)
        assert summary(s.get(me(fake), timeout=10)) == (200, [])  # a retried refresh
        # A refusal echoing the secret, during a 401.
        fake.inject_token_fault(
            400,
            body=json.dumps(
                {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
            ),
        )
        fake.revoke()
        with pytest.raises(TokenRequestError) as refused:
            s.get(me(fake), timeout=10)
        errors.append(refused.value)
        fake.inject_token_fault(200, body="<html>oops</html>")
        with pytest.raises(InvalidTokenResponse) as garbage:
            s.get(me(fake), timeout=10)
        errors.append(garbage.value)
        fake.inject_token_fault(drop=True, times=5)
        with pytest.raises(TokenRequestError) as unreachable:
            s.get(me(fake), timeout=10)
        errors.append(unreachable.value)
        assert summary(s.get(me(fake), timeout=10)) == (200, [])
        fake.revoke()  # a 401 that cannot be resent (generator body): a WARNING
        assert summary(s.post(echo(fake), data=iter([b"a", b"b"]), timeout=10)) == (401, [])
        assert summary(s.get(me(fake), timeout=10)) == (200, [])

    tokens = {b for b in bearers(fake) if b}
    assert len(tokens) == fake.tokens_issued == 5  # every token issued was seen on the wire
    records = caplog.records
    assert any(r.name.startswith("urllib3") for r in records)
    assert any("401 from" in r.getMessage() for r in records)
    assert any("token request failed" in r.getMessage() for r in records)
    assert any(r.levelno == logging.WARNING for r in records)
    for record in records:
        text = f"{record.getMessage()} {record.msg!r} {record.args!r} {record.exc_text or ''}"
        assert "SENTINEL" not in text  # the secret, raw or form-encoded
        assert_no_secret(text, *tokens)
    for error in errors:
        text = "".join(traceback.format_exception(error)) + repr(error)
        assert "SENTINEL" not in text
        assert_no_secret(text, *tokens)
    assert "[secure]" in str(refused.value)


# -- B.10: os.fork ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_after_fork_the_child_and_the_parent_both_work(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    with adapter_session(criteo_auth) as s:
        assert summary(s.get(me(fake), timeout=10)) == (200, [])
        token = fake.api_calls()[-1].bearer
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 2
            try:
                inherited = summary(s.get(me(fake), timeout=5))
                criteo_auth.invalidate()  # and a fetch of its own: the cache's locks work
                fetched = summary(s.get(me(fake), timeout=5))
                code = 0 if inherited == fetched == (200, []) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        _, child_inherited, child_fetched = fake.api_calls()
        assert child_inherited.bearer == token  # the child used the inherited token
        assert child_fetched.bearer not in (None, token)
        assert fake.token_requests == 2
        assert summary(s.get(me(fake), timeout=10)) == (200, [])  # the parent still works
        assert fake.api_calls()[-1].bearer == token  # with its own cached token
        assert fake.token_requests == 2
