"""Token requests from async code: the same plans, carried without blocking the event loop.

What lives here: :func:`fetch_in_loop`, which gets a token for a task the way
:meth:`TokenSource.fetch <requests_criteo._source.TokenSource.fetch>` does for a thread,
and :func:`drive_in_loop`, which carries a plan out in a task. What does not: the rules of
the token request and of the store (:mod:`._token_request`, :mod:`._source`), or the async
transport that sends it (:mod:`.httpx`).

How the event loop is kept free: the network goes through the transport's coroutine, in
the loop; every store operation (a lock, a file, Redis: any of them may block) runs in a
worker thread of the fetch's own, the same thread for the lock's taking and its release
(a file lock or a Redis lock belongs to the thread that took it); a wait is
``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from ._cache import Token
from ._source import TokenSource
from ._token_request import Call, Failed, Plan, Reply, Send, Step, Wait
from ._waits import pause_in_loop
from .exceptions import CriteoAuthError

__all__ = ["AsyncSend", "drive_in_loop", "fetch_in_loop"]

#: An async transport's attempt: what :func:`~._token_request.drive`'s ``send`` is to a thread.
AsyncSend = Callable[[Send], Awaitable[Reply | Failed | CriteoAuthError]]


async def fetch_in_loop(source: TokenSource, send: AsyncSend) -> Token:
    """A usable token, as ``source.fetch()`` gets one, with the store's lock held meanwhile."""
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(1, thread_name_prefix="requests-criteo-store")

    def in_worker(call: Call) -> Awaitable[Any]:
        return loop.run_in_executor(worker, call.function, *call.args)

    held = _Held(source.store.lock(source.key))
    try:
        await asyncio.shield(in_worker(Call(held.enter)))
        token = await drive_in_loop(source.fetching(), send, in_worker)
    finally:
        # Queued after the taking, in the lock's thread: the lock is given back once taken,
        # also when the task is cancelled or closed (its loop gone), which cannot wait.
        released = worker.submit(held.exit)
        worker.shutdown(wait=False)
    await asyncio.shield(asyncio.wrap_future(released))
    return token


class _Held:
    """A store's lock, taken and given back by calls that may come from another task."""

    def __init__(self, lock: AbstractContextManager[object]) -> None:
        self.lock = lock
        self.entered = False

    def enter(self) -> None:
        self.lock.__enter__()
        self.entered = True

    def exit(self) -> None:
        if self.entered:
            self.entered = False
            self.lock.__exit__(None, None, None)


async def drive_in_loop(
    plan: Plan, send: AsyncSend, call: Callable[[Call], Awaitable[Any]]
) -> Token:
    """Carry *plan* out in this task: *send* makes the attempts, *call* runs the calls."""
    step = next(plan)
    while True:
        try:  # (the outcome is never a local: see TokenRequest.plan)
            step = plan.send(await _carry_in_loop(step, send, call))
        except StopIteration as done:
            token: Token = done.value
            return token


async def _carry_in_loop(
    step: Step, send: AsyncSend, call: Callable[[Call], Awaitable[Any]]
) -> Any:
    if isinstance(step, Send):
        return await send(step)
    if isinstance(step, Wait):
        await pause_in_loop(step.seconds, step.reason, step.sleep)
        return None
    return await call(step)
