"""httpx and requests on one token: the process cache, a FileTokenStore, a RedisTokenStore.

An auth given no cache shares the process's (here the one for the test's clock) with every
CriteoAuth of the same credentials; auths with caches of their own (as processes have) share
a token through their store. Async code never blocks its event loop on the store's lock, and
a task cancelled while it waits for that lock leaves it free. Redis is a real redis-server
(tests/redis_server.py); its tests skip without the binary, as test_redis_store.py's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
import redis
import requests

import requests_criteo
from requests_criteo import (
    CriteoAuth,
    FileTokenStore,
    MemoryTokenStore,
    StoredToken,
    TokenCache,
    TokenStore,
)
from requests_criteo.httpx import CriteoHTTPXAuth
from requests_criteo.redis_store import RedisTokenStore
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, FakeClock, held_in_another_thread, me
from .redis_server import (
    RedisServer,
    server_fixture,  # noqa: F401 - the `server` fixture
    skip_without_a_binary,
)
from .test_httpx import (
    anyio_backend,  # noqa: F401 - the fixture
    at_once,
    bearers,
    get,
    in_a_new_loop,
    make_auth,
    send,
    ticking,
)
from .test_token_deadline import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database on a real redis-server (skipped without the binary)."""
    skip_without_a_binary()
    server: RedisServer = request.getfixturevalue("server")
    client = redis.Redis.from_url(server.url)
    client.flushdb()
    yield server.url
    client.close()


class Watched(TokenStore):
    """A store that notes when a thread asks for its lock and when it gets it, and keeps
    every lock it hands out: only its holder may give it back, never the garbage collector."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner, self.clock = inner, inner.clock
        self.asked: list[float] = []
        self.got: list[float] = []
        self.handed: list[contextlib.AbstractContextManager[None]] = []

    def read(self, key: str) -> StoredToken | None:
        return self.inner.read(key)

    def write(self, key: str, token: StoredToken) -> None:
        self.inner.write(key, token)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        self.handed.append(self._lock(key))
        return self.handed[-1]

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        self.asked.append(time.monotonic())
        with self.inner.lock(key):
            self.got.append(time.monotonic())
            yield


def make_store(kind: str, request: pytest.FixtureRequest, path: Path, clock: FakeClock) -> Watched:
    """A store of *kind* whose lock gives up within 2 s (a Redis lock lives 30 s unrenewed)."""
    if kind == "memory":
        return Watched(MemoryTokenStore(clock=clock))
    if kind == "file":
        return Watched(FileTokenStore(path, clock=clock, lock_timeout=2))
    url = request.getfixturevalue("redis_url")
    return Watched(RedisTokenStore(url, clock=clock, lock_ttl=30, lock_timeout=2))


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Await until *condition* holds (polled every 10 ms), for at most *within* seconds."""
    end = time.monotonic() + within
    while not condition() and time.monotonic() < end:
        await asyncio.sleep(0.01)
    assert condition()


# -- the process cache: requests and httpx ---------------------------------------------------


@pytest.mark.parametrize("first", ["requests", "httpx"])
@pytest.mark.parametrize("requests_way", ["auth", "session"])
@pytest.mark.parametrize("httpx_way", ["client", "async_client"])
async def test_a_requests_session_and_an_httpx_client_share_the_process_cache(
    first: str, requests_way: str, httpx_way: str, fake: FakeCriteo, clock: FakeClock
) -> None:
    # No cache=: both take the process's cache for their timer, as they would for monotonic.
    def with_requests() -> int:
        if requests_way == "session":
            s = requests_criteo.session(CLIENT_ID, SECRET, token_url=fake.token_url, timer=clock)
        else:
            s = requests.Session()
            s.auth = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, timer=clock)
        with s:
            return s.get(me(fake), timeout=10).status_code

    async def with_httpx() -> int:
        auth = CriteoHTTPXAuth(CLIENT_ID, SECRET, token_url=fake.token_url, timer=clock)
        return (await send(httpx_way, auth, "GET", me(fake))).status_code

    if first == "requests":
        answers = [await anyio.to_thread.run_sync(with_requests), await with_httpx()]
    else:
        answers = [await with_httpx(), await anyio.to_thread.run_sync(with_requests)]
    assert answers == [200, 200]
    assert fake.token_requests == 1
    assert len(bearers(fake)) == 1


# -- FileTokenStore ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["requests first", "httpx first", "at once"])
@pytest.mark.parametrize("httpx_way", ["client", "async_client"])
async def test_a_file_store_gives_a_requests_auth_and_an_httpx_auth_one_token(
    order: str, httpx_way: str, fake: FakeCriteo, clock: FakeClock, tmp_path: Path
) -> None:
    # Caches and store objects of their own, as two processes of one host would have.
    path = tmp_path / "tokens.json"
    requests_auth = CriteoAuth(
        CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache(timer=clock),
        store=FileTokenStore(path, clock=clock),
    )  # fmt: skip
    httpx_auth = make_auth(fake, TokenCache(timer=clock), store=FileTokenStore(path, clock=clock))

    def with_requests() -> int:
        return requests.get(me(fake), auth=requests_auth, timeout=10).status_code

    async def with_httpx() -> int:
        return (await send(httpx_way, httpx_auth, "GET", me(fake))).status_code

    if order == "at once":
        fake.inject_token_fault(delay=0.3)
        answers = list(await asyncio.gather(anyio.to_thread.run_sync(with_requests), with_httpx()))
    elif order == "requests first":
        answers = [await anyio.to_thread.run_sync(with_requests), await with_httpx()]
    else:
        answers = [await with_httpx(), await anyio.to_thread.run_sync(with_requests)]
    assert answers == [200, 200]
    assert fake.token_requests == 1
    assert len(bearers(fake)) == 1


