"""A fleet of processes shares one Criteo rate budget through RedisRateLimiter: the counts.

The bulk job of benchmarks/fleet.py, made small: 4 processes x 2 threads, each process with
its own ``requests_criteo.session()``, against a FakeCriteo that allows 60 calls a minute of
a clock running ten times as fast as real time (a turn every 100 ms or so), for a little over
two minutes of that clock. Only counts are asserted here (429s, the calls in every 60 s of
the fake's clock, the calls done); the timings and ratios are the benchmark's
(docs/performance.md).
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from benchmarks.fleet import Fleet, Job, most_in_any_minute, run
from requests_criteo.testing import RedisServer

from .redis_server import (  # noqa: F401 - the `server` fixture
    server_fixture,
    skip_without_a_binary,
)

skip_without_a_binary()

#: 129 calls: more than two minutes of the budget, so that a fleet that ignores it is
#: refused whatever the phase of the fake's minutes (see the test without a limiter). The
#: limiter runs at 95 % of the budget: a call may then be held up 0.3 s on its way, on a
#: loaded machine, before it can land in a minute that is full already (the benchmark
#: measures at 98 % and at 100 %).
JOB = Job(processes=4, threads=2, budget=60, speed=10, minutes=2.15, headroom=0.95)


def test_a_fleet_sharing_a_redis_rate_limiter_keeps_every_minute_within_the_budget(
    server: RedisServer,
) -> None:
    fleet = run("redis", JOB, server.url)
    assert fleet.statuses == {"200": JOB.calls}  # all the work done...
    assert fleet.rate_limited == 0  # ...without a 429...
    assert len(fleet.admitted) == JOB.calls
    assert fleet.most_in_a_minute <= JOB.budget  # ...and within the budget in any 60 s


def test_the_same_fleet_without_a_limiter_is_refused_by_the_fake() -> None:
    # 129 calls sent back to back take well under a second, far less than the 6 s of a
    # minute of the fake: they cannot spread over the three minutes they would need.
    fleet = run("none", JOB)
    assert fleet.rate_limited > 0
    assert fleet.statuses == {"200": JOB.calls}  # each 429 retried after x-ratelimit-reset


def test_the_most_calls_in_any_minute_counts_sliding_windows_not_the_fakes_minutes() -> None:
    assert most_in_any_minute([]) == 0
    assert most_in_any_minute([0.0, 30.0, 59.9, 60.0, 119.0]) == 3
    # 4 calls in each of the fake's minutes [0, 60) and [60, 120), but 7 in [10, 70).
    assert most_in_any_minute([10.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 110.0]) == 7


def test_the_budget_used_is_the_pace_between_the_first_and_the_last_call() -> None:
    def used(admitted: list[float]) -> float:
        return Fleet("redis", Job(budget=60), Counter(), 0, 0.0, admitted).used

    assert used([float(t) for t in range(60)]) == pytest.approx(1.0)  # one a second
    assert used([2.0 * t for t in range(30)]) == pytest.approx(0.5)
    assert used([5.0]) == 0.0
    assert used([5.0, 5.0]) == math.inf


@pytest.mark.parametrize(
    ("pacing", "redis_url", "error"),
    [("sometimes", "redis://127.0.0.1:1/0", "pacing must be one of"), ("redis", None, "redis_url")],
)
def test_an_unknown_pacing_or_a_redis_pacing_without_redis_is_refused(
    pacing: str, redis_url: str | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        run(pacing, JOB, redis_url)
