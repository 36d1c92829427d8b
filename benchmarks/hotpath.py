"""Hot-path cost: one request through each candidate, timed in interleaved rounds.

Each round times N requests of every candidate in turn, in an order that rotates from
round to round, with the garbage collector off (it runs between rounds, untimed); a
candidate's figure is its median over the rounds. Rounds are short (a few requests) and
many: on a shared or virtual machine the speed drifts within a second, and only
candidates timed within milliseconds of each other see the same machine. Figures
relative to the floor (bare requests with a fixed header) are paired by round: the median
of the per-round ratios and differences, so that a slow round for the machine is a slow
round for the floor too.

While timing, :func:`pinned` keeps the process on one CPU (where the OS allows it), and the
loopback server goes on another: moves between CPUs are a large part of the noise of a
small virtual machine.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .candidates import FLOOR, Candidate

__all__ = ["Timing", "measure", "paired_difference", "pinned", "summarise"]


@contextlib.contextmanager
def pinned() -> Iterator[tuple[int | None, int | None]]:
    """Pin this thread to one CPU; yields (that CPU, another one for a server) or Nones."""
    if not hasattr(os, "sched_setaffinity"):
        yield None, None
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)
    mine = cpus[-1]
    other = cpus[0] if len(cpus) > 1 else None
    try:
        os.sched_setaffinity(0, {mine})
    except OSError:
        yield None, None
        return
    try:
        yield mine, other
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class Timing:
    """The summary of one candidate's rounds."""

    name: str
    kind: str
    description: str
    rounds_us: list[float]
    us: float  # median microseconds per request
    rps: float  # requests per second at that median
    ratio: float  # median over rounds of candidate us / floor us
    added_us: float  # median over rounds of candidate us - floor us
    throughput_ratio: float  # median over rounds of candidate rps / floor rps
    iqr: float  # interquartile range of the rounds / median
    errors: int  # non-200 answers during the rounds


#: Rounds between two garbage collections (which are never timed).
COLLECT_EVERY = 25


def _warm(candidate: Candidate, count: int) -> None:
    for _ in range(count):
        status = candidate.call()
        if status != 200:
            raise RuntimeError(f"{candidate.name} answered {status} during the warm-up")


def measure(
    candidates: list[Candidate], per_round: int, rounds: int, warmup: int, settle: int = 0
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Microseconds per request of each candidate in each round, and non-200 counts.

    Each timed block is preceded by *settle* untimed requests of the same candidate.
    CPython 3.11+ specialises bytecode for the types it meets: requests' and urllib3's
    code, shared by all the candidates, is specialised for the adapter and session
    classes of whichever candidate ran last, and a candidate with classes of its own (a
    ``CriteoAdapter``, an ``OAuth2Session``) would otherwise be timed while that code
    re-specialises for it. A program with one kind of session never pays that.

    The garbage collector stays off while timing; it runs between rounds, every
    :data:`COLLECT_EVERY` rounds, outside the timed loops.
    """
    for candidate in candidates:
        _warm(candidate, warmup)
    samples: dict[str, list[float]] = {c.name: [] for c in candidates}
    errors: dict[str, int] = {c.name: 0 for c in candidates}
    count = len(candidates)
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for round_index in range(rounds):
            shift = round_index % count
            for candidate in candidates[shift:] + candidates[:shift]:
                call = candidate.call
                failed = 0
                for _ in range(settle):
                    if call() != 200:
                        failed += 1
                start = clock()
                for _ in range(per_round):
                    if call() != 200:
                        failed += 1
                elapsed = clock() - start
                samples[candidate.name].append(elapsed / per_round / 1000.0)
                errors[candidate.name] += failed
            if round_index % COLLECT_EVERY == COLLECT_EVERY - 1:
                gc.collect()
    finally:
        gc.enable()
    return samples, errors


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def paired_difference(a: Timing, b: Timing) -> float:
    """Median over rounds of a's µs minus b's µs in the same round."""
    return statistics.median(x - y for x, y in zip(a.rounds_us, b.rounds_us, strict=True))


def summarise(
    candidates: list[Candidate], samples: dict[str, list[float]], errors: dict[str, int]
) -> list[Timing]:
    """One :class:`Timing` per candidate, relative to the floor's rounds."""
    floor_name = next(c.name for c in candidates if c.kind == FLOOR)
    floor = samples[floor_name]
    timings = []
    for candidate in candidates:
        rounds_us = samples[candidate.name]
        median = statistics.median(rounds_us)
        pairs = list(zip(rounds_us, floor, strict=True))
        timings.append(
            Timing(
                name=candidate.name,
                kind=candidate.kind,
                description=candidate.description,
                rounds_us=rounds_us,
                us=median,
                rps=1e6 / median,
                ratio=statistics.median(c / f for c, f in pairs),
                added_us=statistics.median(c - f for c, f in pairs),
                throughput_ratio=statistics.median(f / c for c, f in pairs),
                iqr=_iqr(rounds_us) / median,
                errors=errors[candidate.name],
            )
        )
    return timings
