"""Criteo's rate limits and errors for httpx: the transports that pace and retry, and
raise_for_status with Criteo's envelope. Nothing sleeps: one fake clock moves when the
retry policy or the limiter waits (see test_rate_limits.Time)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from requests_criteo import CriteoAPIError, CriteoRetry, RateLimiter, TokenCache
from requests_criteo.httpx import (
    AsyncCriteoTransport,
    CriteoHTTPXAuth,
    CriteoTransport,
    envelope,
    raise_for_status,
)
from requests_criteo.testing import FakeCriteo

from .conftest import SECRET, FakeClock
from .test_rate_limits import Time

V = "2025-10"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def t(clock: FakeClock) -> Time:
    return Time(clock)


@pytest.fixture
def fake(clock: FakeClock, t: Time) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}, lifetime=36000) as server:
        server.wall_clock = t.wall
        yield server


def auth_for(fake: FakeCriteo, clock: FakeClock) -> CriteoHTTPXAuth:
    return CriteoHTTPXAuth(
        "client-1", SECRET, token_url=fake.token_url, cache=TokenCache(timer=clock)
    )


def retry(t: Time, **options: object) -> CriteoRetry:
    return CriteoRetry(sleep=t.sleep, wall_clock=t.wall, backoff_jitter=0.0, **options)  # type: ignore[arg-type]


def client(fake: FakeCriteo, clock: FakeClock, t: Time, **options: object) -> httpx.Client:
    auth = auth_for(fake, clock)
    options.setdefault("retry", retry(t))
    return httpx.Client(auth=auth, transport=CriteoTransport(auth, **options))  # type: ignore[arg-type]


# -- the sync transport ------------------------------------------------------------------


def test_a_429_is_retried_for_any_method_after_criteos_reset(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 1
    with client(fake, clock, t) as c:
        first = c.post(f"{fake.url}/{V}/a", json={"n": 1})
        second = c.post(f"{fake.url}/{V}/b", json={"n": 2})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["data"]["attributes"]["bodyLength"] == len(b'{"n":2}')
    # The fake's minute ends at 1020 on its clock; x-ratelimit-reset rounds up: 21 s.
    assert t.slept == [21.0]
    assert fake.rate_limited == 1


def test_a_503_is_retried_for_a_get_not_for_a_post(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.set_response(f"/{V}/down", status=503)
    with client(fake, clock, t, retry=retry(t, total=2)) as c:
        assert c.get(f"{fake.url}/{V}/down").status_code == 503
        gets = fake.api_requests
        assert c.post(f"{fake.url}/{V}/down", json={}).status_code == 503
    assert gets == 3  # the GET and its 2 retries
    assert fake.api_requests == 4  # the POST once
    assert t.slept == [0.5, 1.0]  # backoff, no jitter


def test_a_streamed_body_is_never_retried(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    fake.rate_limit = 1

    def chunks() -> Iterator[bytes]:
        yield b"part"

    with client(fake, clock, t) as c:
        assert c.get(f"{fake.url}/{V}/a").status_code == 200
        assert c.post(f"{fake.url}/{V}/b", content=chunks()).status_code == 429
    assert t.slept == []


def test_calls_to_other_origins_are_neither_paced_nor_retried(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    sleeps: list[float] = []
    limiter = RateLimiter(1, clock=clock, sleep=sleeps.append)
    with FakeCriteo() as other:
        other.set_response("/elsewhere", status=429, authorize=False)
        with client(fake, clock, t, rate_limit=limiter) as c:
            statuses = [c.get(other.url + "/elsewhere").status_code for _ in range(3)]
        assert statuses == [429, 429, 429]
        assert len([r for r in other.requests if r.path == "/elsewhere"]) == 3
    assert sleeps == [] and t.slept == []
    assert limiter.stats().calls == 0


def test_the_limiter_paces_calls_and_a_429_pauses_it(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    limiter = RateLimiter(600, clock=clock, sleep=t.sleep, wall_clock=t.wall)
    fake.rate_limit = 2
    with client(fake, clock, t, rate_limit=limiter) as c:
        statuses = [c.get(f"{fake.url}/{V}/n/{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    stats = limiter.stats()
    assert (stats.calls, stats.rate_limited) == (4, 1)  # the third call's 429, then its retry
    # Two turns 0.1 s apart; the 429 paused the limiter until the reset, which the retry's
    # own wait covered: its turn came at once.
    assert t.slept == [pytest.approx(0.1), pytest.approx(0.1), pytest.approx(20.8)]


def test_reporting_paths_use_their_own_limiter(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    ordinary = RateLimiter(600, clock=clock, sleep=t.sleep)
    reporting = RateLimiter(40, clock=clock, sleep=t.sleep)
    with client(fake, clock, t, rate_limit=ordinary, reporting_rate_limit=reporting) as c:
        c.get(f"{fake.url}/{V}/statistics/report")
        c.get(f"{fake.url}/{V}/retail-media/me")
    assert (ordinary.stats().calls, reporting.stats().calls) == (1, 1)


# -- the async transport -----------------------------------------------------------------


@pytest.mark.anyio
async def test_async_a_429_is_retried_after_criteos_reset(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 1
    auth = auth_for(fake, clock)
    transport = AsyncCriteoTransport(auth, retry=retry(t))
    async with httpx.AsyncClient(auth=auth, transport=transport) as c:
        first = await c.post(f"{fake.url}/{V}/a", json={})
        second = await c.post(f"{fake.url}/{V}/b", json={})
    assert (first.status_code, second.status_code) == (200, 200)
    assert t.slept == [21.0]


class SlowTurns(RateLimiter):
    """A limiter whose turns take a while to hand out, as a far-away Redis's would."""

    def reserve(self) -> float:
        time.sleep(0.2)
        return super().reserve()


