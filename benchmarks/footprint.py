"""Import time of ``requests_criteo`` next to ``requests`` alone, and memory per cached token.

**Import time.** Fresh interpreters run ``pass``, ``import requests`` and
``import requests_criteo`` in turn (interleaved, rotating), R times each; the medians of
their wall times, less the bare interpreter's, are the import costs. ``-X importtime``
runs give the interpreter's own cumulative figures for the top-level packages.

**Memory per cached token.** ``tracemalloc`` counts what putting 10,000 ``Token`` objects
(with Criteo-sized access tokens of about 700 characters, made beforehand) into a
``requests_criteo.TokenCache`` allocates: the ``Token``, its ready-made ``Authorization``
header (a copy of the access token) and the cache's bookkeeping.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

__all__ = ["ImportResult", "MemoryResult", "import_times", "token_memory"]


@dataclass
class ImportResult:
    """Medians in milliseconds."""

    rounds: int
    interpreter_ms: float  # python -c pass
    requests_ms: float  # python -c "import requests", wall
    criteo_ms: float  # python -c "import requests_criteo", wall
    requests_importtime_ms: float  # -X importtime cumulative of requests
    criteo_importtime_ms: float  # -X importtime cumulative of requests_criteo
    requests_within_criteo_ms: float  # requests' cumulative inside "import requests_criteo"

    @property
    def requests_import_ms(self) -> float:
        """Importing requests, less the interpreter's start."""
        return self.requests_ms - self.interpreter_ms

    @property
    def criteo_import_ms(self) -> float:
        """Importing requests_criteo (requests included), less the interpreter's start."""
        return self.criteo_ms - self.interpreter_ms


def _run(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter_ns()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return (time.perf_counter_ns() - start) / 1e6, done.stderr.decode()


def _cumulative(importtime: str, package: str) -> float:
    """The cumulative microseconds -X importtime reports for *package*, in ms."""
    for line in importtime.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == package:
            return int(parts[1]) / 1000
    raise ValueError(f"{package} not in the -X importtime output")


def import_times(rounds: int) -> ImportResult:
    """Time the imports in *rounds* interleaved rounds of fresh interpreters."""
    codes = {"pass": "pass", "requests": "import requests", "criteo": "import requests_criteo"}
    for code in codes.values():  # compiled bytecode and a warm page cache for every run
        _run(code)
    walls: dict[str, list[float]] = {name: [] for name in codes}
    names = list(codes)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            walls[name].append(_run(codes[name])[0])
    requests_cum: list[float] = []
    criteo_cum: list[float] = []
    within: list[float] = []
    for _ in range(rounds):
        requests_cum.append(_cumulative(_run("import requests", "-X", "importtime")[1], "requests"))
        out = _run("import requests_criteo", "-X", "importtime")[1]
        criteo_cum.append(_cumulative(out, "requests_criteo"))
        within.append(_cumulative(out, "requests"))
    median = statistics.median
    return ImportResult(
        rounds=rounds,
        interpreter_ms=median(walls["pass"]),
        requests_ms=median(walls["requests"]),
        criteo_ms=median(walls["criteo"]),
        requests_importtime_ms=median(requests_cum),
        criteo_importtime_ms=median(criteo_cum),
        requests_within_criteo_ms=median(within),
    )


@dataclass
class MemoryResult:
    """Bytes per token held in a ``TokenCache``."""

    tokens: int
    token_chars: int
    bytes_per_token: float  # everything the cache entry allocated
    header_bytes: int  # of which the Authorization header string
    bookkeeping_bytes: float  # the rest: Token object, cache entry, timers


def token_memory(count: int = 10_000) -> MemoryResult:
    """Allocate *count* cached tokens under tracemalloc; bytes per token."""
    from requests_criteo import Token, TokenCache

    keys = [("https://api.criteo.com/oauth2/token", f"client-{i}", "f" * 24) for i in range(count)]
    access = [f"eyJ{i:010d}" + "x" * 687 for i in range(count)]
    now = time.monotonic()
    cache = TokenCache(maxsize=count)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key, value in zip(keys, access, strict=True):
            cache.put(key, Token(value, lifetime=900.0, obtained_at=now))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    if len(cache) != count:
        raise RuntimeError(f"the cache kept {len(cache)} tokens of {count}")
    header = sys.getsizeof("Bearer " + access[0])
    per_token = (after - before) / count
    return MemoryResult(
        tokens=count,
        token_chars=len(access[0]),
        bytes_per_token=per_token,
        header_bytes=header,
        bookkeeping_bytes=per_token - header,
    )
