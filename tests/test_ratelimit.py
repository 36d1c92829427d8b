"""The client-side rate limiter: pacing, bursts, threads, and bad arguments."""

from __future__ import annotations

import pickle

import pytest

from requests_criteo.ratelimit import RateLimiter, is_reporting

from .conftest import FakeClock, Sleeps, reserve_in_threads


def test_calls_are_spaced_evenly(clock: FakeClock, sleeps: Sleeps) -> None:
    limiter = RateLimiter(60, clock=clock, sleep=sleeps)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 1.0, 2.0, 3.0]
    assert sleeps == [1.0, 2.0, 3.0]


def test_a_quiet_period_refills_the_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(60, burst=3, clock=clock)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    clock.advance(100)
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_no_minute_ever_holds_more_than_the_budget(clock: FakeClock) -> None:
    limiter = RateLimiter(250, clock=clock)
    turns = []
    for _ in range(1000):
        turns.append(clock() + limiter.reserve())
        clock.advance(0.01)  # a caller far faster than the budget
    for i, start in enumerate(turns):
        in_window = sum(1 for t in turns[i:] if t < start + 60)
        assert in_window <= 250


def test_threads_share_one_budget(clock: FakeClock) -> None:
    waits = reserve_in_threads(RateLimiter(40, clock=clock), 20)
    assert waits == [pytest.approx(i * 1.5) for i in range(20)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0,), ValueError),
        ((-5,), ValueError),
        ((float("inf"),), ValueError),
        ((float("nan"),), ValueError),
        (("250",), TypeError),
        ((True,), TypeError),
    ],
)
def test_bad_budgets(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error, match="per_minute"):
        RateLimiter(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [0, -1, 1.5, True])
def test_bad_burst(burst: object) -> None:
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(60, burst=burst)  # type: ignore[arg-type]


def test_pickles_with_a_new_lock() -> None:
    limiter = RateLimiter(60)
    copy = pickle.loads(pickle.dumps(limiter))
    assert copy.acquire() == 0.0
    assert repr(copy) == "RateLimiter(per_minute=60, burst=1)"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/2025-10/statistics/report", True),
        ("/2025-10/placements/report", True),
        ("/2025-10/transactions/report", True),
        ("/2025-10/log-level/advertisers/1/report", True),
        ("/2025-10/retail-media/reports/campaigns", True),
        ("/2025-10/retail-media/me", False),
        ("/2025-10/marketing-solutions/audiences?q=/report", False),
    ],
)
def test_reporting_paths(path: str, expected: bool) -> None:
    assert is_reporting(path) is expected