@pytest.mark.anyio
async def test_async_a_limiter_never_blocks_the_event_loop(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    limiter = SlowTurns(600, clock=clock, sleep=t.sleep)
    auth = auth_for(fake, clock)
    transport = AsyncCriteoTransport(auth, retry=retry(t), rate_limit=limiter)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    async with httpx.AsyncClient(auth=auth, transport=transport) as c:
        before = ticks
        assert (await c.get(f"{fake.url}/{V}/x")).status_code == 200
        during = ticks - before
    ticker.cancel()
    assert during >= 10  # 0.2 s of turn-taking: the ticker ran meanwhile
    assert limiter.stats().calls == 1


@pytest.mark.anyio
async def test_async_a_pacing_wait_is_an_asyncio_sleep(fake: FakeCriteo) -> None:
    auth = CriteoHTTPXAuth("client-1", SECRET, token_url=fake.token_url, cache=TokenCache())
    limiter = RateLimiter(1200)  # one turn every 0.05 s, waited for with asyncio.sleep
    transport = AsyncCriteoTransport(auth, rate_limit=limiter)
    async with httpx.AsyncClient(auth=auth, transport=transport) as c:
        statuses = [(await c.get(f"{fake.url}/{V}/{i}")).status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    stats = limiter.stats()
    assert stats.calls == 3 and 0.05 < stats.waited < 0.2


# -- raise_for_status and the envelope ---------------------------------------------------


def test_raise_for_status_gives_criteos_summary(fake: FakeCriteo, clock: FakeClock) -> None:
    fake.set_error(f"/{V}/accounts", status=403)
    auth = auth_for(fake, clock)
    with httpx.Client(auth=auth) as c:
        response = c.get(f"{fake.url}/{V}/accounts", params={"id": "7"})
        assert raise_for_status(c.get(f"{fake.url}/{V}/retail-media/me")).status_code == 200
    with pytest.raises(CriteoAPIError) as raised:
        raise_for_status(response)
    error = raised.value
    assert str(error).startswith(f"HTTP 403 Forbidden for GET {fake.url}/{V}/accounts: ")
    assert "insufficient-advertisers-permissions" in str(error)
    assert error.trace_id and f"(trace id {error.trace_id})" in str(error)
    assert (error.status_code, error.code) == (403, "insufficient-advertisers-permissions")
    assert error.response is response and error.request is response.request


def test_raise_for_status_never_shows_the_token_criteo_echoed(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    auth = auth_for(fake, clock)
    token = auth.credentials.token().access_token
    fake.set_response(
        f"/{V}/echo",
        status=400,
        json={"errors": [{"code": "bad", "title": f"token {token} refused"}]},
    )
    with httpx.Client(auth=auth) as c, pytest.raises(CriteoAPIError) as raised:
        raise_for_status(c.get(f"{fake.url}/{V}/echo"))
    assert token not in str(raised.value) and "[secure]" in str(raised.value)


def test_raise_for_status_reads_a_sync_stream_and_envelope_does_not(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    fake.set_error(f"/{V}/streamed", status=403)
    with (
        httpx.Client(auth=auth_for(fake, clock)) as c,
        c.stream("GET", f"{fake.url}/{V}/streamed") as response,
    ):
        assert not envelope(response)  # the body is the caller's to stream
        with pytest.raises(CriteoAPIError, match="insufficient-advertisers-permissions"):
            raise_for_status(response)


def test_envelope_reads_warnings_of_a_200(fake: FakeCriteo, clock: FakeClock) -> None:
    fake.set_response(f"/{V}/warned", json={"data": [], "warnings": [{"code": "deprecated"}]})
    with httpx.Client(auth=auth_for(fake, clock)) as c:
        found = envelope(c.get(f"{fake.url}/{V}/warned"))
    assert [w.code for w in found.warnings] == ["deprecated"]


def test_a_response_without_a_request_still_raises() -> None:
    with pytest.raises(CriteoAPIError, match=r"^HTTP 502 Bad Gateway$") as raised:
        raise_for_status(httpx.Response(502, content=b"<html>proxy</html>"))
    assert raised.value.status_code == 502


def test_the_requests_raise_for_status_points_to_the_httpx_one() -> None:
    import requests_criteo

    with pytest.raises(TypeError, match=r"requests_criteo\.httpx\.raise_for_status"):
        requests_criteo.raise_for_status(httpx.Response(500))  # type: ignore[arg-type]


def test_pacing_waits_are_logged_like_the_adapters(
    fake: FakeCriteo, clock: FakeClock, t: Time, caplog: pytest.LogCaptureFixture
) -> None:
    fake.rate_limit = 1
    with caplog.at_level(logging.INFO, logger="requests_criteo"), client(fake, clock, t) as c:
        c.get(f"{fake.url}/{V}/a")
        c.get(f"{fake.url}/{V}/b")
    assert "Criteo asked to wait: retrying in 21.00 s (HTTP 429)" in caplog.text


def test_the_transport_closes_what_it_wraps(fake: FakeCriteo, clock: FakeClock) -> None:
    closed = threading.Event()

    class Wrapped(httpx.HTTPTransport):
        def close(self) -> None:
            closed.set()
            super().close()

    auth = auth_for(fake, clock)
    with httpx.Client(auth=auth, transport=CriteoTransport(auth, Wrapped())):
        pass
    assert closed.is_set()


@pytest.mark.anyio
async def test_a_callers_on_429_is_told_of_each_retried_429_sync_and_async(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 1
    told: list[int] = []
    policy = retry(t, on_429=lambda answer: told.append(answer.status))
    with client(fake, clock, t, retry=policy) as c:
        assert [c.get(f"{fake.url}/{V}/{i}").status_code for i in range(2)] == [200, 200]
    clock.advance(60)  # a new minute of the fake's budget
    auth = auth_for(fake, clock)
    async with httpx.AsyncClient(
        auth=auth, transport=AsyncCriteoTransport(auth, retry=policy)
    ) as c:
        assert [(await c.get(f"{fake.url}/{V}/{i}")).status_code for i in range(2)] == [200, 200]
    assert told == [429, 429]  # as the requests adapter's CriteoRetry tells it


def test_a_retried_answers_body_is_read_only_so_far(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    read: list[list[int]] = []  # the bytes read of each answer, chunk by chunk

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            answer = super().handle_request(request)
            chunks: list[int] = []
            read.append(chunks)
            assert isinstance(answer.stream, httpx.SyncByteStream)
            inner: httpx.SyncByteStream = answer.stream

            class Stream(httpx.SyncByteStream):
                def __iter__(self) -> Iterator[bytes]:
                    for chunk in inner:
                        chunks.append(len(chunk))
                        yield chunk

                def close(self) -> None:
                    inner.close()

            return httpx.Response(answer.status_code, headers=answer.headers, stream=Stream())

    fake.set_response(f"/{V}/big", status=503, body=b"x" * (1024 * 1024))
    auth = auth_for(fake, clock)
    transport = CriteoTransport(auth, Counting(), retry=retry(t, total=1))
    with httpx.Client(auth=auth, transport=transport) as c:
        r = c.get(f"{fake.url}/{V}/big")
    assert r.status_code == 503 and len(r.content) == 1024 * 1024  # the last one, whole
    first, last = read[-2], read[-1]
    assert 64 * 1024 < sum(first) <= 64 * 1024 + max(first)  # dropped after 64 KiB
    assert sum(last) == 1024 * 1024
    assert t.slept == [0.5]
