"""FakeCriteo's rate budgets: a clock faster than real time, resets in real time, arrivals.

Every clock here is injected and moved by hand: nothing sleeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from requests_criteo.testing import Arrival, FakeCriteo
from requests_criteo.testing.rates import _SpedUpClock

from .conftest import FakeClock

V = "2025-10"
EPOCH = 1_700_000_000.25  # the real Unix time while the fake's clock reads 1000


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.trust_env = False  # loopback only
        yield client


def bearer(fake: FakeCriteo, session: requests.Session) -> dict[str, str]:
    form = {
        "client_id": FakeCriteo.CLIENT_ID,
        "client_secret": FakeCriteo.CLIENT_SECRET,
        "grant_type": "client_credentials",
    }
    token = session.post(fake.token_url, data=form, timeout=5).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def call(fake: FakeCriteo, session: requests.Session, path: str = "accounts") -> requests.Response:
    headers = bearer(fake, session)
    return session.get(f"{fake.url}/{V}/retail-media/{path}", headers=headers, timeout=5)


@pytest.mark.parametrize("speed", ["10", None, True])
def test_a_speed_that_is_not_a_number_is_a_type_error(speed: object) -> None:
    options: dict[str, Any] = {"speed": speed}
    with pytest.raises(TypeError, match="speed must be a number"):
        FakeCriteo(**options)


@pytest.mark.parametrize("speed", [0, -1, math.inf, math.nan])
def test_a_speed_that_is_not_positive_and_finite_is_a_value_error(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be positive and finite"):
        FakeCriteo(speed=speed)


def test_at_speed_one_the_clock_is_the_monotonic_clock_as_before() -> None:
    fake = FakeCriteo()
    assert fake.speed == 1
    assert fake.timer is time.monotonic


def test_the_default_clock_of_a_fast_fake_is_the_monotonic_clock_sped_up() -> None:
    timer = FakeCriteo(speed=10).timer
    assert isinstance(timer, _SpedUpClock)
    assert (timer.speed, timer.clock) == (10, time.monotonic)
    assert repr(timer) == "_SpedUpClock(speed=10)"


def test_a_fake_minute_passes_in_one_speedth_of_a_real_minute(session: requests.Session) -> None:
    real = FakeClock(start=100.0)
    with FakeCriteo(timer=_SpedUpClock(10, real), speed=10) as fake:
        fake.rate_limit = 1
        assert real() * 10 == fake.timer() == 1000  # in the minute [960, 1020) of the fake
        assert call(fake, session).status_code == 200
        assert call(fake, session).status_code == 429
        real.advance(2)  # 20 s of the fake's clock: its next minute begins
        assert call(fake, session).status_code == 200
        real.advance(5.9)  # 59 s later on the fake's clock: the same minute
        assert call(fake, session).status_code == 429
        real.advance(0.1)
        assert call(fake, session).status_code == 200
    assert fake.rate_limited == 2


@pytest.mark.parametrize(("speed", "reset"), [(1, EPOCH + 20), (4, EPOCH + 5), (10, EPOCH + 2)])
def test_x_ratelimit_reset_is_the_real_unix_time_the_fake_minute_ends(
    session: requests.Session, speed: float, reset: float
) -> None:
    clock = FakeClock(start=1000.0)  # 20 s of the fake's clock before its minute ends
    with FakeCriteo(timer=clock, speed=speed) as fake:
        fake.wall_clock = lambda: EPOCH
        fake.rate_limit = 1
        admitted, refused = call(fake, session), call(fake, session)
    assert refused.status_code == 429
    # Whole seconds, rounded up, as Criteo sends it; the same on the admitted call.
    assert refused.headers["x-ratelimit-reset"] == str(math.floor(reset) + 1)
    assert admitted.headers["x-ratelimit-reset"] == refused.headers["x-ratelimit-reset"]


def test_a_token_lives_its_expires_in_in_real_seconds_at_any_speed(
    session: requests.Session,
) -> None:
    clock = FakeClock(start=1000.0)
    with FakeCriteo(timer=clock, speed=10, lifetime=900) as fake:
        headers = bearer(fake, session)
        me = f"{fake.url}/{V}/retail-media/me"
        clock.advance(900 * 10 - 1)  # a second of the fake's clock before 900 real seconds
        assert session.get(me, headers=headers, timeout=5).status_code == 200
        clock.advance(1)
        assert session.get(me, headers=headers, timeout=5).status_code == 401


def test_arrivals_say_when_each_counted_call_came_and_whether_it_was_admitted(
    session: requests.Session,
) -> None:
    clock = FakeClock(start=1000.0)
    with FakeCriteo(timer=clock) as fake:
        fake.rate_limit = 2
        for _ in range(3):
            call(fake, session)
            clock.advance(1)
        clock.advance(20)  # 1023: the fake's next minute
        call(fake, session, "report")  # the reporting budget, unlimited here
        call(fake, session)
        session.get(f"{fake.url}/{V}/retail-media/me", timeout=5)  # no token: not counted
        client = FakeCriteo.CLIENT_ID
        assert fake.arrivals() == [
            Arrival(1000.0, client, reporting=False, admitted=True),
            Arrival(1001.0, client, reporting=False, admitted=True),
            Arrival(1002.0, client, reporting=False, admitted=False),
            Arrival(1023.0, client, reporting=True, admitted=True),
            Arrival(1023.0, client, reporting=False, admitted=True),
        ]
        assert fake.rate_limited == 1
        fake.reset_counters()
        assert fake.arrivals() == []


def test_arrivals_are_recorded_without_a_rate_limit(session: requests.Session) -> None:
    clock = FakeClock(start=5.0)
    with FakeCriteo(timer=clock) as fake:
        call(fake, session)
        clock.advance(0.5)
        call(fake, session)
        assert [(a.at, a.admitted) for a in fake.arrivals()] == [(5.0, True), (5.5, True)]
        assert fake.rate_limited == 0
