"""RedisRateLimiter against a real redis-server: one budget for a fleet, and outages."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
import time

import pytest
import redis

import requests_criteo
from requests_criteo import CriteoAdapter, CriteoAuth
from requests_criteo.redis_ratelimit import RedisRateLimiter
from requests_criteo.testing import FakeCriteo, RedisServer

from .conftest import (
    SECRET,
    FakeClock,
    Sleeps,
    assert_no_secret,
    criteo_client,
    held_in_another_thread,
    me,
    wait_for_child,
)
from .redis_server import (  # noqa: F401 - the `own_server` and `server` fixtures
    own_server_fixture,
    server_fixture,
    skip_without_a_binary,
)

skip_without_a_binary()  # (redis-py is in the test extra: only the binary may lack)

#: One turn a second: the waits are read from Redis's clock while the tests never sleep, so
#: a second's spacing leaves room for a slow machine's few milliseconds between calls.
PER_MINUTE = 60
CRITEO_TOKEN_URL = "https://api.criteo.com/oauth2/token"
SLACK = 0.25  # seconds the machine may spend between two calls of a test


def limiter(server: RedisServer, name: str, **options: object) -> RedisRateLimiter:
    options.setdefault("sleep", Sleeps())
    return RedisRateLimiter(server.url, PER_MINUTE, name=name, **options)  # type: ignore[arg-type]


def available(lim: RedisRateLimiter) -> bool:  # (a call: mypy would keep a narrowed assert)
    return lim.available


def assert_spaced(waits: list[float], interval: float = 1.0) -> None:
    """The k-th turn came k intervals after the first, less the time the test took."""
    for k, wait in enumerate(sorted(waits)):
        assert k * interval - SLACK <= wait <= k * interval + 0.01, (k, waits)


def test_two_limiters_of_one_name_share_one_evenly_spaced_budget(server: RedisServer) -> None:
    sleeps = Sleeps()
    a, b = limiter(server, "shared", sleep=sleeps), limiter(server, "shared")
    waits = [(a if i % 2 else b).acquire() for i in range(8)]
    assert waits[0] == 0  # the first call of an idle budget goes at once...
    assert_spaced(waits)  # ...and no burst after it: one turn a second, in order
    assert waits == sorted(waits)
    assert sleeps == [w for w in waits[1::2] if w > 0]  # each waited its own turn


def test_threads_of_two_limiters_get_one_turn_each_in_total_order(server: RedisServer) -> None:
    limiters = [limiter(server, "threads"), limiter(server, "threads")]
    waits: list[float] = []
    lock = threading.Lock()

    def work(lim: RedisRateLimiter) -> None:
        for _ in range(3):
            wait = lim.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=work, args=(lim,)) for lim in limiters * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(waits) == 12
    assert_spaced(waits)  # twelve distinct turns, one a second: none shared, none skipped


def test_other_names_and_other_rates_are_other_budgets(server: RedisServer) -> None:
    assert limiter(server, "app-1").reserve() == 0
    assert limiter(server, "app-2").reserve() == 0
    reporting = RedisRateLimiter(server.url, 40, name="app-1", sleep=Sleeps())
    assert reporting.reserve() == 0
    assert limiter(server, "app-1").reserve() > 0.5  # app-1's own budget, at 60 a minute


def test_the_key_expires_and_holds_no_name_and_the_repr_no_password(server: RedisServer) -> None:
    lim = limiter(server, "client-SENTINEL")
    lim.acquire()
    assert lim.key.startswith("requests_criteo:rate:")
    assert_no_secret(lim.key, "client-SENTINEL")
    assert 0 < lim.client.pttl(lim.key) <= 2000  # gone once the budget is idle again
    text = repr(RedisRateLimiter("redis://:hunter2-SENTINEL@cache.internal:6380/2", 250))
    assert "cache.internal" in text
    assert_no_secret(text, "hunter2")


def test_pickles_by_url_and_keeps_its_budget(server: RedisServer) -> None:
    lim = RedisRateLimiter(server.url, PER_MINUTE, name="pickled")
    copy = pickle.loads(pickle.dumps(lim))
    assert (copy.key, copy.per_minute, copy.name) == (lim.key, 60.0, "pickled")
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(RedisRateLimiter(lim.client))


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((42,), {}, TypeError),
        (("redis://x", 0), {}, ValueError),
        (("redis://x",), {"name": ""}, ValueError),
        (("redis://x",), {"socket_timeout": 0}, ValueError),
    ],
)
def test_bad_arguments(args: tuple[object, ...], kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        RedisRateLimiter(*args, **kwargs)  # type: ignore[arg-type]


def test_exported_lazily() -> None:
    assert requests_criteo.RedisRateLimiter is RedisRateLimiter
    assert "RedisRateLimiter" in requests_criteo.__all__


# -- wherever a RateLimiter is accepted ------------------------------------------------------


def test_an_adapter_takes_it_for_either_budget(server: RedisServer) -> None:
    auth = CriteoAuth("client-1", SECRET)
    ordinary, reporting = limiter(server, "adapter"), limiter(server, "adapter-reports")
    adapter = CriteoAdapter(auth, rate_limit=ordinary, reporting_rate_limit=reporting)
    assert (adapter.limiter, adapter.reporting_limiter) == (ordinary, reporting)


@pytest.mark.parametrize("way", ["session", "mount"])
def test_calls_through_a_session_are_paced_by_redis(
    server: RedisServer, fake: FakeCriteo, criteo_auth: CriteoAuth, way: str
) -> None:
    sleeps = Sleeps()
    lim = limiter(server, f"session-{way}", sleep=sleeps)
    with criteo_client(way, fake, criteo_auth, rate_limit=lim) as s:
        assert [s.get(me(fake), timeout=5).status_code for _ in range(3)] == [200] * 3
    assert len(sleeps) == 2
    assert_spaced([0.0, *sleeps])


# -- Redis down, frozen, and back -----------------------------------------------------------


PAUSE = 5.0  # seconds a test's 429 pauses the budget for (nothing sleeps through it)


def test_a_pause_through_one_limiter_holds_the_next_turn_of_another(server: RedisServer) -> None:
    saw_429, other = limiter(server, "paused"), limiter(server, "paused")
    saw_429.pause_until(time.time() + PAUSE)  # Redis's TIME is Unix time
    assert PAUSE - SLACK <= other.reserve() <= PAUSE + 0.01


def test_a_shorter_pause_does_not_shorten_a_longer_one(server: RedisServer) -> None:
    a, b = limiter(server, "paused-twice"), limiter(server, "paused-twice")
    a.pause_until(time.time() + PAUSE)
    b.pause_until(time.time() + 1)
    assert PAUSE - SLACK <= a.reserve() <= PAUSE + 0.01


def test_turns_after_a_fleet_pause_are_evenly_spaced(server: RedisServer) -> None:
    a, b = limiter(server, "paused-spaced"), limiter(server, "paused-spaced")
    a.reserve()
    a.pause_until(time.time() + PAUSE)
    waits = [a.reserve(), b.reserve(), a.reserve(), b.reserve()]
    assert_spaced([wait - PAUSE for wait in waits])  # the first at the pause's end, no burst


def test_with_redis_stopped_a_pause_holds_the_local_fallback(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    lim = limiter(own_server, "paused-alone", clock=FakeClock(), retry_interval=0)
    own_server.stop()
    with caplog.at_level(logging.DEBUG, logger="requests_criteo"):
        assert lim.reserve() == 0  # pacing alone; the outage's one warning
        caplog.clear()
        lim.pause_until(time.time() + PAUSE)
        assert lim.reserve() == pytest.approx(PAUSE, abs=SLACK)
        assert lim.reserve() == pytest.approx(PAUSE + 1, abs=SLACK)
    assert caplog.records == []


def test_a_fleet_pause_still_holds_when_redis_goes_down_before_its_end(
    own_server: RedisServer,
) -> None:
    lim = limiter(own_server, "paused-then-down", clock=FakeClock(), retry_interval=0)
    lim.pause_until(time.time() + PAUSE)  # through Redis, and this process's own turns
    own_server.stop()
    assert lim.reserve() == pytest.approx(PAUSE, abs=SLACK)


def test_redis_stopped_then_started_paces_alone_then_shares_again(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    srv = own_server
    lim = limiter(srv, "outage", clock=FakeClock(), socket_timeout=0.5, retry_interval=0)
    assert lim.acquire() == 0
    assert available(lim)
    srv.stop()
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        waits = [lim.acquire() for _ in range(3)]
        assert not available(lim)
        assert waits == [0.0, 1.0, 2.0]  # this process's own turns, at the same rate
        assert caplog.text.count("Redis rate limiter unreachable") == 1  # once an outage
        srv.start()  # same port, empty
        assert lim.acquire() == 0
        assert available(lim)
        assert lim.acquire() > 0.5
    assert caplog.text.count("Redis rate limiter answers again") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGSTOP")
def test_a_frozen_redis_costs_one_socket_timeout_then_pacing_alone(
    own_server: RedisServer,
) -> None:
    srv = own_server
    assert srv.process is not None
    try:
        lim = limiter(srv, "frozen", socket_timeout=0.3, retry_interval=60)
        lim.acquire()
        os.kill(srv.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        assert lim.acquire() == 0  # the local budget is fresh: its first turn is now
        first = time.monotonic() - started
        assert lim.acquire() == pytest.approx(1.0, abs=SLACK)
        second = time.monotonic() - started - first
    finally:
        os.kill(srv.process.pid, signal.SIGCONT)
    assert 0.3 <= first < 0.6  # one socket timeout, no retry inside
    assert second < 0.1  # Redis skipped until retry_interval has passed
    assert not lim.available


def test_a_client_of_ones_own_that_times_out_falls_back_too(server: RedisServer) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    lim = RedisRateLimiter(dead, PER_MINUTE, sleep=Sleeps(), clock=FakeClock())
    assert [lim.acquire(), lim.acquire()] == [0.0, 1.0]
    assert not lim.available


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_during_outage_bookkeeping_still_takes_fleet_turns(
    server: RedisServer,
) -> None:
    lim = limiter(server, "forked")
    assert lim.reserve() == 0
    with held_in_another_thread(lambda: lim._outage._state):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            os._exit(0 if lim.reserve() > 0.5 and available(lim) else 1)
        assert wait_for_child(pid) == 0
    assert lim.reserve() > 1.5  # the child's turn was taken from the shared budget


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_while_a_thread_paces_alone_can_pace_alone(own_server: RedisServer) -> None:
    lim = limiter(own_server, "forked-alone", clock=FakeClock(), retry_interval=60)
    own_server.stop()
    assert lim.reserve() == 0  # Redis down: the process's own turns from now on
    with held_in_another_thread(lambda: lim._lock):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            os._exit(0 if lim.reserve() == 1.0 else 1)
        assert wait_for_child(pid) == 0


# -- whose budget: the app's by default, or each account's (tests/test_limiter_budgets.py) -


def on_redis(server: RedisServer, **options: object) -> RedisRateLimiter:
    return RedisRateLimiter(server.url, 60, sleep=Sleeps(), **options)  # type: ignore[arg-type]


def test_by_default_a_fleet_budget_is_the_apps(server: RedisServer) -> None:
    # Two processes' limiters, built alike, with no name: one budget per app.
    here, there = on_redis(server), on_redis(server)
    app = here.for_credentials(CRITEO_TOKEN_URL, "client-1", "default")
    same_app = there.for_credentials(CRITEO_TOKEN_URL, "client-1", "default")
    other_app = there.for_credentials(CRITEO_TOKEN_URL, "client-2", "default")
    other_origin = there.for_credentials("http://127.0.0.1:1/oauth2/token", "client-1", "x")
    assert isinstance(app, RedisRateLimiter) and isinstance(same_app, RedisRateLimiter)
    assert app.key == same_app.key
    assert len({app.key, other_app.key, other_origin.key, here.key}) == 4  # type: ignore[attr-defined]
    assert "client-1" not in app.key  # the key is a hash: no client id in Redis
    assert app.reserve() == 0.0
    assert same_app.reserve() > 0.5  # the same app's next turn, a second on
    assert other_app.reserve() == 0.0  # another app's budget is its own


def test_an_unnamed_limiter_used_alone_keeps_the_former_default_budget(
    server: RedisServer,
) -> None:
    assert on_redis(server).key == on_redis(server, name="requests-criteo").key


def test_a_named_limiter_is_one_budget_for_every_app(server: RedisServer) -> None:
    limiter = on_redis(server, name="all our apps")
    assert limiter.for_credentials(CRITEO_TOKEN_URL, "client-1", "a") is limiter
    assert limiter.for_credentials(CRITEO_TOKEN_URL, "client-2", "b") is limiter


def test_a_per_account_fleet_budget_is_each_accounts_on_every_machine(
    server: RedisServer,
) -> None:
    here, there = on_redis(server, per_account=True), on_redis(server, per_account=True)
    acme = here.for_credentials(CRITEO_TOKEN_URL, "client-1", "acme")
    assert acme.reserve() == 0.0
    assert there.for_credentials(CRITEO_TOKEN_URL, "client-1", "acme").reserve() > 0.5
    assert there.for_credentials(CRITEO_TOKEN_URL, "client-1", "globex").reserve() == 0.0
    assert here.for_credentials(CRITEO_TOKEN_URL, "client-1", "acme") is acme  # made once


def test_an_apps_budget_shares_the_limiters_connection_and_pickles_by_its_url(
    server: RedisServer,
) -> None:
    limiter = on_redis(server, per_account=True)
    acme = limiter.for_credentials(CRITEO_TOKEN_URL, "client-1", "acme")
    assert isinstance(acme, RedisRateLimiter)
    assert acme.client is limiter.client
    copy = pickle.loads(pickle.dumps(acme))
    assert copy.key == acme.key
    assert copy.per_minute == acme.per_minute
    assert copy.client is not limiter.client


# -- the command line: --redis paces each run in the app's fleet-wide budget ---------------


def test_cli_request_waits_its_turn_in_the_redis_budget_and_says_so(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from requests_criteo.__main__ import main

    with FakeCriteo(clients={"client-1": SECRET}) as fake:
        monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
        monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
        # Another worker of the app took the next three turns (a tenth of a second each).
        worker = RedisRateLimiter(server.url, 600).for_credentials(
            fake.token_url, "client-1", "default"
        )
        assert [worker.reserve() > 0 for _ in range(3)] == [False, True, True]
        argv = ["request", "GET", "/2025-10/retail-media/accounts", "--redis", server.url]
        assert main([*argv, "--per-minute", "600"]) == 0
        assert fake.api_requests == 1
    err = capsys.readouterr().err
    assert "criteo-auth: rate limit (600 calls/min): 1 call(s) paced, 0." in err
    waited = float(err.split("paced, ")[1].split(" s waited")[0])
    assert 0.05 < waited <= 0.31  # its turn came after the three others'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--per-minute", "10"], "give --redis too"),
        (["--redis", "redis://127.0.0.1:1/0", "--per-minute", "0"], "must be a positive"),
    ],
)
def test_cli_pacing_options_are_checked_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    from requests_criteo.__main__ import main

    with FakeCriteo(clients={"client-1": SECRET}) as fake:
        monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
        monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
        assert main(["request", "GET", "/2025-10/x", "--no-cache", *options]) == 2
        assert fake.token_requests == 0
    assert message in capsys.readouterr().err


def test_pausing_an_unnamed_limiter_pauses_the_apps_budgets_it_handed_out(
    server: RedisServer,
) -> None:
    unnamed = on_redis(server)
    app = unnamed.for_credentials(CRITEO_TOKEN_URL, "client-pause", "default")
    unnamed.pause_until(time.time() + 30)
    assert app.reserve() > 29  # the session's budget, not only the unnamed one


def test_names_made_for_apps_and_accounts_never_meet_a_given_name(server: RedisServer) -> None:
    ops = on_redis(server, name="ops", per_account=True)
    keys = {
        ops.for_credentials(CRITEO_TOKEN_URL, "c", "acme").key,  # type: ignore[attr-defined]
        on_redis(server, name="ops account=acme").key,
        on_redis(server, name=f"{CRITEO_TOKEN_URL} c").key,
        on_redis(server).for_credentials(CRITEO_TOKEN_URL, "c", "x").key,  # type: ignore[attr-defined]
    }
    assert len(keys) == 4


def test_an_absurdly_slow_budget_is_paced_not_refused_by_redis(server: RedisServer) -> None:
    slow = on_redis(server, name="glacial")
    slow.per_minute, slow.interval = 1e-15, 6e16  # what RedisRateLimiter(url, 1e-15) sets
    assert slow.reserve() == 0.0
    assert slow.reserve() > 1e15  # a key Redis keeps: no "value is not an integer"
    assert "per_account" not in repr(slow)
    assert "per_account=True" in repr(on_redis(server, per_account=True))
