"""Whose budget a limiter paces: one per app by default on Redis, one per account on request.

Criteo counts client-credentials calls per application and authorization-code calls per
consenting account (10 a minute each). A limiter given to an adapter hands it the budget
of the adapter's credentials (:meth:`RateLimiter.for_credentials`).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Iterator

import pytest
import requests

from requests_criteo import CriteoAdapter, CriteoAuth, RateLimiter, RateLimitStats
from requests_criteo.redis_ratelimit import RedisRateLimiter
from requests_criteo.testing import FakeCriteo

from .conftest import SECRET, FakeClock, Sleeps, held_in_another_thread, me, wait_for_child

TOKEN_URL = "https://api.criteo.com/oauth2/token"


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}, lifetime=36000) as server:
        yield server


def account_session(
    fake: FakeCriteo, clock: FakeClock, account: str, limiter: RateLimiter
) -> requests.Session:
    auth = CriteoAuth("client-1", SECRET, token_url=fake.token_url, timer=clock, account=account)
    s = requests.Session()
    s.trust_env = False
    s.mount(fake.url + "/", CriteoAdapter(auth, rate_limit=limiter))
    return s


# -- in one process ------------------------------------------------------------------------


def test_a_per_account_limiter_gives_each_account_its_own_budget(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(10, per_account=True, clock=clock, sleep=sleeps)
    acme, globex = (account_session(fake, clock, a, limiter) for a in ("acme", "globex"))
    for s in (acme, globex, acme, globex):
        assert s.get(me(fake)).status_code == 200
    # Each account's second call waits 6 s (10 a minute); neither waits for the other's.
    assert sleeps == [6.0, 6.0]
    assert limiter.stats() == RateLimitStats(calls=4, waited=12.0, rate_limited=0)


def test_sessions_of_one_account_share_its_budget(fake: FakeCriteo, clock: FakeClock) -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(10, per_account=True, clock=clock, sleep=sleeps)
    first, second = (account_session(fake, clock, "acme", limiter) for _ in range(2))
    assert first.get(me(fake)).status_code == 200
    assert second.get(me(fake)).status_code == 200
    assert sleeps == [6.0]  # the second session's call waited for the account's turn
    first_adapter = first.get_adapter(fake.url + "/")
    second_adapter = second.get_adapter(fake.url + "/")
    assert isinstance(first_adapter, CriteoAdapter)
    assert isinstance(second_adapter, CriteoAdapter)
    assert first_adapter.limiter is second_adapter.limiter is not limiter


def test_a_limiter_not_per_account_is_one_budget_for_every_adapter(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(10, clock=clock, sleep=sleeps)
    acme, globex = (account_session(fake, clock, a, limiter) for a in ("acme", "globex"))
    assert acme.get(me(fake)).status_code == 200
    assert globex.get(me(fake)).status_code == 200
    assert sleeps == [6.0]
    assert limiter.for_credentials(TOKEN_URL, "client-1", "acme") is limiter


def test_a_429_pauses_only_the_account_that_got_it(clock: FakeClock) -> None:
    limiter = RateLimiter(10, per_account=True, clock=clock, wall_clock=lambda: 0.0)
    acme = limiter.for_credentials(TOKEN_URL, "client-1", "acme")
    globex = limiter.for_credentials(TOKEN_URL, "client-1", "globex")
    acme.rate_limited(until=30.0)
    assert acme.reserve() == 30.0
    assert globex.reserve() == 0.0
    assert limiter.stats().rate_limited == 1


def test_two_apps_accounts_of_one_name_are_two_budgets(clock: FakeClock) -> None:
    limiter = RateLimiter(10, per_account=True, clock=clock)
    budgets = [
        limiter.for_credentials(TOKEN_URL, "client-1", "acme"),
        limiter.for_credentials(TOKEN_URL, "client-2", "acme"),
        limiter.for_credentials("http://127.0.0.1:8/oauth2/token", "client-1", "acme"),
    ]
    assert [budget.reserve() for budget in budgets] == [0.0, 0.0, 0.0]
    assert budgets[0].reserve() == 6.0


def test_pausing_a_limiter_pauses_the_budgets_it_handed_out(clock: FakeClock) -> None:
    limiter = RateLimiter(10, per_account=True, clock=clock, wall_clock=lambda: 0.0)
    acme = limiter.for_credentials(TOKEN_URL, "client-1", "acme")
    limiter.pause_until(30.0)
    assert acme.reserve() == 30.0
    assert limiter.for_credentials(TOKEN_URL, "client-1", "globex").reserve() == 0.0  # new


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_while_a_thread_holds_the_limiter_can_pace_and_add_budgets(
    clock: FakeClock,
) -> None:
    limiter = RateLimiter(10, per_account=True, clock=clock)
    with held_in_another_thread(lambda: limiter._lock):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            budget = limiter.for_credentials(TOKEN_URL, "client-1", "acme")
            ok = budget.reserve() == 0.0 and limiter.stats().calls == 0
            os._exit(0 if ok and limiter.reserve() == 0.0 else 1)
        assert wait_for_child(pid) == 0


def test_per_account_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="per_account must be True or False"):
        RateLimiter(10, per_account="yes")  # type: ignore[arg-type]


def test_a_per_account_limiter_pickles_with_its_budgets(clock: FakeClock) -> None:
    limiter = RateLimiter(10, per_account=True)
    limiter.for_credentials(TOKEN_URL, "client-1", "acme").acquire()
    copy = pickle.loads(pickle.dumps(limiter))
    assert copy.per_account
    assert copy.stats().calls == 1
    assert copy.for_credentials(TOKEN_URL, "client-1", "acme").reserve() > 5.0
    assert "per_account=True" in repr(copy)


# -- across a fleet: on a real Redis in test_redis_ratelimit.py ----------------------------


def test_an_outage_is_one_warning_for_all_of_a_limiters_budgets(  # (no Redis listens)
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    limiter = RedisRateLimiter(
        "redis://127.0.0.1:1/0", 60, per_account=True, socket_timeout=0.2, clock=clock
    )
    budgets = [limiter.for_credentials(TOKEN_URL, "client-1", a) for a in ("a", "b", "c")]
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        waits = [budget.reserve() for budget in budgets for _ in range(2)]
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1
    # Paced in the process meanwhile, each account at its own rate.
    assert waits == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_cli_budgets_are_criteos_per_app_and_per_account() -> None:
    from requests_criteo._cli_pacing import pacing

    url = "redis://127.0.0.1:1/0"  # nothing is asked of Redis until a call's turn
    app = CriteoAuth("client-1", SECRET)
    limits = pacing(url, None, app)
    assert [(k, v.per_minute, v.per_account) for k, v in limits.items()] == [
        ("rate_limit", 250.0, False),
        ("reporting_rate_limit", 40.0, False),
    ]
    assert pacing(url, 30, app)["reporting_rate_limit"].per_minute == 30.0
    consent = CriteoAuth("client-1", SECRET, refresh_token="refresh-1", account="acme")
    (only,) = pacing(url, None, consent).values()
    assert (only.per_minute, only.per_account) == (10.0, True)
    assert pacing(None, None, app) == {}


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_cli_per_minute_must_be_a_positive_finite_number(value: str) -> None:
    from requests_criteo._cli_pacing import pacing
    from requests_criteo._cli_tokens import UsageError

    with pytest.raises(UsageError, match="--per-minute must be a positive number"):
        pacing("redis://127.0.0.1:1/0", float(value), CriteoAuth("client-1", SECRET))


def test_cli_pacing_without_the_redis_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from requests_criteo._cli_pacing import pacing
    from requests_criteo._cli_tokens import UsageError

    monkeypatch.setitem(sys.modules, "redis", None)  # redis-py not installed
    for module in ("requests_criteo._redis", "requests_criteo.redis_ratelimit"):
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(UsageError, match=r'pip install "requests-criteo\[redis\]"'):
        pacing("redis://127.0.0.1:1/0", None, CriteoAuth("client-1", SECRET))
