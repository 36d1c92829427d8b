"""One Criteo rate budget shared by a fleet: a bulk job of processes x threads, measured.

What lives here: :func:`run`, which runs the bulk job (:class:`Job`) against a
:class:`~requests_criteo.testing.FakeCriteo` that enforces a per-minute budget on a clock
faster than real time, paced one of the ways in :data:`PACINGS`, and returns what it did
(:class:`Fleet`); :func:`most_in_any_minute`. What does not: the report and its targets
(:mod:`benchmarks.__main__`), starting a ``redis-server`` (the caller gives its URL), and
the assertions of the test suite (``tests/test_fleet_budget.py`` runs the same job).

The job: P processes (``spawn``ed, not forked from a threaded parent), each with its own
``requests_criteo.session()`` pointed at the fake, T threads in each, make a fixed number of
GET calls between them, each thread its share. Every thread first sends one call the fake
does not count (a 404 outside the API, which fetches the process's token and opens the
thread's connection) and says it is ready; when all are, the parent starts them together
with one event, so that start-up is not measured.

The fake counts a call when it *arrives*; a limiter paces it when it *leaves*. At exactly
the budget, a call held up on its way for a few milliseconds can land in a 60 s that holds
the budget already, as its budget + 1st call. So the limiters run at a share of the budget,
``Job.headroom`` (0.98: 245 of 250), and the ``redis-100`` pacing shows what happens at 100 %.
A limiter paces in real time: it is given ``budget x share x speed`` calls a real minute.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from queue import Empty
from typing import Any, Final

import requests

import requests_criteo
from requests_criteo import RateLimiter
from requests_criteo.testing import FakeCriteo

__all__ = ["PACINGS", "Fleet", "Job", "most_in_any_minute", "run"]

#: The ways of pacing the job, and how the report names them.
PACINGS: Final = {
    "redis": "`RedisRateLimiter`, one budget for the fleet",
    "redis-100": "`RedisRateLimiter` at 100 % of the budget",
    "per-process": "a `RateLimiter` in each process",
    "none": "no limiter",
    "alone": "one process alone, `RateLimiter`",
}
API_PATH: Final = "/2025-10/retail-media/accounts"
WARM_UP_PATH: Final = "/warm-up"  # not an API path: the fake answers 404 and counts nothing


@dataclass(frozen=True)
class Job:
    """The bulk job: the fleet's size, the fake's budget and clock, the work, the headroom."""

    processes: int = 4
    threads: int = 2
    #: Calls a minute of the fake's clock, per client (Criteo: 250).
    budget: int = 250
    #: Seconds of the fake's clock per real second.
    speed: float = 5.0
    #: The work, in minutes of the budget: ``budget x minutes`` calls in all.
    minutes: float = 2.0
    #: The share of the budget the limiters pace at (``redis-100``: 1).
    headroom: float = 0.98

    @property
    def calls(self) -> int:
        return round(self.budget * self.minutes)

    def size(self, pacing: str) -> tuple[int, int]:
        """Processes and threads for *pacing*: one process when ``alone``."""
        return (1 if pacing == "alone" else self.processes), self.threads

    def share(self, pacing: str) -> float | None:
        """The share of the budget *pacing*'s limiter runs at; ``None``: no limiter."""
        return {"none": None, "redis-100": 1.0}.get(pacing, self.headroom)


@dataclass
class Fleet:
    """What one run of the job did."""

    pacing: str
    job: Job
    #: Answers and exceptions (by name) the callers got, counted.
    statuses: Counter[str]
    #: 429s the fake answered, retried ones included.
    rate_limited: int
    #: Real seconds from the start, all threads together, to the last process's end.
    wall: float
    #: When the fake admitted each call, on its clock, in order.
    admitted: list[float] = field(repr=False)

    @property
    def ok(self) -> int:
        """Calls answered 200."""
        return self.statuses["200"]

    @property
    def most_in_a_minute(self) -> int:
        """The most calls the fake admitted in any 60 s of its clock."""
        return most_in_any_minute(self.admitted)

    @property
    def used(self) -> float:
        """The share of the budget used from the first admitted call to the last."""
        if len(self.admitted) < 2:
            return 0.0
        span = self.admitted[-1] - self.admitted[0]
        if span <= 0:  # all at once: no pace to speak of
            return math.inf
        return (len(self.admitted) - 1) * 60 / (span * self.job.budget)


def most_in_any_minute(times: Sequence[float]) -> int:
    """The most of *times* (seconds, sorted) in any window ``[t, t + 60)``.

    >>> most_in_any_minute([0, 30, 59.9, 60, 119])
    3
    """
    return max((bisect_left(times, t + 60) - i for i, t in enumerate(times)), default=0)


