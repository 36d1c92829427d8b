"""The single flight when tasks lead it: a leader that never comes back, a cancelled or
closed one, and blocking code inside the leader's own event loop. TokenCache used directly,
with fetch functions of the test's own; no network."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from requests_criteo import TokenCache, TokenRequestError, TokenStoreError
from requests_criteo._cache import Token
from requests_criteo.stores import MemoryTokenStore

from .conftest import held_in_another_thread

KEY = ("https://api.criteo.com/oauth2/token", "client-1", "fp", "client_credentials", "default")


def token(name: str) -> Token:
    return Token(f"access-{name}", lifetime=900, obtained_at=time.monotonic())


def test_a_follower_giving_up_lets_the_next_caller_lead_a_new_flight() -> None:
    # The leader never comes back (a task whose event loop was closed mid-fetch).
    cache, stuck, leading = TokenCache(), threading.Event(), threading.Event()

    def never() -> Token:
        leading.set()
        stuck.wait(10)
        return token("late")

    leader = threading.Thread(target=cache.get_or_fetch, args=(KEY, never, 10))
    leader.start()
    try:
        assert leading.wait(5)
        with pytest.raises(TokenRequestError, match=r"gave up after 0\.1 s"):
            cache.get_or_fetch(KEY, lambda: token("follower"), 0.1)
        # Not another wait behind the same stuck leader: this caller leads, at once.
        assert cache.get_or_fetch(KEY, lambda: token("next"), 0.1).access_token == "access-next"
    finally:
        stuck.set()
        leader.join(5)


def test_a_task_leader_closed_with_its_loop_hands_followers_a_new_flight() -> None:
    cache, loop = TokenCache(), asyncio.new_event_loop()

    async def forever() -> Token:
        await asyncio.Event().wait()
        return token("never")  # pragma: no cover - never reached

    leader = loop.create_task(cache.aget_or_fetch(KEY, forever, 10))
    loop.run_until_complete(asyncio.sleep(0.01))  # the task leads, awaiting its fetch
    got: list[Token] = []
    follower = threading.Thread(
        target=lambda: got.append(cache.get_or_fetch(KEY, lambda: token("own"), 10))
    )
    follower.start()
    loop.close()  # with the task pending: the garbage collector closes its coroutine
    del leader
    gc.collect()
    follower.join(5)
    assert [t.access_token for t in got] == ["access-own"]


def test_blocking_code_in_the_leading_tasks_loop_is_refused_at_once() -> None:
    cache = TokenCache()

    async def main() -> tuple[str, float, str]:
        release = asyncio.Event()

        async def slow() -> Token:
            await release.wait()
            return token("task")

        leader = asyncio.create_task(cache.aget_or_fetch(KEY, slow, 10))
        await asyncio.sleep(0)  # the task now leads, awaiting its token request
        # A sync client called in this loop: waiting for the task would stop the loop.
        started = time.monotonic()
        with pytest.raises(TokenRequestError, match="use the async client") as refused:
            cache.get_or_fetch(KEY, lambda: token("sync"), 10)
        took = time.monotonic() - started
        release.set()
        return str(refused.value), took, (await leader).access_token

    message, took, leaders = asyncio.run(main())
    assert took < 1.0 and leaders == "access-task"
    assert "inside the event loop" in message


def test_the_memory_stores_lock_is_given_up_on_after_its_timeout() -> None:
    store = MemoryTokenStore(lock_timeout=0.1)
    with (
        held_in_another_thread(lambda: store.lock("k")),
        pytest.raises(TokenStoreError, match=r"gave up after 0\.1 s waiting"),
        store.lock("k"),
    ):
        pass  # pragma: no cover - never reached
    with store.lock("k"):  # free again once the holder lets go
        pass


def test_a_sync_requests_call_inside_the_loop_of_an_httpx_task_getting_the_token_fails_fast() -> (
    None
):
    import httpx
    import requests

    from requests_criteo import CriteoAuth
    from requests_criteo.httpx import CriteoHTTPXAuth
    from requests_criteo.testing import FakeCriteo

    with FakeCriteo() as fake:
        fake.inject_token_fault(delay=0.5)
        cache = TokenCache()
        options = {"token_url": fake.token_url, "cache": cache}
        sync_auth = CriteoAuth(fake.CLIENT_ID, fake.CLIENT_SECRET, **options)  # type: ignore[arg-type]
        async_auth = CriteoHTTPXAuth(fake.CLIENT_ID, fake.CLIENT_SECRET, **options)  # type: ignore[arg-type]
        me = fake.url + "/2025-10/retail-media/me"

        async def main() -> tuple[float, int]:
            async with httpx.AsyncClient(auth=async_auth) as client:
                task = asyncio.create_task(client.get(me))
                while fake.token_requests == 0:  # the task now holds the flight
                    await asyncio.sleep(0.01)
                started = time.monotonic()
                with pytest.raises(TokenRequestError, match="use the async client"):
                    requests.get(me, auth=sync_auth, timeout=5)
                took = time.monotonic() - started
                return took, (await task).status_code

        took, status = asyncio.run(main())
    assert took < 0.5 and status == 200
    assert fake.token_requests == 1
