"""Across processes: 8 processes sharing a token store, over several token lifetimes.

Each process builds its own ``CriteoAuth`` with the same ``FileTokenStore`` path (or the
same ``RedisTokenStore`` URL), waits at a barrier with the others, then makes requests
back to back for a fixed duration against one :class:`~requests_criteo.testing.FakeCriteo`
served by the parent. With the store, the fleet must make one token request per
``lifetime - margin`` started, as one process would: ``ceil(duration / (lifetime - margin))``.

The Redis run starts its own ``redis-server`` (:class:`~requests_criteo.testing.RedisServer`:
loopback, no persistence); without it, or without redis-py, :func:`run_processes` raises
:class:`UnavailableError`, which the report shows as a skipped run.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests_criteo._cache import margin_for
from requests_criteo.testing import FakeCriteo, RedisServer

from .concurrency import RenewalResult, call_until, expected_token_requests, tokens_seen
from .transports import API_PATH, CLIENT_ID, CLIENT_SECRET

__all__ = ["ProcessResult", "UnavailableError", "run_processes"]


class UnavailableError(Exception):
    """A store whose run cannot be made here (what is missing is the message)."""


@dataclass
class ProcessResult(RenewalResult):
    """What the processes did together."""

    store: str
    processes: int


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
    statuses, exceptions = call_until(lambda: session.get(url), time.monotonic() + duration)
    session.close()
    results.put((dict(statuses), dict(exceptions)))


def _context() -> Any:
    """fork on Linux (children start at once), spawn elsewhere; both have what is used."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def _redis_server(directory: str) -> RedisServer:
    """A ``redis-server`` not yet started, in *directory*; :class:`UnavailableError` if none."""
    missing = []
    try:
        import redis  # noqa: F401 - only whether it is there
    except ImportError:
        missing.append("redis-py is not installed")
    try:
        server = RedisServer(directory)
    except FileNotFoundError:
        missing.append("redis-server is not installed")
    if missing:
        raise UnavailableError("; ".join(missing))
    return server


def run_processes(kind: str, processes: int, lifetime: float, duration: float) -> ProcessResult:
    """Run *processes* processes on a ``kind`` (``"file"`` or ``"redis"``) store.

    :raises UnavailableError: the Redis run, without redis-py or ``redis-server``.
    """
    with tempfile.TemporaryDirectory(prefix="requests-criteo-bench-") as directory:
        if kind == "file":
            return _run(kind, str(Path(directory) / "tokens.json"), processes, lifetime, duration)
        server = _redis_server(directory).start()
        try:
            return _run(kind, server.url, processes, lifetime, duration)
        finally:
            server.stop()


def _run(kind: str, where: str, processes: int, lifetime: float, duration: float) -> ProcessResult:
    margin = margin_for(lifetime)
    ctx = _context()
    with FakeCriteo(lifetime=lifetime) as fake:
        barrier = ctx.Barrier(processes, timeout=60)
        results = ctx.Queue()
        workers = [
            ctx.Process(target=_worker, args=(kind, where, fake.url, duration, barrier, results))
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
        tokens_used = tokens_seen(fake)
    return ProcessResult(
        store=kind,
        processes=processes,
        duration=duration,
        lifetime=lifetime,
        margin=margin,
        token_requests=token_requests,
        expected=expected_token_requests(duration, lifetime, margin),
        tokens_used=tokens_used,
        requests=sum(statuses.values()) + sum(exceptions.values()),
        ok=statuses.get("200", 0),
        statuses=dict(statuses),
        exceptions=dict(exceptions),
    )
