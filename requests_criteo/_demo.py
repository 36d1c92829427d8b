"""The ``demo`` command: a scripted session against FakeCriteo on loopback, with counts.

What lives here: :func:`demo` and its scenes, each a call or a burst of calls followed by
a check of what the fake saw. What does not: the command line around it
(:mod:`requests_criteo.__main__`), or any library behaviour of its own: the demo only
watches the library at work.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import requests

from .__version__ import __version__
from .adapters import session as criteo_session
from .auth import CriteoAuth
from .testing import FakeCriteo

__all__ = ["demo"]


def demo(out: TextIO = sys.stdout) -> int:
    """Run the scripted session; 0 when everything happened as it should, else 1."""
    clock = _Clock()
    started = time.perf_counter()
    with FakeCriteo(timer=clock) as fake:
        out.write(f"requests-criteo {__version__} demo: FakeCriteo at {fake.url}\n")
        out.write("  (tokens live 900 s there, as at Criteo; the demo's clock skips ahead)\n")
        script = _Script(fake, clock, out)
        script.first_call()
        script.reuse()
        script.refresh_before_expiry()
        script.revoked_token()
        script.threads_after_expiry()
    elapsed = time.perf_counter() - started
    out.write(
        f"{fake.api_requests} API calls, {fake.token_requests} token requests, {elapsed:.2f} s\n"
    )
    if script.failures:
        out.write(f"demo FAILED: {', '.join(script.failures)}\n")
        return 1
    out.write("demo passed\n")
    return 0


class _Clock:
    """A clock the demo moves forward, so that 15 minutes pass in no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Script:
    """The scenes, in the order they run: each makes its calls, then checks the counts."""

    def __init__(self, fake: FakeCriteo, clock: _Clock, out: TextIO) -> None:
        self.fake = fake
        self.clock = clock
        self.out = out
        self.failures: list[str] = []
        self.me = f"{fake.url}/2025-10/retail-media/me"
        self.auth = CriteoAuth(
            FakeCriteo.CLIENT_ID,
            FakeCriteo.CLIENT_SECRET,
            token_url=fake.token_url,
            timer=self.clock,
        )

    def check(self, title: str, ok: bool, detail: str) -> None:
        """One line of the report; a failed check fails the demo."""
        mark = "ok " if ok else "FAIL"
        self.out.write(f"  [{mark}] {title:<46} {detail}\n")
        if not ok:
            self.failures.append(title)

    def get(self) -> requests.Response:
        return requests.get(self.me, auth=self.auth, timeout=10)

    def first_call(self) -> None:
        r = self.get()
        self.check(
            "first call fetches a token",
            r.status_code == 200 and self.fake.tokens_issued == 1,
            f"HTTP {r.status_code}, token requests: {self.fake.token_requests}",
        )

    def reuse(self) -> None:
        codes = [self.get().status_code for _ in range(5)]
        self.check(
            "5 more calls reuse it",
            codes == [200] * 5 and self.fake.token_requests == 1,
            f"HTTP {set(codes)}, token requests: {self.fake.token_requests}",
        )

    def refresh_before_expiry(self) -> None:
        self.clock.now += 841
        r = self.get()
        self.check(
            "14 min later: refreshed before it expires",
            r.status_code == 200 and not r.history and self.fake.token_requests == 2,
            f"HTTP {r.status_code}, 401s seen: {len(r.history)}, "
            f"token requests: {self.fake.token_requests}",
        )

    def revoked_token(self) -> None:
        self.fake.revoke()
        r = self.get()
        history = [h.status_code for h in r.history]
        self.check(
            "token revoked: 401, refreshed, resent once",
            r.status_code == 200 and history == [401] and self.fake.token_requests == 3,
            f"HTTP {history} -> {r.status_code}, token requests: {self.fake.token_requests}",
        )

    def threads_after_expiry(self) -> None:
        self.clock.now += 900
        with criteo_session(
            FakeCriteo.CLIENT_ID,
            FakeCriteo.CLIENT_SECRET,
            token_url=self.fake.token_url,
            timer=self.clock,
            pool_maxsize=32,
        ) as shared:
            statuses = _in_threads(32, lambda: shared.get(self.me, timeout=10).status_code)
        self.check(
            "32 threads, token expired: one token request",
            statuses == [200] * 32 and self.fake.token_requests == 4,
            f"{statuses.count(200)}/32 HTTP 200, token requests: {self.fake.token_requests}",
        )


def _in_threads(n: int, call: Callable[[], int]) -> list[int]:
    """What *call* returned in each of *n* threads, all released at once."""
    barrier = threading.Barrier(n)
    results: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        status = call()
        with lock:
            results.append(status)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results
