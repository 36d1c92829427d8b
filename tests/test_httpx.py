"""httpx, sync and async: where the token goes, the 401 resend, one cache for threads, tasks
and event loops, and the token request carried by httpx from async code.

Against FakeCriteo on 127.0.0.1 (another one is the foreign origin), each auth on a cache of its
own, in the four ways: on an ``httpx.Client`` or per request, and the same on an AsyncClient.
Sharing with requests and the stores (file, Redis) are in test_httpx_stores.py.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import anyio.to_thread
import httpx
import pytest
import requests

from requests_criteo import (
    ConsentRequiredError,
    CriteoAuth,
    CriteoAuthError,
    CriteoRetry,
    InvalidTokenResponse,
    TokenCache,
    TokenRequestError,
)
from requests_criteo.httpx import CriteoHTTPXAuth
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, Sleeps, V, echo, me
from .test_secrets import ECHO, assert_carries_no_secret, assert_hidden, captured
from .test_token_deadline import HEADERS, TricklingEndpoint, wait_until

pytestmark = pytest.mark.anyio

#: The ways an httpx user authenticates: on the client or per request, sync or async.
WAYS = ["client", "per_request", "async_client", "async_per_request"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_auth(fake: FakeCriteo, cache: TokenCache, **options: Any) -> CriteoHTTPXAuth:
    """An httpx auth for the loopback *fake* (unless given another token_url), on *cache*."""
    options = {"token_url": fake.token_url, "timeout": (2.0, 5.0), **options}
    return CriteoHTTPXAuth(CLIENT_ID, SECRET, cache=cache, **options)


@pytest.fixture
def httpx_auth(fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry) -> CriteoHTTPXAuth:
    return make_auth(fake, cache, retry=retry)


async def send(way: str, auth: httpx.Auth, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """*method* *url* with *auth* given the *way* named; a sync client runs in a worker thread."""
    client_auth = auth if way.endswith("client") else None
    if client_auth is None:
        kwargs["auth"] = auth
    if way.startswith("async"):
        async with httpx.AsyncClient(auth=client_auth, timeout=10) as client:
            return await client.request(method, url, **kwargs)

    def in_thread() -> httpx.Response:
        with httpx.Client(auth=client_auth, timeout=10) as client:
            return client.request(method, url, **kwargs)

    return await anyio.to_thread.run_sync(in_thread)


async def get(auth: httpx.Auth, url: str, **kwargs: Any) -> httpx.Response:
    """GET *url* through an ``httpx.AsyncClient(auth=auth)``: the async token path."""
    return await send("async_client", auth, "GET", url, **kwargs)


def statuses(r: httpx.Response) -> tuple[int, list[int]]:
    return r.status_code, [h.status_code for h in r.history]


async def at_once(auth: httpx.Auth, url: str, count: int) -> list[int]:
    """The statuses of *count* GETs of *url* sent at once, a task each, on one AsyncClient."""
    async with httpx.AsyncClient(auth=auth, timeout=10) as c:
        return [r.status_code for r in await asyncio.gather(*(c.get(url) for _ in range(count)))]


def in_a_new_loop(go: threading.Barrier, auth: httpx.Auth, url: str, count: int) -> list[int]:
    """:func:`at_once` in an event loop of this thread's own, once *go* lets every thread go."""
    go.wait(5)
    return asyncio.run(at_once(auth, url, count))


def bearers(fake: FakeCriteo) -> set[str | None]:
    """The bearer tokens *fake*'s API received."""
    return {seen.bearer for seen in fake.api_calls()}


