"""The cost of one request through each client, timed in interleaved rounds.

What lives here: :func:`measure`, :class:`Timings`, :func:`pinned`, and :class:`Timed`, what
:func:`measure` needs of a client (:func:`timed_calls` times a sync one's calls). What does
not: building the clients (:mod:`benchmarks.clients` for requests,
:mod:`benchmarks.httpx_path` for httpx) or printing (:mod:`benchmarks.__main__`).

Each round times a few requests of every client in turn, in an order that rotates from
round to round, with the garbage collector off, each block after a few untimed requests
(CPython specialises requests' shared bytecode for the classes it last met: a client
with classes of its own would otherwise be timed while it re-specialises). A shared
virtual machine changes speed from one second to the next, so clients are compared round
by round: medians over rounds of per-round ratios or differences.

**Noise.** ``floor`` and ``floor-again`` are the same client built twice: the median of
their per-round differences should be zero. :attr:`Timings.noise_us` is the end farthest
from zero of its 95 % confidence interval (distribution-free, from the order statistics
of the rounds): a difference between two clients smaller than that, this run cannot see.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

__all__ = ["Timed", "Timings", "measure", "pinned", "timed_calls"]


class Timed(Protocol):
    """A client :func:`measure` can time: ``run(calls)`` makes that many calls, each a 200,
    and returns the nanoseconds they took; ``prime()``, if any, gets its first token."""

    @property
    def name(self) -> str: ...

    @property
    def prime(self) -> Callable[[], object] | None: ...

    def run(self, calls: int) -> int: ...

    def close(self) -> None: ...


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...


def timed_calls(name: str, call: Callable[[], _Answer], calls: int) -> int:
    """Call *call* *calls* times; the nanoseconds it took. Each answer must be a 200."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        status = call().status_code
        if status != 200:
            raise RuntimeError(f"{name} answered {status}")
    return time.perf_counter_ns() - start


@contextlib.contextmanager
def pinned() -> Iterator[tuple[int | None, int | None]]:
    """Pin this thread to one CPU; yields (that CPU, another one for a server) or Nones.

    A process moved between CPUs is a large part of a small virtual machine's noise.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None, None
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)
    try:
        os.sched_setaffinity(0, {cpus[-1]})
    except OSError:
        yield None, None
        return
    try:
        yield cpus[-1], (cpus[0] if len(cpus) > 1 else None)
    finally:
        os.sched_setaffinity(0, before)


def median_interval(values: list[float]) -> tuple[float, float]:
    """A 95 % confidence interval of the median of *values* (order statistics)."""
    ordered = sorted(values)
    n = len(ordered)
    k = max(0, math.floor(n / 2 - 1.96 * math.sqrt(n) / 2))
    return ordered[k], ordered[n - 1 - k]


class Timings:
    """Microseconds per request of each client, one figure per round."""

    def __init__(self, rounds_us: dict[str, list[float]]) -> None:
        self.rounds_us = rounds_us

    def us(self, name: str) -> float:
        """The client's median time per request."""
        return statistics.median(self.rounds_us[name])

    def ratio(self, name: str, to: str = "floor") -> float:
        """Median over rounds of this client's time ÷ *to*'s."""
        pairs = zip(self.rounds_us[name], self.rounds_us[to], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def throughput_ratio(self, name: str, to: str = "floor") -> float:
        """Median over rounds of this client's requests per second ÷ *to*'s."""
        pairs = zip(self.rounds_us[name], self.rounds_us[to], strict=True)
        return statistics.median(b / a for a, b in pairs)

    def differences(self, name: str, to: str) -> list[float]:
        """Per round: this client's µs per request less *to*'s."""
        return [a - b for a, b in zip(self.rounds_us[name], self.rounds_us[to], strict=True)]

    def added_us(self, name: str, to: str = "floor") -> float:
        """Median over rounds of this client's µs per request less *to*'s."""
        return statistics.median(self.differences(name, to))

    @property
    def noise_us(self) -> float:
        """The far end of the 95 % interval of floor-again less floor (see the module)."""
        low, high = median_interval(self.differences("floor-again", "floor"))
        return max(abs(low), abs(high))


def measure(
    clients: Sequence[Timed], per_round: int, rounds: int, warmup: int, settle: int = 5
) -> Timings:
    """Time *rounds* rounds of *per_round* requests of every client, then close them.

    Each answer must be a 200.
    """
    try:
        return _measure(clients, per_round, rounds, warmup, settle)
    finally:
        for client in clients:
            client.close()


def _measure(
    clients: Sequence[Timed], per_round: int, rounds: int, warmup: int, settle: int
) -> Timings:
    for client in clients:
        if client.prime is not None:
            client.prime()
        client.run(warmup)
    samples: dict[str, list[float]] = {c.name: [] for c in clients}
    gc.collect()
    gc.disable()
    try:
        for index in range(rounds):
            shift = index % len(clients)
            for client in [*clients[shift:], *clients[:shift]]:
                client.run(settle)
                elapsed = client.run(per_round)
                samples[client.name].append(elapsed / per_round / 1000)
            if index % 25 == 24:
                gc.collect()
    finally:
        gc.enable()
    return Timings(samples)
