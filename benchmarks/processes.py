"""Across processes: 8 processes sharing a token store, over several token lifetimes.

Each process builds its own ``CriteoAuth`` with the same ``FileTokenStore`` path (or the
same ``RedisTokenStore`` URL), waits at a barrier with the others, then makes requests
back to back for a fixed duration against one :class:`~requests_criteo.testing.FakeCriteo`
served by the parent. With the store, the fleet must make one token request per
``lifetime - margin`` started, as one process would: ``ceil(duration / (lifetime - margin))``.

The Redis run starts its own ``redis-server`` (loopback, no persistence) when the binary
is on the ``PATH``; without it, or without redis-py, it is reported as skipped.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from requests_criteo._cache import margin_for
from requests_criteo.testing import FakeCriteo, RedisServer

from .transports import API_PATH, CLIENT_ID, CLIENT_SECRET

__all__ = ["ProcessResult", "RedisServer", "run_processes"]


@dataclass
class ProcessResult:
    """What the processes did together."""

    store: str
    processes: int
    duration: float
    lifetime: float
    margin: float
    token_requests: int
    expected: int
    tokens_used: int
    requests: int
    ok: int
    statuses: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def lifetimes(self) -> float:
        """Token lifetimes elapsed during the run."""
        return self.duration / self.lifetime


def _store(kind: str, where: str) -> Any:
    if kind == "file":
        from requests_criteo import FileTokenStore

        return FileTokenStore(where)
    from requests_criteo.redis_store import RedisTokenStore

    return RedisTokenStore(where)


def _worker(
    kind: str,
    where: str,
    base_url: str,
    duration: float,
    barrier: Any,
    results: Any,
) -> None:
    """One process: its own auth and session on the shared store, requests until the end."""
    import requests_criteo

    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    try:
        session = requests_criteo.session(
            CLIENT_ID,
            CLIENT_SECRET,
            token_url=base_url + "/oauth2/token",
            store=_store(kind, where),
        )
        url = base_url + API_PATH
    except Exception as exc:
        barrier.abort()
        results.put(({}, {type(exc).__name__: 1}))
        return
    barrier.wait()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        try:
            response = session.get(url)
        except Exception as exc:  # a failure is a result
            exceptions[type(exc).__name__] += 1
        else:
            statuses[str(response.status_code)] += 1
            response.close()
    session.close()
    results.put((dict(statuses), dict(exceptions)))


def _context() -> Any:
    """fork on Linux (children start at once), spawn elsewhere; both have what is used."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def run_processes(
    kind: str, processes: int, lifetime: float, duration: float, redis_url: str | None = None
) -> ProcessResult:
    """Run *processes* processes on a ``kind`` (``"file"`` or ``"redis"``) store."""
    margin = margin_for(lifetime)
    expected = -(-duration // (lifetime - margin))
    with tempfile.TemporaryDirectory(prefix="requests-criteo-bench-") as directory:
        where = redis_url if kind == "redis" else str(Path(directory) / "tokens.json")
        assert where is not None
        ctx = _context()
        with FakeCriteo(lifetime=lifetime) as fake:
            barrier = ctx.Barrier(processes, timeout=60)
            results = ctx.Queue()
            workers = [
                ctx.Process(
                    target=_worker, args=(kind, where, fake.url, duration, barrier, results)
                )
                for _ in range(processes)
            ]
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork() in a process with threads (the fake's):
                # the children only make requests, they never touch the fake's state.
                warnings.simplefilter("ignore", DeprecationWarning)
                for worker in workers:
                    worker.start()
            statuses: Counter[str] = Counter()
            exceptions: Counter[str] = Counter()
            for _ in workers:
                got_statuses, got_exceptions = results.get(timeout=duration + 120)
                statuses.update(got_statuses)
                exceptions.update(got_exceptions)
            for worker in workers:
                worker.join(30)
            token_requests = fake.token_requests
            tokens_used = len({r.bearer for r in fake.api_calls() if r.bearer})
    total = sum(statuses.values()) + sum(exceptions.values())
    return ProcessResult(
        store=kind,
        processes=processes,
        duration=duration,
        lifetime=lifetime,
        margin=margin,
        token_requests=token_requests,
        expected=int(expected),
        tokens_used=tokens_used,
        requests=total,
        ok=statuses.get("200", 0),
        statuses=dict(statuses),
        exceptions=dict(exceptions),
    )


def redis_binary() -> str | None:
    """The ``redis-server`` to start, or ``None``."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
