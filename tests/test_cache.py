"""The token cache: lifetimes, margins, expiry on an injected clock, single flight, isolation."""

from __future__ import annotations

import math
import os
import pickle
import threading
import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from requests_criteo import (
    CriteoAuth,
    CriteoRetry,
    Token,
    TokenCache,
    TokenRequestError,
    shared_cache,
)
from requests_criteo._cache import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    MIN_LIFETIME,
    lifetime_from,
    margin_for,
)
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, TOKEN, FakeClock, me, summary


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (900, 900.0),
        ("900", 900.0),
        (900.0, 900.0),
        (" 900 ", 900.0),
        ("900.5", 900.5),
        (30, 30.0),
        (None, DEFAULT_LIFETIME),
        (0, DEFAULT_LIFETIME),
        (-1, DEFAULT_LIFETIME),
        (True, DEFAULT_LIFETIME),
        (False, DEFAULT_LIFETIME),
        (float("nan"), DEFAULT_LIFETIME),
        (float("inf"), DEFAULT_LIFETIME),
        ("Infinity", DEFAULT_LIFETIME),
        ("NaN", DEFAULT_LIFETIME),
        ("soon", DEFAULT_LIFETIME),
        ([900], DEFAULT_LIFETIME),
        ({"s": 900}, DEFAULT_LIFETIME),
        (1e12, MAX_LIFETIME),
        (10**400, MAX_LIFETIME),
    ],
)
def test_lifetime_from(expires_in: object, lifetime: float) -> None:
    assert lifetime_from(expires_in) == lifetime


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)))
def test_lifetime_is_always_finite_positive_and_bounded(expires_in: object) -> None:
    lifetime = lifetime_from(expires_in)
    assert math.isfinite(lifetime)
    assert 0 < lifetime <= MAX_LIFETIME


def test_margin_is_sixty_seconds_or_half_a_short_life() -> None:
    assert margin_for(900) == 60
    assert margin_for(30) == 15
    token = Token(TOKEN, lifetime=30, obtained_at=0)
    assert token.refresh_at == 15
    assert Token(TOKEN, lifetime=900, obtained_at=100).refresh_at == 100 + 840


def test_token_never_shows_or_pickles_its_value() -> None:
    token = Token(TOKEN, lifetime=900, obtained_at=0, refresh_token="refresh-SENTINEL")
    assert TOKEN not in repr(token)
    assert "refresh-SENTINEL" not in repr(token)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(token)


def test_a_token_is_cached_until_its_refresh_time(clock: FakeClock, cache: TokenCache) -> None:
    token = Token(TOKEN, lifetime=900, obtained_at=clock())
    cache.put("k", token)
    assert cache.get("k") is token
    clock.advance(839.9)
    assert cache.get("k") is token
    clock.advance(0.1)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_drop_removes_only_the_token_still_cached(clock: FakeClock, cache: TokenCache) -> None:
    old = Token("old", lifetime=900, obtained_at=clock())
    new = Token("new", lifetime=900, obtained_at=clock())
    cache.put("k", new)
    assert cache.drop("k", old) is False
    assert old.dropped
    assert cache.get("k") is new
    assert cache.drop("k", new) is True
    assert cache.get("k") is None


def test_clear_drops_everything(clock: FakeClock, cache: TokenCache) -> None:
    token = Token(TOKEN, lifetime=900, obtained_at=clock())
    cache.put("k", token)
    cache.clear()
    assert token.dropped
    assert cache.get("k") is None


def test_cache_is_bounded(clock: FakeClock) -> None:
    cache = TokenCache(maxsize=2, timer=clock)
    for key in "abc":
        cache.put(key, Token(TOKEN, lifetime=900, obtained_at=clock()))
    assert len(cache) == 2
    assert cache.get("a") is None


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_bad_maxsize(maxsize: object) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        TokenCache(maxsize=maxsize)  # type: ignore[arg-type]


def test_bad_timer() -> None:
    with pytest.raises(TypeError, match="timer"):
        TokenCache(timer=5)  # type: ignore[arg-type]


def test_shared_cache_per_timer(clock: FakeClock) -> None:
    assert shared_cache() is shared_cache(time.monotonic)
    assert shared_cache(clock) is shared_cache(clock)
    assert shared_cache(clock) is not shared_cache()
    assert "tokens=" in repr(shared_cache())


def test_64_threads_cause_one_fetch(clock: FakeClock, cache: TokenCache) -> None:
    calls = []
    release = threading.Event()

    def fetch() -> Token:
        calls.append(1)
        release.wait(5)
        return Token(TOKEN, lifetime=900, obtained_at=clock())

    barrier = threading.Barrier(64)
    results: list[Token] = []

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_fetch("k", fetch, wait=10))

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    time.sleep(0.05)  # let the followers queue up behind the leader (not a clock wait)
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(results) == 64
    assert len({id(r) for r in results}) == 1


