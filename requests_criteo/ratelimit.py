"""A client-side rate limiter, so that bulk scripts stay under Criteo's limits.

What lives here: :class:`RateLimiter` (one budget of calls per minute, shared by threads),
:class:`RateLimitStats` (what a limiter has done) and :func:`is_reporting` (which paths
count against Criteo's reporting budget). What does not: retrying 429s, which
:class:`~requests_criteo.CriteoRetry` does.

Criteo allows client-credentials apps 250 calls a minute, and 40 a minute on reporting
endpoints. Running into the limit costs a 429 and a wait; pacing calls costs only the
wait. The limiter spaces calls evenly, one every ``60 / per_minute`` seconds, which keeps
any 60-second window within the budget. With ``burst=B`` a quiet limiter lets B calls go
back to back, so a window may then hold up to ``per_minute + B - 1`` calls: keep the
default ``burst=1`` to stay strictly within Criteo's limits.

A bulk script may wait before most of its calls: each wait is logged at DEBUG, and at
INFO one line a minute at most sums them up, so that pacing does not drown a log.

When Criteo answers 429 all the same (another program spends the budget too), the
adapter pauses the limiter until the time Criteo named (:meth:`RateLimiter.pause_until`),
so that the other threads do not spend their calls on more 429s.

Authorization-code apps have 10 calls a minute per consenting account: a limiter made with
``per_account=True`` keeps one budget per account (the ``account=`` of the auth), shared
by every adapter and session of that account that is given the limiter
(:meth:`RateLimiter.for_credentials`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from ._fork import reset_in_child
from ._waits import pause, pause_in_loop

__all__ = ["RateLimitStats", "RateLimiter", "budget_of", "is_reporting"]

log = logging.getLogger("requests_criteo")

_REPORTING_MARKERS = ("/report", "/log-level")  # "/report" also finds "/reports"
_SUMMARY_EVERY = 60.0  # seconds between two INFO lines about pacing, at least


def is_reporting(path: str) -> bool:
    """Whether *path* is one of Criteo's reporting endpoints (their own, lower budget).

    >>> is_reporting("/2025-10/statistics/report"), is_reporting("/2025-10/retail-media/me")
    (True, False)
    """
    path = path.split("?", 1)[0].lower()
    return any(marker in path for marker in _REPORTING_MARKERS)


def budget_of(
    value: float | RateLimiter | None, name: str, token_url: str, client_id: str, account: str
) -> RateLimiter | None:
    """The limiter that paces an app's (or account's) calls, of the *value* given as the
    option *name*: calls a minute (a limiter of its own), or a limiter to share."""
    if value is None:
        return None
    if not isinstance(value, RateLimiter):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be calls per minute (a number) or a RateLimiter")
        value = RateLimiter(value)
    return value.for_credentials(token_url, client_id, account)


@dataclass(frozen=True)
class RateLimitStats:
    """What a limiter has done since it was made: see :meth:`RateLimiter.stats`."""

    #: Calls made: every ``acquire()``.
    calls: int
    #: Seconds waited in all, by those calls.
    waited: float
    #: 429s that Criteo answered to calls paced by the limiter (the adapter reports them).
    rate_limited: int


class RateLimiter:
    """At most *per_minute* calls a minute, shared by every thread that uses it.

    ``acquire()`` returns at once while the budget allows and otherwise sleeps until the
    call's turn; turns are handed out in order, outside any lock held while sleeping::

        limiter = RateLimiter(250)
        limiter.acquire()       # before each call

    :param per_minute: calls allowed per minute (a positive number).
    :param burst: calls that may go back to back after a quiet period (default 1: none).
    :param per_account: one budget of *per_minute* for each account (the ``account=`` of the
        auth whose calls an adapter paces) rather than one for all: Criteo allows
        authorization-code apps 10 calls a minute per consenting account.
    :param clock: a monotonic clock, in seconds, for the turns and the INFO summaries;
        tests inject one.
    :param sleep: how to wait; tests inject one that records instead.
    :param wall_clock: the Unix time now (``time.time``), to turn the time given to
        :meth:`pause_until` into a time of *clock*.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 1,
        per_account: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, (int, float)):
            raise TypeError("per_minute must be a number of calls per minute, e.g. 250")
        if not per_minute > 0 or per_minute == float("inf"):
            raise ValueError(f"per_minute must be positive and finite, got {per_minute!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive int, got {burst!r}")
        if not isinstance(per_account, bool):
            raise TypeError("per_account must be True or False")
        self.per_minute = float(per_minute)
        self.burst = burst
        self.per_account = per_account
        self.interval = 60.0 / self.per_minute
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._next: float | None = None  # see reserve()
        self._paused_until: float | None = None  # a time of clock(); see pause_until()
        self._stats = RateLimitStats(0, 0.0, 0)
        self._budgets: dict[str, RateLimiter] = {}  # see _budget()
        # Waits not yet summed up at INFO, and when the last summary was logged.
        self._unsummed = (0, 0.0)
        self._summed_at: float | None = None
        reset_in_child(self)

    def __repr__(self) -> str:
        each = ", per_account=True" if self.per_account else ""
        return f"RateLimiter(per_minute={self.per_minute:g}, burst={self.burst}{each})"

    def __getstate__(self) -> dict[str, object]:
        with self._lock:  # another thread may be adding a budget
            state = self.__dict__.copy()
            state["_budgets"] = dict(self._budgets)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        reset_in_child(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it

    def for_credentials(self, token_url: str, client_id: str, account: str) -> RateLimiter:
        """The limiter that paces the calls made with these credentials.

        What an adapter asks of the limiter it is given. This limiter itself, unless it is
        ``per_account``: then the account's own budget (the account of this token URL and
        client id: two apps' accounts of one name are two accounts), made on first use
        with this limiter's settings and the same from then on, for every adapter and
        session of the account.
        """
        if not self.per_account:
            return self
        return self._budget(
            json.dumps([token_url, client_id, account]),
            partial(
                RateLimiter,
                self.per_minute,
                burst=self.burst,
                clock=self.clock,
                sleep=self.sleep,
                wall_clock=self.wall_clock,
            ),
        )

    def _budget(self, name: str, make: Callable[[], RateLimiter]) -> RateLimiter:
        """The budget called *name* among those this limiter hands out; *make* makes it."""
        with self._lock:
            budget = self._budgets.get(name)
            if budget is None:
                budget = self._budgets[name] = make()
            return budget

    def reserve(self) -> float:
        """Take the next turn; return the seconds to wait for it (0 if it is now).

        The generic cell rate algorithm: ``_next`` is when the budget would next be
        free if calls came exactly on time; a call may go up to ``burst - 1`` intervals
        before that.
        """
        with self._lock:
            now = self.clock()
            scheduled = now if self._next is None else self._next
            turn = max(now, scheduled - (self.burst - 1) * self.interval)
            if self._paused_until is not None:
                turn = max(turn, self._paused_until)
            self._next = max(scheduled, turn) + self.interval
            return float(turn - now)

    def acquire(self) -> float:
        """Wait for this call's turn; return the seconds waited.

        The wait is logged at DEBUG, summed up at INFO (see :meth:`_sum_up`) and announced
        to watchers (the command line's countdown).
        """
        wait = self._reserved(self.reserve())
        if wait > 0:
            pause(wait, self._why, self.sleep)
        return wait

    async def acquire_in_loop(self) -> float:
        """:meth:`acquire` for a task: the turn is taken off the event loop (a
        ``RedisRateLimiter`` asks Redis for it), and waited for with ``asyncio.sleep``."""
        turn = await asyncio.get_running_loop().run_in_executor(None, self.reserve)
        wait = self._reserved(turn)
        if wait > 0:
            await pause_in_loop(wait, self._why, self.sleep)
        return wait

    @property
    def _why(self) -> str:
        return f"pacing calls to {self.per_minute:g} a minute"

    def _reserved(self, wait: float) -> float:
        """Count a call that waits *wait* for its turn, and log the wait; *wait*."""
        with self._lock:
            done = self._stats
            self._stats = replace(done, calls=done.calls + 1, waited=done.waited + wait)
        if wait > 0:
            log.debug("rate limit (%g calls/min): waiting %.2f s", self.per_minute, wait)
            self._sum_up(wait)
        return wait

    def pause_until(self, unix_time: float) -> None:
        """Hold every later turn, in any thread, until *unix_time* (a Unix time) at least.

        What the adapter does when Criteo answers 429 with ``x-ratelimit-reset`` (or
        ``Retry-After``). A pause never shortens one already set; a turn already handed
        out keeps its time. The turns after the pause are spaced as before, one every
        ``60 / per_minute`` seconds: the pause uses up the burst, so none comes at its end.
        A limiter that hands out budgets (:meth:`for_credentials`) pauses them all too.
        """
        with self._lock:
            budgets = list(self._budgets.values())
        for budget in budgets:
            budget.pause_until(unix_time)
        with self._lock:
            until = self.clock() + (unix_time - self.wall_clock())
            if self._paused_until is None or until > self._paused_until:
                self._paused_until = until
            # The first turn after the pause is at its end; the next ones an interval apart.
            spaced = until + (self.burst - 1) * self.interval
            if self._next is None or spaced > self._next:
                self._next = spaced

    def rate_limited(self, until: float | None = None) -> None:
        """Count a 429 answered to a call this limiter paced; pause until *until* if given.

        The adapter calls it; *until* is the Unix time Criteo named, if it named one.
        """
        with self._lock:
            self._stats = replace(self._stats, rate_limited=self._stats.rate_limited + 1)
        if until is not None:
            self.pause_until(until)

    def stats(self) -> RateLimitStats:
        """Calls made, seconds waited and 429s seen, since the limiter was made::

        >>> RateLimiter(250).stats()
        RateLimitStats(calls=0, waited=0.0, rate_limited=0)

        A limiter that hands out budgets (:meth:`for_credentials`) counts theirs too.
        """
        with self._lock:
            own, budgets = self._stats, list(self._budgets.values())
        done = [own, *(budget.stats() for budget in budgets)]
        return RateLimitStats(
            sum(part.calls for part in done),
            sum(part.waited for part in done),
            sum(part.rate_limited for part in done),
        )

    def _sum_up(self, wait: float) -> None:
        """Count *wait*; log the waits counted so far at INFO unless that was done within
        the last minute. The first wait is logged at once, so pacing is never a surprise.
        """
        with self._lock:
            count, total = self._unsummed[0] + 1, self._unsummed[1] + wait
            now = self.clock()
            if self._summed_at is not None and now - self._summed_at < _SUMMARY_EVERY:
                self._unsummed = (count, total)
                return
            self._unsummed, self._summed_at = (0, 0.0), now
        log.info(
            "rate limit (%g calls/min): %d call(s) paced, %.2f s waited in all "
            "(at most one such line a minute; each wait at DEBUG)",
            self.per_minute,
            count,
            total,
        )
