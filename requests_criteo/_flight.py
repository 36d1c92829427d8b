"""One token request under way, and everyone waiting for it: threads and tasks alike.

What lives here: :class:`Flight`, the record of a token request that one caller (the
leader) makes while the others (its followers) wait for its outcome: a thread blocks on it,
a task awaits it, in any event loop. What does not: deciding who leads, or caching the
token it brings (:class:`~requests_criteo._cache.TokenCache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._cache import Token

__all__ = ["Flight", "running_loop"]


class Flight:
    """A token request under way: its outcome once it lands, and how to wait for it.

    Threads wait on :attr:`done`; each task leaves a waker (a thread waiting would block
    its loop), called once the flight lands.

    :param loop: the event loop of the task leading the flight; ``None`` for a thread.
    """

    __slots__ = ("_lock", "_wakers", "done", "error", "loop", "token")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.done = threading.Event()
        self.token: Token | None = None
        self.error: BaseException | None = None
        self._wakers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def land(self, token: Token | None, error: BaseException | None) -> None:
        """The leader's outcome: a token, an error, or neither (it gave up); wake everyone."""
        self.token, self.error = token, error
        with self._lock:
            self.done.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    async def landed_within(self, wait: float) -> bool:
        """Wait, without blocking the event loop, for the flight to land (*wait* s at most)."""
        loop = asyncio.get_running_loop()
        landed: asyncio.Future[None] = loop.create_future()

        def wake() -> None:  # called in the leader's thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, landed)

        with self._lock:
            if self.done.is_set():
                return True
            self._wakers.append(wake)
        try:
            await asyncio.wait_for(landed, wait)
        except asyncio.TimeoutError:
            return False
        return True

    def outcome(self) -> Token | None:
        """What a follower gets once the flight is done: its token, a copy of its error, or
        ``None`` when its leader gave up (a cancelled task)."""
        if self.error is not None:
            # A copy, so that followers do not grow one traceback between them.
            try:
                error = copy.copy(self.error)
            except Exception:  # an exception type that cannot be copied: share it
                error = self.error
            raise error
        return self.token


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(landed: asyncio.Future[None]) -> None:
    if not landed.done():  # not given up on (cancelled) meanwhile
        landed.set_result(None)
