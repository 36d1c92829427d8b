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

import threading
from collections.abc import Callable

from ._fork import forget_in_child

__all__ = ["Watcher", "pause", "watch"]

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
    with _lock:
        watchers = tuple(_watchers)
    ends = [watcher(seconds, reason) for watcher in watchers]
    try:
        sleep(seconds)
    finally:
        for end in reversed(ends):
            end()