def _limiter(pacing: str, job: Job, redis_url: str | None) -> RateLimiter | None:
    share = job.share(pacing)
    if share is None:
        return None
    per_real_minute = job.budget * share * job.speed
    if not pacing.startswith("redis"):
        return RateLimiter(per_real_minute)
    if redis_url is None:
        raise ValueError(f"the {pacing} pacing needs a redis_url")
    # A name of its own: no turn of an earlier run is left in the budget.
    name = f"fleet-{uuid.uuid4().hex}"
    return requests_criteo.RedisRateLimiter(redis_url, per_real_minute, name=name)


def _calls(session: requests.Session, url: str, count: int, ready: Any, go: Any) -> Counter[str]:
    """One thread: the uncounted warm-up, the start, then *count* calls."""
    session.get(url + WARM_UP_PATH, timeout=30).close()
    ready.put(None)
    go.wait()
    seen: Counter[str] = Counter()
    for _ in range(count):
        try:
            with session.get(url + API_PATH, timeout=30) as response:
                seen[str(response.status_code)] += 1
        except Exception as exc:  # a failed call is a result, not a crash
            seen[type(exc).__name__] += 1
    return seen


def _process(
    shares: list[int], url: str, token_url: str, limiter: RateLimiter | None, queues: Any
) -> None:
    """One process of the fleet: its own session, a thread per share of the calls.

    *queues*: where each thread says it is ready (``None``, or what went wrong), the event
    that starts them all, and where the process puts its statuses.
    """
    ready, go, out = queues
    session = requests_criteo.session(
        FakeCriteo.CLIENT_ID,
        FakeCriteo.CLIENT_SECRET,
        token_url=token_url,
        api_origins=[url],
        rate_limit=limiter,
        pool_maxsize=len(shares),
    )
    session.trust_env = False  # loopback only: no proxy from the environment
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def work(count: int) -> None:
        try:
            mine = _calls(session, url, count, ready, go)
        except Exception as exc:  # the warm-up failed: the parent stops the run
            ready.put(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            seen.update(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session.close()
    out.put(dict(seen))


def _shares(calls: int, workers: int) -> list[int]:
    return [calls // workers + (1 if w < calls % workers else 0) for w in range(workers)]


def _gather(queue: Any, count: int, workers: list[Any], within: float) -> list[Any]:
    """*count* items from *queue* within *within* seconds; at once an error if a worker dies."""
    items: list[Any] = []
    end = time.monotonic() + within
    while len(items) < count:
        try:
            items.append(queue.get(timeout=0.2))
        except Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed or time.monotonic() > end:
                raise RuntimeError(
                    f"the fleet failed: {len(items)} of {count} reports, exit codes {failed}"
                ) from None
    return items


def run(pacing: str, job: Job, redis_url: str | None = None) -> Fleet:
    """Run *job* paced as *pacing* (a key of :data:`PACINGS`); what it did.

    :param redis_url: the Redis the ``redis`` pacings share their budget on.
    :raises RuntimeError: a process died, or a thread failed before the start.
    """
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {', '.join(PACINGS)}, not {pacing!r}")
    processes, threads = job.size(pacing)
    shares = _shares(job.calls, processes * threads)
    limiter = _limiter(pacing, job, redis_url)
    ctx: Any = multiprocessing.get_context("spawn")
    # Long enough for the job at a fifth of its pace.
    within = 5 * job.calls * 60 / (job.budget * job.headroom * job.speed)
    with FakeCriteo(speed=job.speed) as fake:
        fake.rate_limit = job.budget
        queues = ctx.Queue(), ctx.Event(), ctx.Queue()
        workers = [
            ctx.Process(
                target=_process,
                args=(shares[p * threads : (p + 1) * threads], fake.url, fake.token_url),
                kwargs={"limiter": limiter, "queues": queues},
                daemon=True,
            )
            for p in range(processes)
        ]
        for worker in workers:
            worker.start()
        try:
            problems = [p for p in _gather(queues[0], len(shares), workers, 60) if p]
            if problems:
                raise RuntimeError(f"the fleet failed before the start: {problems[0]}")
            queues[1].set()
            began = time.monotonic()
            reports = _gather(queues[2], processes, workers, within)
            wall = time.monotonic() - began
        finally:
            queues[1].set()
            for worker in workers:
                worker.join(10)
                if worker.is_alive():
                    worker.kill()
        statuses: Counter[str] = sum((Counter(r) for r in reports), Counter())
        admitted = sorted(a.at for a in fake.arrivals() if a.admitted)
        return Fleet(pacing, job, statuses, fake.rate_limited, wall, admitted)
