"""The exact counts for httpx: token requests when tasks, and threads with tasks, start cold.

What lives here: two runs against :class:`requests_criteo.testing.FakeCriteo` (a real
HTTP/1.1 server on loopback, in this process), which counts what reaches its token
endpoint; each run starts with no token (a new fake, so a new token URL and a new entry
in the process-wide cache), and the fake answers the first token request after
:data:`SLOW_TOKEN` seconds, so that every caller asks while it is under way. What does
not: timing (:mod:`benchmarks.httpx_path`).

* **Tasks**: N asyncio tasks on one ``httpx.AsyncClient(auth=CriteoHTTPXAuth(...))``, all
  created before the loop runs any of them, make one call each: one token request, N x 200.
* **Threads and tasks**: T threads, each making one call through one
  ``requests_criteo.session()``, and N tasks on an ``AsyncClient`` with a
  ``CriteoHTTPXAuth`` of the same credentials, released together: one token request for
  all of them, T + N x 200.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass

import httpx

import requests_criteo
from requests_criteo.httpx import CriteoHTTPXAuth
from requests_criteo.testing import FakeCriteo

from .transport import API_PATH, CLIENT_ID, CLIENT_SECRET

__all__ = ["SLOW_TOKEN", "ColdStart", "mixed", "tasks"]

#: Seconds the fake takes over the first token request.
SLOW_TOKEN = 0.2
_TIMEOUT = 60.0  # seconds any one run may take before it is a failure, not a hang


@dataclass
class ColdStart:
    """What the callers of one cold start did: token requests made, outcomes of the calls."""

    name: str
    calls: int
    token_requests: int
    statuses: Counter[str]

    @property
    def exact(self) -> bool:
        """One token request, and every call answered 200."""
        return self.token_requests == 1 and self.statuses == {"200": self.calls}


def _outcome(result: httpx.Response | BaseException) -> str:
    """``"200"``, or the exception's name."""
    if isinstance(result, BaseException):
        return type(result).__name__
    return str(result.status_code)


async def _calls(
    fake: FakeCriteo, count: int, release: threading.Barrier | None = None
) -> Counter[str]:
    """*count* tasks, one call each on one AsyncClient; all created before any runs."""
    auth = CriteoHTTPXAuth(CLIENT_ID, CLIENT_SECRET, token_url=fake.token_url)
    url = fake.url + API_PATH
    async with httpx.AsyncClient(auth=auth, trust_env=False, timeout=_TIMEOUT) as client:
        calls = [asyncio.create_task(client.get(url)) for _ in range(count)]
        if release is not None:
            # Blocks the loop, on purpose: no task has started, and none may before the
            # threads are released with them.
            release.wait()
        results = await asyncio.gather(*calls, return_exceptions=True)
    return Counter(_outcome(r) for r in results)


def tasks(count: int) -> ColdStart:
    """*count* tasks at a cold start through one ``AsyncClient``."""
    with FakeCriteo() as fake:
        fake.inject_token_fault(delay=SLOW_TOKEN)
        statuses = asyncio.run(_calls(fake, count))
        return ColdStart(f"{count} tasks, one `AsyncClient`", count, fake.token_requests, statuses)


def mixed(threads: int, count: int) -> ColdStart:
    """*threads* requests threads and *count* httpx tasks at a cold start, together."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    release = threading.Barrier(threads + 1, timeout=_TIMEOUT)
    with FakeCriteo() as fake:
        fake.inject_token_fault(delay=SLOW_TOKEN)
        session = requests_criteo.session(
            CLIENT_ID, CLIENT_SECRET, token_url=fake.token_url, pool_maxsize=threads
        )
        session.trust_env = False
        url = fake.url + API_PATH

        def call() -> None:
            release.wait()
            try:
                outcome = str(session.get(url, timeout=_TIMEOUT).status_code)
            except Exception as exc:  # a failure is a result, not a crash
                outcome = type(exc).__name__
            with lock:
                statuses[outcome] += 1

        workers = [threading.Thread(target=call, daemon=True) for _ in range(threads)]
        try:
            for worker in workers:
                worker.start()
            statuses.update(asyncio.run(_calls(fake, count, release)))
            for worker in workers:
                worker.join(_TIMEOUT)
        finally:
            session.close()
        name = f"{threads} threads (`session()`) and {count} tasks (`AsyncClient`)"
        return ColdStart(name, threads + count, fake.token_requests, statuses)
