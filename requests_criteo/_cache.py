"""Tokens and the process-wide token cache with single-flight fetching.

What lives here: :class:`Token` (an access token and its schedule), :func:`lifetime_from`
(turning whatever ``expires_in`` a server sends into a sane number of seconds) and
:class:`TokenCache` (a cachetools ``TLRUCache`` behind a lock, plus the bookkeeping that
makes N threads needing the same token cause one token request). What does not: any
HTTP; the fetch itself is a callable handed in by :mod:`requests_criteo.auth`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from cachetools import LRUCache, TLRUCache

from ._flight import Flight, running_loop
from ._fork import forget_in_child, reset_in_child
from .exceptions import TokenRequestError
from .stores import MemoryTokenStore

Timer = Callable[[], float]

#: Seconds a token is trusted when the server's ``expires_in`` is missing or unusable.
#: Criteo's tokens live 900 s; a third of that keeps a script safe if that ever changes.
DEFAULT_LIFETIME = 300.0
#: The longest lifetime believed, whatever the server says: a token is never used "forever".
MAX_LIFETIME = 3600.0
#: The shortest lifetime used: a tiny ``expires_in`` must not mean a token request per call.
MIN_LIFETIME = 1.0
#: A token is replaced this many seconds before it expires (or at half its life if shorter).
MAX_MARGIN = 60.0


def lifetime_from(expires_in: object) -> float:
    """The lifetime, in seconds, to give a token whose answer said *expires_in*.

    Numbers and numeric strings are believed when finite and positive, between
    :data:`MIN_LIFETIME` and :data:`MAX_LIFETIME`; anything else (missing, ``null``,
    ``true``, zero, negative, ``NaN``, ``Infinity``, text) gets :data:`DEFAULT_LIFETIME`.

    >>> lifetime_from(900), lifetime_from("900"), lifetime_from(None), lifetime_from(1e12)
    (900.0, 900.0, 300.0, 3600.0)
    """
    if isinstance(expires_in, bool):
        return DEFAULT_LIFETIME
    value: float
    if isinstance(expires_in, int):
        # JSON integers have no size limit; one too large for a float is "very long".
        value = float(min(max(expires_in, -1), 10**9))
    elif isinstance(expires_in, float):
        value = expires_in
    elif isinstance(expires_in, str):
        try:
            value = float(expires_in.strip())
        except ValueError:
            return DEFAULT_LIFETIME
    else:
        return DEFAULT_LIFETIME
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_LIFETIME
    return min(max(value, MIN_LIFETIME), MAX_LIFETIME)


def margin_for(lifetime: float) -> float:
    """Seconds before expiry at which a token of *lifetime* is replaced: min(60, lifetime/2)."""
    return min(MAX_MARGIN, lifetime / 2)


class Token:
    """An access token, when it was obtained and when it must be replaced.

    Tokens never show their value: ``repr`` prints ``[secure]`` and pickling refuses.
    ``dropped`` is set once the API has answered 401 to it, so every auth holding it
    stops using it at once.
    """

    __slots__ = (
        "__weakref__",
        "access_token",
        "dropped",
        "expires_at",
        "header",
        "lifetime",
        "obtained_at",
        "refresh_at",
        "refresh_token",
    )

    def __init__(
        self,
        access_token: str,
        *,
        lifetime: float,
        obtained_at: float,
        refresh_token: str | None = None,
    ) -> None:
        self.access_token = access_token
        self.header = "Bearer " + access_token
        self.lifetime = lifetime
        self.obtained_at = obtained_at
        self.expires_at = obtained_at + lifetime
        self.refresh_at = self.expires_at - margin_for(lifetime)
        self.refresh_token = refresh_token
        self.dropped = False

    def usable(self, now: float) -> bool:
        """Whether the token may still be sent at time *now* (of the cache's timer)."""
        return not self.dropped and now < self.refresh_at

    def __repr__(self) -> str:
        return f"<Token [secure] lifetime={self.lifetime:g}s>"

    def __reduce__(self) -> Any:
        raise TypeError("a Token is never pickled: it would put a bearer token on disk")


class TokenCache:
    """A bounded, thread-safe cache of tokens, each kept until its own refresh time.

    Keys are hashable tuples built by :class:`~requests_criteo.CriteoAuth` (token URL,
    client id, a fingerprint of the secret, grant): never a secret. Every ``CriteoAuth``
    of the process shares :func:`shared_cache`'s instance unless given another, so a
    script that builds a new auth for every call still makes one token request per
    token lifetime::

        cache = TokenCache(timer=fake_clock)        # tests drive time themselves
        auth = CriteoAuth(client_id, client_secret, cache=cache)

    :param maxsize: how many tokens are kept at most (the least recently used goes first).
    :param timer: the clock, in seconds; monotonic by default so that wall-clock jumps
        and suspends cannot make an expired token look fresh.
    """

    def __init__(self, maxsize: int = 1024, timer: Timer = time.monotonic) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive int, got {maxsize!r}")
        if not callable(timer):
            raise TypeError("timer must be a callable returning seconds, like time.monotonic")
        self.timer = timer
        self.maxsize = maxsize
        self._tokens: TLRUCache[Hashable, Token] = TLRUCache(
            maxsize=maxsize, ttu=_refresh_time, timer=timer
        )
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Flight] = {}
        #: The store of auths that use this cache and no ``store=``: this process's memory,
        #: where an authorization-code app's refresh tokens live between refreshes.
        self.memory_store = MemoryTokenStore(clock=timer)
        reset_in_child(self)

    def __repr__(self) -> str:
        return f"<TokenCache tokens={len(self)} maxsize={self.maxsize}>"

    def __len__(self) -> int:
        with self._lock:
            self._tokens.expire()
            return len(self._tokens)

    def get(self, key: Hashable) -> Token | None:
        """The cached token for *key* if it is still usable, else ``None``."""
        with self._lock:
            token = self._tokens.get(key)
        if token is not None and token.usable(self.timer()):
            return token
        return None

    def put(self, key: Hashable, token: Token) -> None:
        """Cache *token* under *key* until its refresh time.

        A different token it replaces is marked dropped, so that auths holding that one
        move on to *token* (a new consent's, say) at their next request.
        """
        with self._lock:
            replaced = self._tokens.get(key)
            self._tokens[key] = token
        if replaced is not None and replaced is not token:
            replaced.dropped = True

    def drop(self, key: Hashable, token: Token) -> bool:
        """Forget *token*, which the API refused; ``True`` if it was still the cached one.

        The token is marked unusable either way. The cache entry is removed only when it
        is still *token*, so that 64 threads receiving 401 for the same token cause one
        new token request, not 64.
        """
        token.dropped = True
        with self._lock:
            if self._tokens.get(key) is token:
                del self._tokens[key]
                return True
        return False

    def clear(self) -> None:
        """Forget every access token, so each auth fetches a new one.

        Also from :attr:`memory_store`; refresh tokens are kept. Requests under way keep the
        token they already carry.
        """
        with self._lock:
            for token in self._tokens.values():
                token.dropped = True
            self._tokens.clear()
        self.memory_store.forget_access_tokens()

    def get_or_fetch(self, key: Hashable, fetch: Callable[[], Token], wait: float) -> Token:
        """The usable token for *key*, calling *fetch* once however many threads ask.

        The first thread to find no token becomes the leader and calls *fetch*; the
        others wait up to *wait* seconds for its outcome and get the same token or a copy
        of the same exception. No lock is held while *fetch* runs, and a failure is not
        remembered: the next call tries again.
        """
        while True:  # again when a task leading the flight was cancelled (see _land)
            boarded = self._board(key)
            if isinstance(boarded, Token):
                return boarded
            flight, leader = boarded
            if leader:
                break
            if flight.loop is not None and flight.loop is running_loop():
                raise _in_the_leaders_loop()
            if not flight.done.wait(wait):
                raise self._gave_up(key, flight, wait)
            landed = flight.outcome()
            if landed is not None:
                return landed
        try:
            token = fetch()
        except BaseException as exc:
            self._land(key, flight, error=exc)
            raise
        self._land(key, flight, token=token)
        return token

    async def aget_or_fetch(
        self, key: Hashable, fetch: Callable[[], Awaitable[Token]], wait: float
    ) -> Token:
        """:meth:`get_or_fetch` for a task: it awaits where a thread would block.

        Threads and tasks, of any number of event loops, share one flight per key: a task
        may follow a thread's token request, and a thread a task's.
        """
        while True:  # again when a task leading the flight was cancelled (see _land)
            boarded = self._board(key, asyncio.get_running_loop())
            if isinstance(boarded, Token):
                return boarded
            flight, leader = boarded
            if leader:
                break
            if not await flight.landed_within(wait):
                raise self._gave_up(key, flight, wait)
            landed = flight.outcome()
            if landed is not None:
                return landed
        try:
            token = await fetch()
        except (asyncio.CancelledError, GeneratorExit):  # cancelled, or its loop gone
            self._land(key, flight)  # nothing to hand on: a follower leads a new flight
            raise
        except BaseException as exc:
            self._land(key, flight, error=exc)
            raise
        self._land(key, flight, token=token)
        return token

    def _board(
        self, key: Hashable, loop: asyncio.AbstractEventLoop | None = None
    ) -> Token | tuple[Flight, bool]:
        """The usable token for *key*; else the flight under way, and whether to lead it
        (a flight of *loop*'s task, if a task asks)."""
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.usable(self.timer()):
                return token
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight(loop)
        return flight, True

    def _land(
        self,
        key: Hashable,
        flight: Flight,
        *,
        token: Token | None = None,
        error: BaseException | None = None,
    ) -> None:
        """The leader's outcome: the token cached, and every waiter for *flight* woken.

        With neither *token* nor *error*, the leader gave up (a cancelled task): its
        followers board again, and one of them leads a flight of its own.
        """
        if token is not None:
            self.put(key, token)
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.land(token, error)

    def _gave_up(self, key: Hashable, flight: Flight, wait: float) -> TokenRequestError:
        """A follower's error after *wait* s; the flight ends, so the next caller leads
        another (its leader may never come back: a task whose loop was closed)."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        return TokenRequestError(
            f"gave up after {wait:g} s waiting for another thread (or task) to get the token"
        )

    def _after_fork(self) -> None:
        # A lock held or a fetch under way in the parent's other threads would never be
        # released in the child: start afresh, keeping the tokens (still valid).
        self._lock = threading.Lock()
        self._flights = {}


def _in_the_leaders_loop() -> TokenRequestError:
    # Waiting for the task would stop the very loop it runs on; fetching apart would wait
    # for the store's lock, which the task holds while it awaits the token endpoint.
    return TokenRequestError(
        "a blocking token request (a sync client) inside the event loop whose task is "
        "getting the same token would wait for itself: use the async client there"
    )


def _refresh_time(_key: Hashable, token: Token, _now: float) -> float:
    return token.refresh_at


_shared_lock = threading.Lock()
_DEFAULT = TokenCache()
_BY_TIMER: LRUCache[Timer, TokenCache] = LRUCache(maxsize=64)


def shared_cache(timer: Timer | None = None) -> TokenCache:
    """The process-wide cache for *timer* (``time.monotonic`` when ``None``).

    Every auth built without ``cache=`` uses it, so tokens are shared across auths,
    adapters and sessions. Auths given the same custom timer share a cache of its own.
    """
    if timer is None or timer is time.monotonic:
        return _DEFAULT
    with _shared_lock:
        cache = _BY_TIMER.get(timer)
        if cache is None:
            cache = _BY_TIMER[timer] = TokenCache(timer=timer)
        return cache


@forget_in_child
def _new_shared_lock() -> None:
    # A parent's thread may have held it while building a cache for a new timer.
    global _shared_lock
    _shared_lock = threading.Lock()
