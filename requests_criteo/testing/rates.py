"""The fake's per-minute rate budgets, the speed of its clock, and when each call arrived.

What lives here: ``_RateWindows``, which counts each client's calls per budget (ordinary or
reporting) in windows of 60 s of the fake's timer, refuses those over the budget and records
every call it counts as an :class:`Arrival`; ``_Budgets``, the part of
:class:`~requests_criteo.testing.FakeCriteo` that a test reads and sets about budgets (mixed
into it); and the speed of the fake's clock (``_check_speed``, ``_SpedUpClock``). What does
not: the route and token checks that come first, and the answers
(:mod:`~requests_criteo.testing.api`).

The fake's clock may run faster than real time, so that a minute of Criteo's budget passes
in seconds. What the fake tells a client stays in real time: ``x-ratelimit-reset`` is the
real Unix time at which the fake's window ends, as Criteo sends it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .api import _EnvelopeError, _is_reporting


def _check_speed(speed: object) -> float:
    """*speed* as a float: a positive, finite number of fake seconds per real second."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise TypeError(
            f"speed must be a number (seconds of the fake's clock per real second), "
            f"not {type(speed).__name__}"
        )
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be positive and finite, got {speed!r}")
    return float(speed)


class _SpedUpClock:
    """A monotonic clock running *speed* times as fast as *clock* (seconds; only
    differences matter): at speed 10, a minute of it passes in 6 seconds of *clock*."""

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.clock = clock

    def __call__(self) -> float:
        return self.clock() * self.speed

    def __repr__(self) -> str:
        return f"_SpedUpClock(speed={self.speed:g})"


@dataclass(frozen=True)
class Arrival:
    """One API call counted against a rate budget: see :meth:`FakeCriteo.arrivals`."""

    #: The fake's :attr:`~FakeCriteo.timer` when the call was counted, in seconds.
    at: float
    #: The client whose token the call carried.
    client_id: str
    #: Whether it counted against the reporting budget.
    reporting: bool
    #: Whether it was answered (``False``: refused with 429, over the budget).
    admitted: bool


class _Limits(Protocol):
    """The fake's rate limit settings, read at each call so a test may change them."""

    rate_limit: int | None
    reporting_rate_limit: int | None
    timer: Callable[[], float]
    wall_clock: Callable[[], float]

    @property
    def speed(self) -> float: ...


class _RateWindows:
    """Calls counted per client, budget (ordinary or reporting) and minute of the timer."""

    def __init__(self, limits: _Limits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, bool, int], int] = {}
        self._refused = 0
        self._arrivals: list[Arrival] = []

    def refused(self) -> int:
        """Calls answered 429 since the last :meth:`clear`."""
        with self._lock:
            return self._refused

    def arrivals(self) -> list[Arrival]:
        """Every call counted since the last :meth:`clear`, in the order counted (a copy)."""
        with self._lock:
            return list(self._arrivals)

    def admit(self, client_id: str, path: str) -> list[tuple[str, str]]:
        """Count a call and return its x-ratelimit headers; ``_EnvelopeError`` (429) if over."""
        reporting = _is_reporting(path)
        limit = self._limits.reporting_rate_limit if reporting else self._limits.rate_limit
        now = self._limits.timer()
        if limit is None:  # no budget: the arrival is recorded, nothing is counted
            with self._lock:
                self._arrivals.append(Arrival(now, client_id, reporting, True))
            return []
        window = math.floor(now / 60)
        left = (window + 1) * 60 - now  # seconds of the fake's clock
        reset = int(self._limits.wall_clock() + left / self._limits.speed) + 1
        with self._lock:
            key = (client_id, reporting, window)
            used = self._counts.get(key, 0) + 1
            self._counts[key] = used
            if used > limit:
                self._refused += 1
            self._arrivals.append(Arrival(now, client_id, reporting, used <= limit))
        headers = [
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(max(0, limit - used))),
            ("x-ratelimit-reset", str(reset)),
        ]
        if used > limit:
            raise _EnvelopeError(
                429, "quota", "too-many-requests", "API rate limit exceeded", headers
            )
        return headers

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._refused = 0
            self._arrivals.clear()


class _Budgets:
    """What :class:`FakeCriteo` offers about Criteo's per-minute budgets (mixed into it)."""

    rate_limit: int | None = None
    """Calls a minute each client may make to ordinary API paths; ``None``: no limit.

    Counted in windows of 60 s of :attr:`timer`, like Criteo's per-minute budgets (250 for
    client-credentials apps). Over it, the fake answers 429 with Criteo's
    ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (the Unix time,
    by :attr:`wall_clock`, at which the window ends: its seconds left on :attr:`timer` divided
    by :attr:`speed`, rounded up)."""
    reporting_rate_limit: int | None = None
    """The same for reporting paths (a segment ``report``, ``reports``, ``log-level``; 40)."""

    _rates: _RateWindows

    @property
    def rate_limited(self) -> int:
        """API requests answered 429 because a :attr:`rate_limit` was exceeded."""
        return self._rates.refused()

    def arrivals(self) -> list[Arrival]:
        """Every API call counted against a budget since :meth:`reset_counters`, in order.

        Each :class:`Arrival` says when it came (on :attr:`timer`), from which client, to
        which budget, and whether it was admitted or refused with 429. Calls are recorded
        with or without a :attr:`rate_limit` (then all are admitted) once they pass the
        route and token checks; a canned answer set with ``authorize=False`` is not
        counted. With them a test checks any 60 s, not only the fake's own minutes::

            times = sorted(a.at for a in fake.arrivals() if a.admitted)
            assert all(j - i <= 250 for i, j in enumerate(
                bisect.bisect_left(times, t + 60) for t in times))  # any 60 s: at most 250
        """
        return self._rates.arrivals()
