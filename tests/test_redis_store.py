"""RedisTokenStore against a real redis-server: fleets, dead lock holders, outages."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from requests_criteo import CriteoAuth, CriteoAuthError, StoredToken, TokenCache
from requests_criteo.redis_store import RedisTokenStore
from requests_criteo.testing import FakeCriteo

from .conftest import (
    SECRET,
    TOKEN,
    FakeClock,
    assert_no_secret,
    authorize,
    fleet_worker,
    held_in_another_thread,
    left_in_a_forked_child,
    wait_for_child,
)
from .redis_server import (
    REDIS_SERVER,
    RedisServer,
    server_fixture,  # noqa: F401 - the `server` fixture
    skip_without_a_binary,
)

skip_without_a_binary()  # (redis-py is in the test extra: only the binary may lack)

REFRESH = "refresh-SENTINEL"


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(server.url)
    c.flushdb()
    yield c
    c.close()


@pytest.fixture
def store(server: RedisServer, client: redis.Redis, clock: FakeClock) -> RedisTokenStore:
    return RedisTokenStore(server.url, clock=clock, lock_ttl=2, lock_timeout=5)


def stored(
    clock: FakeClock, access: str | None = TOKEN, refresh: str | None = None, lifetime: float = 900
) -> StoredToken:
    return StoredToken(access, lifetime, clock(), refresh)


def test_read_write_delete_with_px_expiry(
    store: RedisTokenStore, client: redis.Redis, clock: FakeClock
) -> None:
    assert store.read("c/client_credentials/x") is None
    store.write("c/client_credentials/x", stored(clock))
    assert store.read("c/client_credentials/x") == stored(clock)
    (name,) = client.keys("requests_criteo:token:*")
    assert 899_000 < client.pttl(name) <= 900_000
    store.delete("c/client_credentials/x")
    assert store.read("c/client_credentials/x") is None
    assert client.keys("*") == []


def test_refresh_tokens_outlive_access_tokens(
    store: RedisTokenStore, client: redis.Redis, clock: FakeClock
) -> None:
    key = "c/authorization_code/default/x"
    store.write(key, stored(clock, refresh=REFRESH))
    (refresh_name,) = client.keys("requests_criteo:refresh:*")
    assert client.pttl(refresh_name) == -1  # no expiry
    store.write(key, stored(clock, access=None, refresh=REFRESH))
    assert client.keys("requests_criteo:token:*") == []
    assert store.read(key) == StoredToken(None, 0.0, 0.0, REFRESH)


def test_an_expired_token_is_not_written(
    store: RedisTokenStore, client: redis.Redis, clock: FakeClock
) -> None:
    token = stored(clock)
    clock.advance(1000)
    store.write("k", token)
    assert client.keys("*") == []


def test_keys_are_namespaced_and_hold_no_secret(
    store: RedisTokenStore, client: redis.Redis, clock: FakeClock
) -> None:
    store.write("client-1/authorization_code/acme/abc", stored(clock, refresh=REFRESH))
    with store.lock("client-1/authorization_code/acme/abc"):
        keys = [k.decode() if isinstance(k, bytes) else k for k in client.keys("*")]
    assert len(keys) == 3
    assert all(k.startswith("requests_criteo:") for k in keys)
    for k in keys:
        assert_no_secret(k, REFRESH, "client-1", "acme")
    assert_no_secret(repr(store), REFRESH)


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:hunter2-SENTINEL@cache.internal:6380/2",
        "redis://cache.internal:6380/2?password=hunter2-SENTINEL",
        "rediss://:hunter2-SENTINEL@cache.internal/2",
    ],
)
def test_the_repr_shows_where_but_no_password(url: str) -> None:
    text = repr(RedisTokenStore(url))
    assert "cache.internal" in text
    assert "hunter2" not in text


def test_garbage_in_redis_is_not_a_token(store: RedisTokenStore, client: redis.Redis) -> None:
    client.set(store._name("token", "k"), b"{not json")
    assert store.read("k") is None
    client.set(store._name("token", "k"), b'{"access_token": 5}')
    assert store.read("k") is None


def test_a_client_with_decoded_responses(
    server: RedisServer, client: redis.Redis, clock: FakeClock
) -> None:
    decoded = redis.Redis.from_url(server.url, decode_responses=True)
    store = RedisTokenStore(decoded, clock=clock)
    store.write("k", stored(clock, refresh=REFRESH))
    assert store.read("k") == stored(clock, refresh=REFRESH)
    decoded.close()
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(store)


def test_pickles_by_url(store: RedisTokenStore, clock: FakeClock) -> None:
    store.write("k", stored(clock))
    copy = pickle.loads(pickle.dumps(store))
    assert copy.read("k") == stored(clock)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((42,), {}, TypeError),
        (("redis://x",), {"prefix": ""}, ValueError),
        (("redis://x",), {"lock_ttl": 0}, ValueError),
    ],
)
def test_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RedisTokenStore(*args, **kwargs)


def test_the_lock_is_exclusive_and_owned(
    store: RedisTokenStore, server: RedisServer, clock: FakeClock
) -> None:
    other = RedisTokenStore(server.url, clock=clock, lock_ttl=2, lock_timeout=0.2)
    with store.lock("k"), pytest.raises(CriteoAuthError, match="waiting for the Redis"):  # noqa: SIM117
        with other.lock("k"):
            pass  # pragma: no cover
    with other.lock("k"):  # free again
        pass


def test_a_long_hold_is_renewed(server: RedisServer, client: redis.Redis, clock: FakeClock) -> None:
    store = RedisTokenStore(server.url, clock=clock, lock_ttl=0.3, lock_timeout=5)
    other = RedisTokenStore(server.url, clock=clock, lock_ttl=0.3, lock_timeout=0.1)
    with store.lock("k"):
        time.sleep(0.7)  # more than lock_ttl: the watchdog keeps the lock (no token wait)
        with pytest.raises(CriteoAuthError):  # noqa: SIM117
            with other.lock("k"):
                pass  # pragma: no cover


# -- CriteoAuth on the Redis store --------------------------------------------------------


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}) as f:
        yield f


def me(fake: FakeCriteo) -> str:
    return f"{fake.url}/2025-10/retail-media/me"


def test_auths_in_separate_caches_share_one_token(
    fake: FakeCriteo, store: RedisTokenStore, clock: FakeClock
) -> None:
    for _ in range(3):  # three "processes": each with its own cache
        auth = CriteoAuth(
            "client-1", SECRET, token_url=fake.token_url, store=store, cache=TokenCache(timer=clock)
        )
        assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
    assert fake.tokens_issued == 1


def test_redis_stopped_and_started_during_a_run(
    tmp_path: Path, fake: FakeCriteo, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    srv = RedisServer(tmp_path, binary=REDIS_SERVER).start()
    try:
        store = RedisTokenStore(srv.url, clock=clock, socket_timeout=0.5, retry_interval=0)
        statuses = []

        def call() -> None:
            auth = CriteoAuth(
                "client-1",
                SECRET,
                token_url=fake.token_url,
                store=store,
                cache=TokenCache(timer=clock),
            )
            statuses.append(requests.get(me(fake), auth=auth, timeout=5).status_code)

        def available() -> bool:  # (a call: mypy would keep what the last assert narrowed)
            return store.available

        call()
        assert available()
        srv.stop()
        with caplog.at_level(logging.WARNING, logger="requests_criteo"):
            for _ in range(3):
                call()
                clock.advance(841)
        assert not available()
        assert caplog.text.count("Redis token store unreachable") == 1  # once per outage
        srv.start()  # same port
        call()
        assert available()
        assert "answers again" in caplog.text
        call()
        assert statuses == [200] * 6
    finally:
        srv.stop()


def test_an_auth_code_app_does_not_refresh_during_an_outage(
    tmp_path: Path, fake: FakeCriteo, clock: FakeClock
) -> None:
    srv = RedisServer(tmp_path, binary=REDIS_SERVER).start()
    try:
        store = RedisTokenStore(srv.url, clock=clock, socket_timeout=0.5, retry_interval=0)
        auth = authorize(fake, clock, store=store)
        srv.stop()
        clock.advance(850)  # due for refresh, still valid for 50 s: used to its end
        assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
        clock.advance(60)  # expired
        with pytest.raises(CriteoAuthError, match="must never be used twice"):
            requests.get(me(fake), auth=auth, timeout=5)
        assert fake.refreshes == 0
    finally:
        srv.stop()


# -- a frozen Redis: one socket timeout, then memory -------------------------------------

SOCKET_TIMEOUT = 0.5


@pytest.fixture
def timed_out_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Redis replies waited for in vain (each wait in seconds), in this process."""
    waits: list[float] = []
    read_response = redis.connection.Connection.read_response

    def counting(self: redis.connection.Connection, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return read_response(self, *args, **kwargs)
        except redis.TimeoutError:
            waits.append(time.monotonic() - started)
            raise

    monkeypatch.setattr(redis.connection.Connection, "read_response", counting)
    return waits


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGSTOP")
@pytest.mark.parametrize(
    ("when", "retry_interval", "timeouts"),
    [
        ("before a cold start", 5.0, 1),
        # The lock taken and the store read, then Redis stops answering: the write waits
        # one timeout, and nothing else of that lock hold (the release) waits again.
        ("in the middle of a refresh", 5.0, 1),
        # Every operation of the hold answered: the release is the one that waits.
        ("after the token is written", 5.0, 1),
        ("before a 401", 5.0, 1),
        # Redis probed at every chance: the 401 makes two lock holds (forget the token,
        # then fetch one), and each waits one timeout, no more.
        ("before a 401", 0.0, 2),
    ],
)
def test_a_frozen_redis_costs_one_socket_timeout_then_memory(
    tmp_path: Path,
    fake: FakeCriteo,
    clock: FakeClock,
    timed_out_waits: list[float],
    when: str,
    retry_interval: float,
    timeouts: int,
) -> None:
    srv = RedisServer(tmp_path, binary=REDIS_SERVER).start()
    assert srv.process is not None
    pid = srv.process.pid
    frozen: list[str] = []

    def freeze(*_: object) -> None:
        if not frozen:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(when)

    def store_clock() -> float:
        # The store reads its clock inside the lock, after the read, before the token request.
        if when == "in the middle of a refresh":
            freeze()
        return clock()

    try:
        store = RedisTokenStore(
            srv.url, clock=store_clock, socket_timeout=SOCKET_TIMEOUT, retry_interval=retry_interval
        )
        auth = CriteoAuth(
            "client-1",
            SECRET,
            token_url=fake.token_url,
            store=store,
            cache=TokenCache(timer=clock),
            on_token=freeze if when == "after the token is written" else None,
        )
        if when == "before a 401":
            assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
            fake.revoke()
        if when.startswith("before"):
            freeze()
        started = time.monotonic()
        status = requests.get(me(fake), auth=auth, timeout=5).status_code
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
        srv.stop()
    assert frozen == [when]
    assert status == 200
    assert not store.available  # the next calls use memory without waiting
    assert len(timed_out_waits) == timeouts
    assert all(wait < 2 * SOCKET_TIMEOUT for wait in timed_out_waits)  # no retry inside
    assert elapsed < (timeouts + 1) * SOCKET_TIMEOUT  # the rest of the call is loopback
    assert elapsed < 3 * SOCKET_TIMEOUT


# -- fleets of processes -------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize(
    ("grant", "workers"), [("client_credentials", 16), ("authorization_code", 8)]
)
def test_a_fleet_makes_one_token_request_per_lifetime(
    server: RedisServer, client: redis.Redis, grant: str, workers: int
) -> None:
    ctx = multiprocessing.get_context("fork")
    clock_value = ctx.Value("d", 1000.0)
    failures = ctx.Value("i", 0)

    def clock() -> float:
        return float(clock_value.value)

    with FakeCriteo(timer=clock, clients={"client-1": SECRET}, lifetime=60) as fake:
        if grant == "authorization_code":
            authorize(fake, clock, store=RedisTokenStore(server.url, clock=clock))
        rounds = 10
        barrier = ctx.Barrier(workers + 1)
        procs = [
            ctx.Process(
                target=fleet_worker,
                args=(
                    rounds,
                    barrier,
                    clock_value,
                    functools.partial(RedisTokenStore, server.url, lock_ttl=5, lock_timeout=20),
                    fake.token_url,
                    me(fake),
                    grant,
                    failures,
                ),
            )
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        try:
            for _ in range(rounds):
                barrier.wait(60)
                barrier.wait(60)
                with clock_value.get_lock():
                    clock_value.value += 10
        finally:
            for p in procs:
                p.join(30)
        assert [p.exitcode for p in procs] == [0] * workers
        assert failures.value == 0
        assert fake.api_requests == workers * rounds
        # Calls at 1000 ... 1090, replaced at 30 s of age: tokens at 1000, 1030, 1060, 1090.
        assert fake.tokens_issued == 4
        assert fake.refresh_token_reuses == 0


def _holder(url: str, ready: Any) -> None:  # pragma: no cover - killed mid-refresh
    store = RedisTokenStore(url, lock_ttl=0.5)
    with store.lock("client-1/client_credentials/x"):
        ready.set()
        time.sleep(60)


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_lock_holder_killed_mid_refresh_blocks_no_longer_than_the_lock_ttl(
    server: RedisServer, client: redis.Redis
) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_holder, args=(server.url, ready))
    holder.start()
    assert ready.wait(10)
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(10)
    store = RedisTokenStore(server.url, lock_ttl=0.5, lock_timeout=5)
    started = time.monotonic()
    with store.lock("client-1/client_credentials/x"):
        waited = time.monotonic() - started
    assert waited < 2.0  # the dead holder's lock expired within its ttl (0.5 s + renewals)


