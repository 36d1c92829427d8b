"""RedisTokenStore: one token store for a fleet of workers on many machines.

What lives here: :class:`RedisTokenStore`, a :class:`~requests_criteo.TokenStore` on Redis,
and its fallback to process memory while Redis is unreachable. What does not: when to
fetch (:mod:`._source`). Needs the ``redis`` extra: ``pip install "requests-criteo[redis]"``.

In Redis, under ``prefix`` (``requests_criteo:`` by default), each store key becomes:

* ``token:<hash>`` — the access token, written with ``SET ... PX`` so that Redis drops it
  when it expires;
* ``refresh:<hash>`` — the refresh token of an authorization-code app, without expiry
  (its lifetime is not documented by Criteo);
* ``lock:<hash>`` — the single-flight lock: redis-py's ``Lock`` (``SET NX PX`` with an owner
  token, released by its owner only through a Lua script), renewed by a watchdog thread
  while held, so a slow refresh keeps it and a killed holder loses it within ``lock_ttl``.

``<hash>`` is a SHA-256 of the store key: Redis keys hold no client id and no secret.

When Redis is slow or down, API calls keep working: the store switches to process
memory, logs one warning per outage, skips Redis for ``retry_interval`` seconds between
probes, and goes back to Redis when it answers again. Each Redis operation waits at most
``socket_timeout``, and once one operation of a lock hold has failed, the rest of that
hold (the release included) uses memory at once: with Redis frozen, a call waits about one
``socket_timeout``, not one per operation. One exception, to protect
authorization-code apps: a refresh token is never used without the fleet-wide lock, so
during an outage such an app keeps using its current access token but does not refresh
(a :class:`~requests_criteo.CriteoAuthError` says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._fork import reset_in_child
from ._redis import UNREACHABLE, OnRedis, Outage, redis
from .exceptions import CriteoAuthError
from .stores import MemoryTokenStore, StoredToken, TokenStore

__all__ = ["RedisTokenStore"]

LockError = redis.exceptions.LockError

log = logging.getLogger("requests_criteo")

_UNREACHABLE = UNREACHABLE


class _Hold(threading.local):
    """This thread's hold of :meth:`RedisTokenStore.lock`: on Redis, or on memory."""

    active = False
    on_memory = False


