"""A 429 pauses the limiter that paced the call, and the limiter counts what it did.

Nothing sleeps: the limiters get a fake monotonic clock and a fake wall clock
(``EPOCH + clock()``), and sleeps that are recorded, or that move the clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from requests_criteo import RateLimiter, RateLimitStats
from requests_criteo.testing import FakeCriteo

from .conftest import SECRET, FakeClock, Sleeps, reserve_in_threads
from .test_rate_limits import EPOCH, Time, mount, retry


def wall(clock: FakeClock) -> float:
    return EPOCH + clock()


def limiter(
    clock: FakeClock, per_minute: float = 60, *, burst: int = 1, sleep: Sleeps | None = None
) -> RateLimiter:
    return RateLimiter(
        per_minute,
        burst=burst,
        clock=clock,
        sleep=Sleeps() if sleep is None else sleep,
        wall_clock=lambda: wall(clock),
    )


def test_a_pause_holds_every_thread_until_its_time(clock: FakeClock) -> None:
    paced = limiter(clock)
    paced.pause_until(wall(clock) + 30)
    assert reserve_in_threads(paced, 5) == [30.0, 31.0, 32.0, 33.0, 34.0]


def test_a_shorter_pause_does_not_shorten_a_longer_one(clock: FakeClock) -> None:
    paced = limiter(clock)
    paced.pause_until(wall(clock) + 30)
    paced.pause_until(wall(clock) + 10)
    assert paced.reserve() == 30.0


def test_a_pause_in_the_past_changes_nothing(clock: FakeClock) -> None:
    paced = limiter(clock, burst=2)
    paced.pause_until(wall(clock) - 100)
    assert [paced.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]


def test_turns_after_a_pause_stay_evenly_spaced(clock: FakeClock) -> None:
    paced = limiter(clock, burst=3)  # a quiet limiter with a burst to spare
    paced.pause_until(wall(clock) + 10)
    assert [paced.reserve() for _ in range(4)] == [10.0, 11.0, 12.0, 13.0]


def test_stats_count_calls_waits_and_429s(clock: FakeClock) -> None:
    paced = limiter(clock, sleep=Sleeps())
    assert paced.stats() == RateLimitStats(calls=0, waited=0.0, rate_limited=0)
    for _ in range(3):
        paced.acquire()  # waits 0, 1, 2 (the clock stands still)
    paced.rate_limited()  # a 429 that named no time: counted, no pause
    assert paced.reserve() == 3.0
    paced.rate_limited(wall(clock) + 20)
    assert paced.acquire() == 20.0
    assert paced.stats() == RateLimitStats(calls=4, waited=23.0, rate_limited=2)


@pytest.fixture
def fake(clock: FakeClock, t: Time) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}, lifetime=36000) as server:
        server.wall_clock = t.wall
        yield server


@pytest.fixture
def t(clock: FakeClock) -> Time:
    return Time(clock)


@pytest.mark.parametrize(
    "header", [("x-ratelimit-reset", str(int(EPOCH) + 1000 + 20)), ("Retry-After", "20")]
)
def test_a_429_the_adapter_returns_pauses_its_limiter(
    fake: FakeCriteo, clock: FakeClock, t: Time, header: tuple[str, str]
) -> None:
    path = "/2025-10/retail-media/accounts"
    fake.set_response(path, status=429, headers=dict([header]))
    paced = limiter(clock, 600, sleep=Sleeps())
    with mount(fake, clock, max_retries=retry(t, total=0), rate_limit=paced) as s:
        assert s.get(fake.url + path, timeout=5).status_code == 429
    assert paced.acquire() == 20.0  # the clock stands at 1000: until 1020
    assert paced.stats().rate_limited == 1


def test_a_429_without_a_time_is_counted_and_pauses_nothing(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.set_response("/2025-10/x", status=429)
    paced = limiter(clock, 600, sleep=Sleeps())
    with mount(fake, clock, max_retries=retry(t, total=0), rate_limit=paced) as s:
        s.get(fake.url + "/2025-10/x", timeout=5)
    assert paced.acquire() == pytest.approx(0.1)  # the next turn, no more
    assert paced.stats().rate_limited == 1


def test_a_retried_429_pauses_the_limiter_before_the_retry_waits(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 2
    clock.advance(50)  # at 1050: the fake's window ends at 1080, its reset says 1081
    paced = limiter(clock, 6000, sleep=Sleeps())
    seen: list[tuple[float, float]] = []

    def sleep(seconds: float) -> None:
        # While this call waits to retry, another thread asks the limiter for a turn.
        seen.append((seconds, paced.reserve()))
        t.sleep(seconds)

    policy = retry(t)
    policy.sleep_func = sleep
    with mount(fake, clock, max_retries=policy, rate_limit=paced) as s:
        statuses = [s.get(f"{fake.url}/2025-10/a/{i}", timeout=5).status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    assert seen == [(31.0, 31.0)]
    stats = paced.stats()
    assert (stats.calls, stats.rate_limited) == (3, 1)
    assert stats.waited == pytest.approx(0.03)


def test_a_callers_own_on_429_is_still_told_of_each_retried_429(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 1
    paced = limiter(clock, 6000, sleep=Sleeps())
    told: list[int] = []
    policy = retry(t, on_429=lambda response: told.append(response.status))
    with mount(fake, clock, max_retries=policy, rate_limit=paced) as s:
        statuses = [s.get(f"{fake.url}/2025-10/a/{i}", timeout=5).status_code for i in range(2)]
    assert statuses == [200, 200]
    assert told == [429]  # the caller's hook, as without a limiter...
    assert paced.stats().rate_limited == 1  # ...and the limiter's pause