def test_a_failed_fetch_reaches_every_waiter_and_is_not_remembered(
    clock: FakeClock, cache: TokenCache
) -> None:
    calls = []
    release = threading.Event()

    def failing() -> Token:
        calls.append(1)
        release.wait(5)
        raise TokenRequestError("refused", status_code=400, error="invalid_client")

    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        try:
            cache.get_or_fetch("k", failing, wait=10)
        except TokenRequestError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(errors) == 16
    assert all(isinstance(e, TokenRequestError) and e.error == "invalid_client" for e in errors)
    # The next call tries again, and succeeds.
    token = cache.get_or_fetch("k", lambda: Token(TOKEN, lifetime=9, obtained_at=clock()), wait=1)
    assert cache.get("k") is token
    assert cache._flights == {}


def test_a_follower_gives_up_after_its_wait(cache: TokenCache) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow() -> Token:
        started.set()
        release.wait(5)
        return Token(TOKEN, lifetime=900, obtained_at=0)

    leader = threading.Thread(target=lambda: cache.get_or_fetch("k", slow, wait=5))
    leader.start()
    started.wait(5)
    with pytest.raises(TokenRequestError, match="waiting for another thread"):
        cache.get_or_fetch("k", slow, wait=0.01)
    release.set()
    leader.join(5)


def test_an_uncopyable_error_is_still_raised(cache: TokenCache) -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(a)  # copy.copy would call Odd(a) and fail

    started = threading.Event()
    release = threading.Event()

    def failing() -> Token:
        started.set()
        release.wait(5)
        raise Odd(1, 2)

    def lead() -> None:
        with pytest.raises(Odd):
            cache.get_or_fetch("k", failing, wait=5)

    leader = threading.Thread(target=lead)
    leader.start()
    started.wait(5)
    threading.Timer(0.05, release.set).start()
    with pytest.raises(Odd):
        cache.get_or_fetch("k", failing, wait=5)
    leader.join(5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_fork_during_a_fetch_leaves_the_child_a_working_cache(clock: FakeClock) -> None:
    cache = TokenCache(timer=clock)
    started = threading.Event()
    release = threading.Event()

    def slow() -> Token:
        started.set()
        release.wait(5)
        return Token("parent", lifetime=900, obtained_at=clock())

    leader = threading.Thread(target=lambda: cache.get_or_fetch("k", slow, wait=5))
    leader.start()
    started.wait(5)
    pid = os.fork()  # a fetch is under way in another thread: its flight must not leak
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            token = cache.get_or_fetch(
                "k", lambda: Token("child", lifetime=900, obtained_at=clock()), wait=1
            )
            os._exit(0 if token.access_token == "child" else 1)
        except BaseException:
            os._exit(2)
    release.set()
    leader.join(5)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- a tiny expires_in ------------------------------------------------------------------------


def test_a_tiny_expires_in_is_raised_to_the_minimum_lifetime() -> None:
    assert MIN_LIFETIME == 1.0
    assert lifetime_from(0.001) == 1.0
    assert lifetime_from(1e-9) == 1.0
    assert lifetime_from("0.5") == 1.0


def test_a_tiny_expires_in_does_not_cost_a_token_request_per_call(
    clock: FakeClock, retry: CriteoRetry
) -> None:
    # The fake answers expires_in 0.001, but its own clock stands still: its tokens stay
    # valid. The client's clock moves 10 ms per call, well past 0.001 s.
    with FakeCriteo(clients={CLIENT_ID: SECRET}, lifetime=0.001, timer=lambda: 0.0) as fake:
        auth = CriteoAuth(
            CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache(timer=clock), retry=retry
        )
        for _ in range(20):
            assert summary(requests.get(me(fake), auth=auth, timeout=5)) == (200, [])
            clock.advance(0.01)
        assert fake.token_requests == 1
        assert auth.token().lifetime == MIN_LIFETIME


# -- a cache of its own ------------------------------------------------------------------------


def test_auths_with_their_own_token_cache_share_no_token(fake: FakeCriteo) -> None:
    a = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    b = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    assert summary(requests.get(me(fake), auth=a, timeout=5)) == (200, [])
    assert summary(requests.get(me(fake), auth=b, timeout=5)) == (200, [])
    assert fake.token_requests == 2
    first_a, first_b = (c.bearer for c in fake.api_calls())
    assert first_a != first_b

    a.cache.clear()
    assert summary(requests.get(me(fake), auth=a, timeout=5)) == (200, [])
    assert fake.token_requests == 3
    assert fake.api_calls()[-1].bearer not in (first_a, first_b)
    assert a.token().access_token != b.token().access_token
