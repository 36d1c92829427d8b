"""The command line: ``python -m requests_criteo`` (also installed as ``criteo-auth``).

What lives here: argument parsing and the ``demo`` subcommand, a scripted session
against :class:`~requests_criteo.testing.FakeCriteo` on loopback that shows what the
library does, with counts. What does not: any library behaviour of its own.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import requests

from . import __version__
from .adapters import session as criteo_session
from .auth import CriteoAuth
from .testing import FakeCriteo

__all__ = ["main"]


class _Clock:
    """A clock the demo moves forward, so that 15 minutes pass in no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def demo(out: TextIO = sys.stdout) -> int:
    """Run the scripted session; 0 when everything happened as it should, else 1."""
    clock = _Clock()
    failures: list[str] = []
    started = time.perf_counter()

    def step(title: str, ok: bool, detail: str) -> None:
        mark = "ok " if ok else "FAIL"
        out.write(f"  [{mark}] {title:<46} {detail}\n")
        if not ok:
            failures.append(title)

    with FakeCriteo(timer=clock) as fake:
        out.write(f"requests-criteo {__version__} demo: FakeCriteo at {fake.url}\n")
        out.write("  (tokens live 900 s there, as at Criteo; the demo's clock skips ahead)\n")
        auth = CriteoAuth(
            FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, token_url=fake.token_url, timer=clock
        )
        me = f"{fake.url}/2025-10/retail-media/me"

        r = requests.get(me, auth=auth, timeout=10)
        step(
            "first call fetches a token",
            r.status_code == 200 and fake.tokens_issued == 1,
            f"HTTP {r.status_code}, token requests: {fake.token_requests}",
        )

        codes = [requests.get(me, auth=auth, timeout=10).status_code for _ in range(5)]
        step(
            "5 more calls reuse it",
            codes == [200] * 5 and fake.token_requests == 1,
            f"HTTP {set(codes)}, token requests: {fake.token_requests}",
        )

        clock.now += 841
        r = requests.get(me, auth=auth, timeout=10)
        step(
            "14 min later: refreshed before it expires",
            r.status_code == 200 and not r.history and fake.token_requests == 2,
            f"HTTP {r.status_code}, 401s seen: {len(r.history)}, "
            f"token requests: {fake.token_requests}",
        )

        fake.revoke()
        r = requests.get(me, auth=auth, timeout=10)
        history = [h.status_code for h in r.history]
        step(
            "token revoked: 401, refreshed, resent once",
            r.status_code == 200 and history == [401] and fake.token_requests == 3,
            f"HTTP {history} -> {r.status_code}, token requests: {fake.token_requests}",
        )

        clock.now += 900
        shared = criteo_session(
            FakeCriteo.CLIENT_ID,
            FakeCriteo.CLIENT_SECRET,
            token_url=fake.token_url,
            timer=clock,
            pool_maxsize=32,
        )
        statuses = _in_threads(32, lambda: shared.get(me, timeout=10).status_code)
        step(
            "32 threads, token expired: one token request",
            statuses == [200] * 32 and fake.token_requests == 4,
            f"{statuses.count(200)}/32 HTTP 200, token requests: {fake.token_requests}",
        )
        shared.close()

    elapsed = time.perf_counter() - started
    out.write(
        f"{fake.api_requests} API calls, {fake.token_requests} token requests, {elapsed:.2f} s\n"
    )
    if failures:
        out.write(f"demo FAILED: {', '.join(failures)}\n")
        return 1
    out.write("demo passed\n")
    return 0


def _in_threads(n: int, call: Callable[[], int]) -> list[int]:
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


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="criteo-auth",
        description="OAuth2 tokens for the Criteo APIs, the requests way.",
    )
    parser.add_argument("--version", action="version", version=f"requests-criteo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="run a scripted session against a local fake of Criteo",
        description="Start FakeCriteo on loopback and show first fetch, reuse, proactive "
        "refresh, a 401 answered by one refresh and resend, and 32 threads sharing one "
        "token. Needs no credentials and no network.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m requests_criteo`` and ``criteo-auth``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo()
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