# -- RedisTokenStore ---------------------------------------------------------------------------


@pytest.mark.parametrize("sharing", ["the process cache", "a redis store"])
def test_requests_threads_httpx_threads_and_httpx_tasks_make_one_token_request(
    sharing: str, fake: FakeCriteo, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    # Sharing the process's cache (no cache=); or each thread with a cache and a store object
    # of its own, as a process of a fleet: then only the Redis lock, and the re-read under it,
    # can make it one request.
    url = request.getfixturevalue("redis_url") if sharing == "a redis store" else ""

    def options() -> dict[str, Any]:
        if not url:
            return {"token_url": fake.token_url, "timer": clock}
        store = RedisTokenStore(url, clock=clock, lock_ttl=10, lock_timeout=10)
        return {"token_url": fake.token_url, "cache": TokenCache(timer=clock), "store": store}

    fake.inject_token_fault(delay=0.3)
    go = threading.Barrier(16 + 8 + 1)

    def with_requests() -> list[int]:
        auth = CriteoAuth(CLIENT_ID, SECRET, **options())
        go.wait(5)
        return [requests.get(me(fake), auth=auth, timeout=10).status_code]

    def with_httpx_client() -> list[int]:
        auth = CriteoHTTPXAuth(CLIENT_ID, SECRET, **options())
        go.wait(5)
        with httpx.Client(auth=auth, timeout=10) as client:
            return [client.get(me(fake)).status_code]

    in_tasks = partial(
        in_a_new_loop, go, CriteoHTTPXAuth(CLIENT_ID, SECRET, **options()), me(fake), 64
    )
    jobs = [with_requests] * 16 + [with_httpx_client] * 8 + [in_tasks]
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = [code for f in [pool.submit(job) for job in jobs] for code in f.result()]
    assert answers == [200] * (16 + 8 + 64)
    assert fake.token_requests == 1
    assert len(bearers(fake)) == 1


# -- the store's lock, from async code -----------------------------------------------------------


async def test_64_tasks_at_a_cold_start_take_the_store_lock_once(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    store = Watched(MemoryTokenStore(clock=clock))
    fake.inject_token_fault(delay=0.2)
    auth = make_auth(fake, TokenCache(timer=clock), store=store)
    assert await at_once(auth, me(fake), 64) == [200] * 64
    assert len(store.asked) == 1  # the others awaited the one flight, not the lock, a thread each
    assert fake.token_requests == 1


@pytest.mark.parametrize("kind", ["memory", "file", "redis"])
async def test_other_tasks_keep_running_while_a_task_waits_for_the_store_lock(
    kind: str, fake: FakeCriteo, clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = make_store(kind, request, tmp_path / "tokens.json", clock)
    auth = make_auth(fake, TokenCache(timer=clock), store=store)
    released: list[float] = []
    with held_in_another_thread(partial(store.lock, auth.credentials.source.key)) as release:

        def let_go() -> None:  # from a thread: the event loop may not be running
            wait_until(lambda: len(store.asked) == 2)  # the holder, then the task's worker
            time.sleep(0.6)
            released.append(time.monotonic())
            release.set()

        letting_go = threading.Thread(target=let_go)
        async with ticking() as ticker:
            letting_go.start()
            assert (await get(auth, me(fake))).status_code == 200
        letting_go.join()
    asked, (let_go_at,) = store.asked[1], released
    assert ticker.turns(asked + 0.1, let_go_at - 0.1) > 10  # the loop ran on meanwhile
    assert fake.token_requests == 1


@pytest.mark.parametrize("kind", ["file", "redis"])
async def test_a_task_cancelled_while_waiting_for_the_store_lock_leaves_it_free(
    kind: str, fake: FakeCriteo, clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = make_store(kind, request, tmp_path / "tokens.json", clock)
    auth = make_auth(fake, TokenCache(timer=clock), store=store)
    key = auth.credentials.source.key
    with held_in_another_thread(partial(store.lock, key)):
        task = asyncio.create_task(get(auth, me(fake)))
        await until(lambda: len(store.asked) == 2)  # the holder, then the task's worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The holder has let go: the cancelled task's worker takes the lock; it must give it back.
    await until(lambda: len(store.got) == 2)

    def take_and_give_back() -> None:
        with store.lock(key):  # within the 2 s lock_timeout, or an error
            pass

    await anyio.to_thread.run_sync(take_and_give_back)
    other = make_auth(fake, TokenCache(timer=clock), store=store)
    start = time.monotonic()
    assert (await get(other, me(fake))).status_code == 200
    assert time.monotonic() - start < 1.5
    assert fake.token_requests == 1