# -- a child forked from a process using the store -----------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_while_another_thread_holds_the_outage_lock_can_use_the_store(
    store: RedisTokenStore, clock: FakeClock
) -> None:
    # Another thread of the parent is inside the outage bookkeeping (its Outage._state
    # lock) at the fork: the child, which has no such thread, must not wait for it.
    store.write("k", stored(clock))
    with held_in_another_thread(lambda: store._outage._state):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 1
            try:
                if store.read("k") != stored(clock):
                    code = 2
                elif not store.available:
                    code = 3
                else:
                    store.write("k", stored(clock, access="from-the-child"))
                    code = 0
            finally:
                os._exit(code)
        assert wait_for_child(pid) == 0
    assert store.read("k") == stored(clock, access="from-the-child")  # written to Redis


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_leaving_an_inherited_lock_block_keeps_the_parent_holding_the_redis_lock(
    store: RedisTokenStore, server: RedisServer, client: redis.Redis, clock: FakeClock
) -> None:
    # The child carries the parent's lock token: releasing it would let another worker in
    # while the parent still refreshes.
    held = store.lock("k")
    held.__enter__()
    try:
        assert left_in_a_forked_child(held) == 0
        assert client.exists(store._name("lock", "k")) == 1
        other = RedisTokenStore(server.url, clock=clock, lock_ttl=2, lock_timeout=0.2)
        with pytest.raises(CriteoAuthError, match="waiting for the Redis"), other.lock("k"):
            pass  # pragma: no cover - never reached
    finally:
        held.__exit__(None, None, None)
    assert client.exists(store._name("lock", "k")) == 0  # the parent released it


def test_the_testing_kit_says_how_to_get_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server here
    with pytest.raises(FileNotFoundError, match="apt-get install redis-server"):
        RedisServer(tmp_path)
    srv = RedisServer(tmp_path, binary=REDIS_SERVER)
    srv.stop()  # not started: nothing to do
    assert srv.url.startswith("redis://127.0.0.1:")