class Ticker:
    """A task that notes when it gets a turn on the event loop."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def run(self) -> None:
        while True:
            self.times.append(time.monotonic())
            await asyncio.sleep(0)

    def turns(self, start: float, end: float) -> int:
        """The turns it had from *start* to *end* (``time.monotonic`` seconds)."""
        return bisect.bisect(self.times, end) - bisect.bisect(self.times, start)


@contextlib.asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    """A :class:`Ticker` ticking on this event loop during the block."""
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)
    try:
        yield ticker
    finally:
        task.cancel()


# -- 1. the token only to Criteo's origins -----------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
async def test_the_token_goes_to_the_criteo_origin_and_not_to_another_port(
    way: str, fake: FakeCriteo, foreign: FakeCriteo, cache: TokenCache
) -> None:
    auth = make_auth(fake, cache, api_origins=[fake.url])
    assert statuses(await send(way, auth, "GET", me(fake))) == (200, [])
    assert statuses(await send(way, auth, "GET", echo(foreign)))[0] == 401
    assert fake.api_calls()[-1].bearer is not None
    assert [seen.bearer for seen in foreign.requests] == [None]


async def decorated(auth: CriteoHTTPXAuth, url: str) -> list[httpx.Request]:
    """The request for *url* as the sync and the async flows first send it."""
    sync_flow = auth.sync_auth_flow(httpx.Request("GET", url))
    async_flow = auth.async_auth_flow(httpx.Request("GET", url))
    try:
        return [next(sync_flow), await anext(async_flow)]
    finally:
        sync_flow.close()
        await async_flow.aclose()


async def test_only_the_exact_scheme_host_and_port_get_the_token(
    fake: FakeCriteo, cache: TokenCache
) -> None:
    auth = make_auth(fake, cache, api_origins=[fake.url])
    port, path = urlsplit(fake.url).port or 80, f"/{V}/retail-media/me"
    look_alikes = [
        f"https://127.0.0.1:{port}{path}",
        f"http://127.0.0.1:{port ^ 1}{path}",
        f"http://127.0.0.2:{port}{path}",
        f"http://localhost:{port}{path}",
        f"http://127.0.0.1.evil.example:{port}{path}",
        f"http://127.0.0.1:{port}@evil.example{path}",
    ]
    for url in look_alikes:
        for request in await decorated(auth, url):
            assert "Authorization" not in request.headers, url
    assert fake.token_requests == 0
    for request in await decorated(auth, me(fake)):
        assert request.headers["Authorization"].startswith("Bearer ")


async def test_the_token_endpoint_itself_never_gets_a_bearer_token(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    # As CriteoAuth promises (test_origins.py): the token URL is on the API origin, yet
    # a request to it (a hand-made token request through the same client) carries no token.
    await get(httpx_auth, me(fake))
    for request in await decorated(httpx_auth, fake.token_url):
        assert "Authorization" not in request.headers


@pytest.mark.parametrize("way", WAYS)
async def test_a_redirect_from_another_origin_into_criteo_carries_no_token(
    way: str, fake: FakeCriteo, foreign: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    foreign.set_response("/img.png", status=302, headers={"Location": me(fake)}, authorize=False)
    r = await send(way, httpx_auth, "GET", foreign.url + "/img.png", follow_redirects=True)
    assert statuses(r) == (401, [302])  # returned as it is: not refreshed, not resent
    assert [seen.bearer for seen in fake.api_calls()] == [None]
    assert fake.token_requests == 0


@pytest.mark.parametrize("way", WAYS)
async def test_a_redirect_within_the_criteo_origin_keeps_the_token(
    way: str, fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.set_response(f"/{V}/old", status=307, headers={"Location": me(fake)})
    r = await send(way, httpx_auth, "GET", f"{fake.url}/{V}/old", follow_redirects=True)
    assert statuses(r) == (200, [307])
    first, second = fake.api_calls()
    assert first.bearer is not None and second.bearer == first.bearer


@pytest.mark.parametrize("way", WAYS)
async def test_a_401_from_another_origin_after_a_redirect_is_not_refreshed(
    way: str, fake: FakeCriteo, foreign: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    # RELIABILITY A.1: the refused token is not Criteo's to judge there; a refresh here
    # would let any site Criteo redirects to drop the process's token at each call.
    fake.set_response(f"/{V}/away", status=302, headers={"Location": echo(foreign)})
    r = await send(way, httpx_auth, "GET", f"{fake.url}/{V}/away", follow_redirects=True)
    assert statuses(r) == (401, [302])
    assert fake.token_requests == 1 and fake.api_requests == 1
    assert [seen.bearer for seen in foreign.requests] == [None]


# -- 1. the 401 resend -------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
async def test_a_401_is_refreshed_and_resent_once_with_the_401_in_history(
    way: str, fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    assert statuses(await send(way, httpx_auth, "GET", me(fake))) == (200, [])
    fake.revoke()
    assert statuses(await send(way, httpx_auth, "GET", me(fake))) == (200, [401])
    assert fake.token_requests == 2
    _, refused, resent = fake.api_calls()
    assert refused.bearer is not None and resent.bearer not in (None, refused.bearer)


@pytest.mark.parametrize(
    ("status", "returned", "sent"),
    [(401, (401, [401]), (2, 2)), (403, (403, []), (1, 1))],
    ids=["a second 401 after the resend", "a 403, never refreshed"],
)
@pytest.mark.parametrize("way", WAYS)
async def test_a_refusal_that_a_new_token_does_not_cure_is_returned_without_a_loop(
    way: str, status: int, returned: tuple[int, list[int]], sent: tuple[int, int],
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth,
) -> None:  # fmt: skip
    if status == 401:  # whatever the token
        fake.set_response(f"/{V}/refused", status=401, json={"errors": []}, authorize=False)
    else:
        fake.set_error(f"/{V}/refused", status=status)
    r = await send(way, httpx_auth, "GET", f"{fake.url}/{V}/refused")
    assert statuses(r) == returned
    assert (fake.token_requests, fake.api_requests) == sent


BODIES: dict[str, dict[str, Any]] = {
    "bytes": {"content": b"\x00binary\xffpayload" * 100},
    "json": {"json": {"name": "Été", "ids": [1, 2]}},
    "form": {"data": {"a": "1", "b": "+/="}},
}


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("way", WAYS)
async def test_a_body_that_can_be_sent_again_is_resent_intact(
    way: str, body: str, fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    await send(way, httpx_auth, "GET", me(fake))
    fake.revoke()
    r = await send(way, httpx_auth, "POST", echo(fake), **BODIES[body])
    assert statuses(r) == (200, [401])
    _, refused, resent = fake.api_calls()
    assert refused.body == resent.body == r.request.content != b""
    assert r.json()["data"]["attributes"]["bodySha256"] == hashlib.sha256(resent.body).hexdigest()


def streamed_body(way: str) -> Any:
    """A body httpx cannot send twice: a generator, async for an async client."""
    if way.startswith("async"):

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            yield b"second"

        return chunks()
    return (chunk for chunk in (b"first,", b"second"))


@pytest.mark.parametrize("way", WAYS)
async def test_a_streamed_body_is_not_resent_and_the_401_comes_back_with_a_warning(
    way: str, fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="requests_criteo")
    await send(way, httpx_auth, "GET", me(fake))
    fake.revoke()
    url = echo(fake) + "?advertiserId=4242"
    r = await send(way, httpx_auth, "POST", url, content=streamed_body(way))
    assert statuses(r) == (401, [])
    assert fake.api_calls()[-1].body == b"first,second"
    assert (fake.token_requests, fake.api_requests) == (1, 2)
    (warning,) = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert warning.name == "requests_criteo" and "cannot be sent again" in warning.getMessage()
    assert "4242" not in warning.getMessage()  # a query may carry ids


class Gate(httpx.AsyncBaseTransport):
    """Holds the first *count* requests until all have come, then lets them go together but
    for the last one, which waits for :attr:`late`."""

    def __init__(self, count: int) -> None:
        self.inner, self.waiting = httpx.AsyncHTTPTransport(), count
        self.open, self.late = asyncio.Event(), asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.waiting > 0:
            self.waiting -= 1
            last = self.waiting == 0
            if last:
                self.open.set()
            await asyncio.wait_for((self.late if last else self.open).wait(), 10)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_401_storm_of_64_tasks_makes_one_token_request_and_64_resends(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    await get(httpx_auth, me(fake))
    fake.revoke()
    fake.reset_counters()
    gate = Gate(64)
    async with httpx.AsyncClient(auth=httpx_auth, transport=gate, timeout=10) as client:
        tasks = [asyncio.create_task(client.get(me(fake))) for _ in range(64)]
        # 63 refused at once; the last refused once the new token is cached (not dropped).
        await anyio.to_thread.run_sync(wait_until, lambda: sum(t.done() for t in tasks) == 63)
        gate.late.set()
        answers = await asyncio.gather(*tasks)
    assert [statuses(r) for r in answers] == [(200, [401])] * 64
    assert (fake.token_requests, fake.api_requests) == (1, 128)
    assert len(bearers(fake)) == 2


# -- 2. one cache for both worlds --------------------------------------------------------------


async def test_64_tasks_at_a_cold_start_make_one_token_request(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(delay=0.2)  # all 64 ask while the request is under way
    assert await at_once(httpx_auth, me(fake), 64) == [200] * 64
    assert fake.token_requests == 1
    assert len(bearers(fake)) == 1


async def test_other_tasks_keep_running_while_the_token_request_is_under_way(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(delay=0.6)
    async with ticking() as ticker, httpx.AsyncClient(auth=httpx_auth, timeout=10) as client:
        start = time.monotonic()
        assert (await client.get(me(fake))).status_code == 200
        end = time.monotonic()
    assert end - start >= 0.6
    assert ticker.turns(end - 0.5, end - 0.2) > 10  # amid the fetch, the loop ran on


def test_two_event_loops_in_two_threads_make_one_token_request(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(delay=0.3)
    go = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        loops = [pool.submit(in_a_new_loop, go, httpx_auth, me(fake), 16) for _ in range(2)]
        assert [f.result() for f in loops] == [[200] * 16] * 2
    assert fake.token_requests == 1
    assert len(bearers(fake)) == 1


async def test_a_cancelled_task_getting_the_token_cancels_no_one_else(
    fake: FakeCriteo, cache: TokenCache, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(delay=1.0)
    requests_auth = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=cache)

    def in_a_thread() -> object:
        try:
            return requests.get(me(fake), auth=requests_auth, timeout=10).status_code
        except BaseException as exc:  # what a thread of the process would be handed
            return exc

    async with httpx.AsyncClient(auth=httpx_auth, timeout=10) as client:
        leader = asyncio.create_task(client.get(me(fake)))
        await anyio.to_thread.run_sync(wait_until, lambda: fake.token_requests == 1)
        follower = asyncio.create_task(client.get(me(fake)))
        thread = asyncio.create_task(anyio.to_thread.run_sync(in_a_thread))
        await asyncio.sleep(0.2)  # both wait for the leader's token request
        leader.cancel()
        outcomes = await asyncio.gather(follower, thread, return_exceptions=True)
    assert leader.cancelled()
    for outcome in outcomes:
        assert not isinstance(outcome, asyncio.CancelledError)
        status = outcome.status_code if isinstance(outcome, httpx.Response) else outcome
        assert status == 200 or isinstance(status, CriteoAuthError)


# -- 3. the token request, carried by httpx from async code ------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_a_redirect_from_the_token_endpoint_is_an_error_and_is_not_followed(
    status: int, fake: FakeCriteo, foreign: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(status, headers={"Location": foreign.token_url})
    with pytest.raises(TokenRequestError, match="redirect") as info:
        await get(httpx_auth, me(fake))
    assert info.value.status_code == status
    assert foreign.requests == []
    assert (fake.token_requests, fake.api_requests) == (1, 0)


async def test_the_token_request_goes_through_httpx_and_never_uses_a_netrc_entry(
    fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login u password netrc-SENTINEL\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))  # httpx versions that read ~/.netrc
    assert (await get(httpx_auth, me(fake))).status_code == 200
    (token_request,) = fake.token_endpoint_requests()
    assert (token_request.header("User-Agent") or "").startswith("python-httpx/")
    assert quote_plus(SECRET) in token_request.body.decode()  # + and / encoded
    assert token_request.header("Authorization") is None
    assert b"netrc-SENTINEL" not in token_request.body


@pytest.mark.parametrize("flow", ["sync", "async"])
async def test_429_and_503_are_retried_with_the_same_waits_as_requests(
    flow: str, fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry, sleeps: Sleeps
) -> None:
    fake.inject_token_fault(429, headers={"x-ratelimit-reset": "1700000007"})  # in 7 s
    fake.inject_token_fault(503, times=2)
    way = "client" if flow == "sync" else "async_client"
    r = await send(way, make_auth(fake, cache, retry=retry), "GET", me(fake))
    assert r.status_code == 200
    assert fake.token_requests == 4
    assert sleeps == [7.0, 1.0, 2.0]  # called as given, from async code too: nothing slept


async def test_a_wait_between_token_requests_keeps_the_event_loop_running(
    fake: FakeCriteo, cache: TokenCache
) -> None:
    auth = make_auth(fake, cache, retry=CriteoRetry(backoff_factor=0.6, backoff_jitter=0.0))
    fake.inject_token_fault(503)
    async with ticking() as ticker:
        start = time.monotonic()
        assert (await get(auth, me(fake))).status_code == 200
        end = time.monotonic()
    assert fake.token_requests == 2
    assert end - start >= 0.6
    assert ticker.turns(end - 0.5, end - 0.2) > 10  # time.sleep became asyncio.sleep


DEADLINE = 0.6


@pytest.mark.parametrize("endpoint", ["silent", "head", "body"])
async def test_a_token_endpoint_that_never_finishes_is_given_up_at_the_deadline(
    endpoint: str, fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    with contextlib.ExitStack() as stack:
        if endpoint == "silent":
            fake.inject_token_fault(delay=30)
            token_url = fake.token_url
        else:  # a byte per tick: every read timeout is reset, only the deadline ends it
            token_url = stack.enter_context(TricklingEndpoint(endpoint)).url
        auth = make_auth(fake, cache, token_url=token_url, api_origins=[fake.url], retry=retry,
                         timeout=(5.0, 5.0), deadline=DEADLINE)  # fmt: skip
        start = time.monotonic()
        with pytest.raises(TokenRequestError, match="deadline"):
            await get(auth, me(fake))
        took = time.monotonic() - start
    assert DEADLINE - 0.05 <= took < DEADLINE + 1.0
    assert fake.api_requests == 0


class FloodingEndpoint(TricklingEndpoint):
    """A token endpoint answering 200 with no length and a body that never ends, at once."""

    def _trickle(self, conn: socket.socket) -> bool:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(HEADERS)
            while not self._stop.is_set():
                conn.sendall(b'{"access_token": "' + b"x" * 8192)
        return True


@pytest.mark.parametrize("length", ["declared", "undeclared"])
async def test_an_oversized_token_answer_is_refused_after_a_capped_read(
    length: str, fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    with contextlib.ExitStack() as stack:
        if length == "declared":
            body = json.dumps({"access_token": "x" * 100_000, "token_type": "Bearer"})
            fake.inject_token_fault(200, body=body, headers={"Content-Type": "application/json"})
            token_url = fake.token_url
        else:
            token_url = stack.enter_context(FloodingEndpoint("body")).url
        auth = make_auth(fake, cache, token_url=token_url, api_origins=[fake.url], retry=retry)
        start = time.monotonic()
        with pytest.raises(InvalidTokenResponse):
            await get(auth, me(fake))
        assert time.monotonic() - start < 2.0  # read up to the cap, not to the deadline
    assert fake.api_requests == 0


WRONG = "wrong+SENTINEL/secret=="
REFRESH = "refresh+SENTINEL/unknown"


def refused_auth(case: str, fake: FakeCriteo, cache: TokenCache) -> CriteoHTTPXAuth:
    """An auth the token endpoint refuses, built here: no secret is a local of the test."""
    if case == "wrong secret":
        return CriteoHTTPXAuth(CLIENT_ID, WRONG, token_url=fake.token_url, cache=cache)
    refresh_token = REFRESH if case == "refused refresh token" else None
    return make_auth(fake, cache, grant="authorization_code", refresh_token=refresh_token)


@pytest.mark.parametrize(
    ("case", "error", "code", "sent"),
    [
        ("wrong secret", TokenRequestError, "invalid_client", 1),
        ("no refresh token", ConsentRequiredError, None, 0),
        ("refused refresh token", ConsentRequiredError, "invalid_grant", 1),
    ],
)
async def test_a_refusal_is_a_typed_error_with_its_oauth_code(
    case: str, error: type[Exception], code: str | None, sent: int, fake: FakeCriteo,
    cache: TokenCache,
) -> None:  # fmt: skip
    with pytest.raises(TokenRequestError) as info:
        await get(refused_auth(case, fake, cache), me(fake))
    assert type(info.value) is error and info.value.error == code
    assert (fake.token_requests, fake.api_requests) == (sent, 0)
    assert_carries_no_secret(info.value)
    report = captured(info.value)  # before the loop: its variable is a local of this frame
    for secret in (WRONG, REFRESH):
        assert_hidden(report, secret)


FAULTS: dict[str, dict[str, Any]] = {
    "refusal echoing the form": {"status": 400, "body": json.dumps({"error": ECHO})},
    "description echoing it": {"status": 401, "body": json.dumps({"error_description": ECHO})},
    "html echoing it": {"status": 200, "body": f"<html>{ECHO}</html>"},
    "redirect echoing it": {"status": 307, "headers": {"Location": f"http://x.invalid/?{ECHO}"}},
    "dropped connections": {"drop": True, "times": 10},
    "unavailable": {"status": 503, "body": ECHO, "times": 10},
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_no_token_request_error_carries_the_secret(
    fault: str, fake: FakeCriteo, httpx_auth: CriteoHTTPXAuth
) -> None:
    fake.inject_token_fault(**FAULTS[fault])
    with pytest.raises(CriteoAuthError) as info:
        await get(httpx_auth, me(fake))
    assert_carries_no_secret(info.value)
    for text in (repr(info.value), str(info.value), repr(httpx_auth)):
        assert_hidden(text)


def test_the_async_token_request_trusts_the_ca_bundle_requests_would(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import certifi

    from requests_criteo.httpx import _tls

    first = certifi.contents().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text(first)
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        assert _tls().cert_store_stats()["x509_ca"] > 1  # certifi's, by default
        monkeypatch.setenv(variable, str(bundle))
        assert _tls().cert_store_stats()["x509_ca"] == 1  # the corporate bundle only