class RedisTokenStore(OnRedis, TokenStore):
    """Tokens in Redis, shared by every process on every machine of a fleet.

    ::

        store = RedisTokenStore("redis://redis.internal:6379/0")
        auth = CriteoAuth(client_id, client_secret, store=store)

    :param url_or_client: a ``redis://`` URL, or a ``redis.Redis`` client of your own
        (then its timeouts are yours to bound).
    :param prefix: the namespace of every key this store writes.
    :param lock_ttl: seconds a lock lives without renewal: how long a holder that died
        can block the others.
    :param lock_timeout: seconds to wait for another holder before giving up.
    :param socket_timeout: seconds for each Redis operation (URL form only).
    :param retry_interval: seconds between probes of Redis during an outage.
    :param clock: Unix time; tests inject one.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        prefix: str = "requests_criteo:",
        *,
        lock_ttl: float = 10.0,
        lock_timeout: float = 30.0,
        socket_timeout: float = 1.0,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect(url_or_client, socket_timeout)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string, e.g. 'requests_criteo:'")
        if lock_ttl <= 0 or lock_timeout <= 0 or socket_timeout <= 0 or retry_interval < 0:
            raise ValueError("lock_ttl, lock_timeout and socket_timeout must be positive")
        self.prefix = prefix
        self.lock_ttl = float(lock_ttl)
        self.lock_timeout = float(lock_timeout)
        self.socket_timeout = float(socket_timeout)
        self.retry_interval = float(retry_interval)
        self.clock = clock
        self._fallback = MemoryTokenStore(clock=clock)
        self._outage = Outage(
            self.retry_interval,
            "Redis token store",
            "using this process's memory until it answers again",
            "tokens are shared again",
        )
        self._hold = _Hold()
        reset_in_child(self)

    _options = ("prefix", "lock_ttl", "lock_timeout", "socket_timeout", "retry_interval", "clock")

    def __repr__(self) -> str:
        return f"<RedisTokenStore {self._place()} prefix={self.prefix!r}>"

    def _after_fork(self) -> None:
        # Another thread of the parent may have held the outage lock. The rest carries over:
        # the fallback store resets its own locks, redis-py's pool opens new connections in
        # a child by itself, and the only hold left is the forking thread's, on its own stack.
        self._outage.after_fork()

    # -- keys ---------------------------------------------------------------------------

    def _name(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    # -- outage bookkeeping -------------------------------------------------------------

    def _redis_usable(self) -> bool:
        if self._hold.on_memory:
            return False
        return self._outage.usable()

    def _failed(self, exc: BaseException) -> None:
        if self._hold.active:
            # Redis just made us wait (or refused): the rest of this hold goes to memory,
            # even when retry_interval would allow another probe at once.
            self._hold.on_memory = True
        self._outage.failed(exc)

    def _answered(self) -> None:
        self._outage.answered()

    @property
    def available(self) -> bool:
        """Whether the store is using Redis (``False`` during an outage)."""
        return self._outage.available

    # -- the TokenStore interface ---------------------------------------------------------

    def read(self, key: str) -> StoredToken | None:
        if self._redis_usable():
            try:
                access, refresh = self.client.mget(
                    [self._name("token", key), self._name("refresh", key)]
                )
            except _UNREACHABLE as exc:
                self._failed(exc)
            else:
                self._answered()
                return self._decode(access, refresh)
        return self._fallback.read(key)

    def write(self, key: str, token: StoredToken) -> None:
        self._fallback.write(key, token)
        if not self._redis_usable():
            return
        remaining_ms = int((token.expires_at - self.clock()) * 1000)
        try:
            with self.client.pipeline(transaction=True) as pipe:
                if token.access_token is not None and remaining_ms > 0:
                    entry = {
                        "access_token": token.access_token,
                        "lifetime": token.lifetime,
                        "obtained_at": token.obtained_at,
                    }
                    pipe.set(self._name("token", key), json.dumps(entry), px=remaining_ms)
                else:
                    pipe.delete(self._name("token", key))
                if token.refresh_token is not None:
                    pipe.set(self._name("refresh", key), token.refresh_token)
                else:
                    pipe.delete(self._name("refresh", key))
                pipe.execute()
        except _UNREACHABLE as exc:
            self._failed(exc)
        else:
            self._answered()

    def delete(self, key: str) -> None:
        self._fallback.delete(key)
        if not self._redis_usable():
            return
        try:
            self.client.delete(self._name("token", key), self._name("refresh", key))
        except _UNREACHABLE as exc:
            self._failed(exc)
        else:
            self._answered()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """The fleet-wide lock of *key*; this process's lock while Redis is unreachable."""
        hold = self._hold
        outer = hold.active, hold.on_memory
        hold.active, hold.on_memory = True, False
        try:
            with self._lock(key, hold):
                yield
        finally:
            hold.active, hold.on_memory = outer

    @contextlib.contextmanager
    def _lock(self, key: str, hold: _Hold) -> Iterator[None]:
        lock = None
        if self._redis_usable():
            lock = self.client.lock(
                self._name("lock", key),
                timeout=self.lock_ttl,
                blocking_timeout=self.lock_timeout,
                thread_local=False,
            )
            try:
                acquired = lock.acquire()
            except _UNREACHABLE as exc:
                self._failed(exc)
                lock = None
            else:
                self._answered()
                if not acquired:
                    raise CriteoAuthError(
                        f"gave up after {self.lock_timeout:g} s waiting for the Redis token "
                        "lock (another worker holds it)"
                    )
        if lock is None:
            hold.on_memory = True  # without the fleet-wide lock, no Redis write either
            with self._fallback.lock(key):
                yield
            return
        owner, stop = os.getpid(), threading.Event()
        watchdog = threading.Thread(
            target=self._renew, args=(lock, stop), name="requests-criteo-redis-lock", daemon=True
        )
        watchdog.start()
        try:
            yield
        finally:
            stop.set()
            # After a failure in this hold, a release would most likely wait a full timeout
            # too: the lock frees itself within lock_ttl instead, as a dead holder's does.
            # A child forked in this block carries the parent's lock token: its release
            # would end the parent's hold, so it leaves the lock to expire.
            if not hold.on_memory and os.getpid() == owner:
                watchdog.join()
                try:
                    lock.release()
                except LockError:
                    pass  # expired: another worker may hold it now
                except _UNREACHABLE as exc:
                    self._failed(exc)

    def may_refresh(self, key: str) -> bool:
        """Not while Redis is unreachable: a refresh needs the fleet-wide lock."""
        return self.available

    def _renew(self, lock: Any, stop: threading.Event) -> None:
        while not stop.wait(self.lock_ttl / 3):
            try:
                lock.reacquire()
            except (LockError, *_UNREACHABLE):
                return

    # -- values ---------------------------------------------------------------------------

    @staticmethod
    def _decode(access: bytes | str | None, refresh: bytes | str | None) -> StoredToken | None:
        # A client made with decode_responses=True answers str; ours answer bytes.
        if isinstance(refresh, bytes):
            refresh = refresh.decode("utf-8", "replace")
        refresh_token = refresh or None
        entry: Any = None
        if access is not None:
            try:
                entry = json.loads(access)
            except ValueError:
                entry = None
        if isinstance(entry, dict):
            entry["refresh_token"] = refresh_token
            token = StoredToken.from_json(entry)
            if token is not None:
                return token
        if refresh_token:
            return StoredToken(None, 0.0, 0.0, refresh_token)
        return None
