"""Every wait the library makes, announced to whoever watches: the CLI's countdown.

What lives here: :func:`pause` (how the retry policy, the token endpoint's retries and the
rate limiter sleep) and :func:`watch` (how a watcher hears of each wait). What does not:
deciding how long to wait (:mod:`.retry`, :mod:`.ratelimit`, :mod:`._token`), or showing
anything (:mod:`._countdown`).

Why one process-wide list of watchers rather than a sleep function handed in: the waits
happen in objects the command line does not build itself (the retry policy inside
``CriteoAuth``, the adapter's own ``CriteoRetry``, a user's ``RateLimiter``), and a bare
sleep function would not say why it sleeps. Each waiting object keeps its own injectable
``sleep``; tests that inject one are still heard by watchers, and never sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from ._fork import forget_in_child

__all__ = ["Watcher", "pause", "pause_in_loop", "watch"]

#: Told ``(seconds, reason)`` as a wait begins; returns what to call when it ends.
Watcher = Callable[[float, str], Callable[[], None]]

_watchers: list[Watcher] = []
_lock = threading.Lock()


@forget_in_child
def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()  # a parent's thread may have held it while (un)registering


def watch(watcher: Watcher) -> Callable[[], None]:
    """Tell *watcher* of every wait from now on, in any thread; return what stops it."""
    with _lock:
        _watchers.append(watcher)

    def stop() -> None:
        with _lock:
            if watcher in _watchers:
                _watchers.remove(watcher)

    return stop


def pause(seconds: float, reason: str, sleep: Callable[[float], None]) -> None:
    """Wait *seconds* with *sleep*, every watcher told when it begins, why, and when it ends.

    *reason* is shown to a person: short, no secret, e.g. ``"Criteo asked to wait (HTTP 429)"``.
    """
    ends = _begin(seconds, reason)
    try:
        sleep(seconds)
    finally:
        _end(ends)


async def pause_in_loop(seconds: float, reason: str, sleep: Callable[[float], None]) -> None:
    """:func:`pause` for a task: ``time.sleep``, which would block the event loop, becomes
    ``asyncio.sleep``; a *sleep* of the caller's own (a test's, which records) is called."""
    ends = _begin(seconds, reason)
    try:
        if sleep is time.sleep:
            await asyncio.sleep(seconds)
        else:
            sleep(seconds)
    finally:
        _end(ends)


def _begin(seconds: float, reason: str) -> list[Callable[[], None]]:
    """Tell every watcher a wait begins; what to call when it ends."""
    with _lock:
        watchers = tuple(_watchers)
    return [watcher(seconds, reason) for watcher in watchers]


def _end(ends: list[Callable[[], None]]) -> None:
    for end in reversed(ends):
        end()
