"""Token stores: where tokens live beyond one auth object, one process, or one run.

What lives here: :class:`StoredToken` (what a store keeps), :class:`TokenStore` (the
interface) and :class:`MemoryTokenStore` (process-wide, the default). What does not:
deciding when to fetch (:mod:`.auth`), the in-process cache of usable tokens
(:mod:`._cache`), one JSON file shared by the processes of a host (:mod:`.file_store`),
Redis (:mod:`.redis_store`, which needs the ``redis`` extra).

How an auth uses its store. The process-wide :class:`~requests_criteo.TokenCache` answers
every request while its token is fresh, with no lock and no I/O. Only when it has no usable
token does one thread of the process take the store's ``lock(key)``, ``read`` what another
process may have fetched meanwhile, and, if that is not usable either, fetch a new token
and ``write`` it — refresh token included — *before* using it. So any number of threads
and processes sharing a store make one token request per token lifetime, and a refresh
token is never used twice.

Times in a store are Unix times from the store's ``clock`` (``time.time``), because
monotonic clocks are not comparable across machines. Keys are built by the auth from the
token URL, the client id, the grant and, for client credentials, a fingerprint of the
secret: they never hold a secret.
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from ._fork import reset_in_child
from .exceptions import TokenStoreError

__all__ = ["MemoryTokenStore", "StoredToken", "TokenStore"]

Clock = Callable[[], float]


@dataclass(frozen=True, repr=False)
class StoredToken:
    """A token as a store keeps it: the access token, its schedule, the refresh token.

    ``access_token`` is ``None`` when only a refresh token is kept (after a 401, or before
    the first refresh). ``obtained_at`` is a Unix time (by the store's clock) taken just
    before the token request was sent. Its ``repr`` shows no token, and it refuses to be
    pickled (a pickle would hold its tokens in clear).
    """

    access_token: str | None
    lifetime: float
    obtained_at: float
    refresh_token: str | None = None

    @property
    def expires_at(self) -> float:
        """The Unix time at which the access token expires."""
        return self.obtained_at + self.lifetime

    def __repr__(self) -> str:
        return (
            f"StoredToken(access_token={'[secure]' if self.access_token else None}, "
            f"lifetime={self.lifetime:g}, obtained_at={self.obtained_at:.0f}, "
            f"refresh_token={'[secure]' if self.refresh_token else None})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            "a StoredToken is never pickled: it would put its tokens in clear on disk "
            "(to_json() is for stores that keep them on purpose)"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what :class:`~requests_criteo.FileTokenStore` writes)."""
        return {
            "access_token": self.access_token,
            "lifetime": self.lifetime,
            "obtained_at": self.obtained_at,
            "refresh_token": self.refresh_token,
        }

    @classmethod
    def from_json(cls, data: object) -> StoredToken | None:
        """The token *data* describes, or ``None`` if it is not one (never raises)."""
        if not isinstance(data, dict):
            return None
        access, refresh = data.get("access_token"), data.get("refresh_token")
        lifetime, obtained = _number(data.get("lifetime")), _number(data.get("obtained_at"))
        if access is not None and (not isinstance(access, str) or not access):
            return None
        if refresh is not None and (not isinstance(refresh, str) or not refresh):
            return None
        if access is None and refresh is None:
            return None
        if lifetime is None or obtained is None:
            return None
        return cls(access, lifetime, obtained, refresh)


def _number(value: object) -> float | None:
    """*value* as a float if JSON made it a number (``true`` is not one), else ``None``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class TokenStore(ABC):
    """Where an auth keeps tokens beyond its process-local cache.

    Implement five things: ``clock`` (Unix time), ``read``, ``write``, ``delete`` and
    ``lock``. ``lock(key)`` must give mutual exclusion to every thread and every process
    that shares the store, and must give up with :class:`~requests_criteo.CriteoAuthError`
    after a bounded wait; the auth holds it around read-fetch-write, which is what makes
    one token request per lifetime and serialized refresh-token rotation::

        class MyStore(TokenStore):
            def read(self, key): ...
            def write(self, key, token): ...
            def delete(self, key): ...
            def lock(self, key): ...        # a context manager
    """

    #: The clock of ``obtained_at`` values: Unix time.
    clock: Clock = time.time

    @abstractmethod
    def read(self, key: str) -> StoredToken | None:
        """The token stored under *key*, or ``None``."""

    @abstractmethod
    def write(self, key: str, token: StoredToken) -> None:
        """Store *token* under *key*, replacing what was there."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget *key* (no error if it is absent)."""

    @abstractmethod
    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """A context manager holding the lock of *key* for every sharer of the store."""

    def may_refresh(self, key: str) -> bool:
        """Whether a refresh token may be used now (``False`` while the lock is not shared)."""
        return True


class MemoryTokenStore(TokenStore):
    """Tokens kept in this process only: the default store.

    A bounded cachetools ``LRUCache`` behind a lock, with one re-entrant lock per key.
    Refresh tokens kept here live as long as the process: an authorization-code app that
    must survive a restart needs a :class:`~requests_criteo.FileTokenStore` or
    ``on_token=``.

    :param maxsize: how many keys are kept at most.
    :param clock: Unix time; tests inject one.
    :param lock_timeout: seconds to wait for a key's lock before giving up with
        :class:`~requests_criteo.TokenStoreError` (a holder that never lets go, such as
        the worker of a task whose event loop was closed mid-fetch, must not hang the
        process's later token requests).
    """

    def __init__(
        self, maxsize: int = 1024, *, clock: Clock = time.time, lock_timeout: float = 60.0
    ) -> None:
        self.clock = clock
        self.lock_timeout = lock_timeout
        self._tokens: LRUCache[str, StoredToken] = LRUCache(maxsize=maxsize)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        reset_in_child(self)

    def __repr__(self) -> str:
        return f"<MemoryTokenStore keys={len(self._tokens)}>"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a MemoryTokenStore is not pickled: it would carry tokens")

    def read(self, key: str) -> StoredToken | None:
        with self._guard:
            return self._tokens.get(key)

    def write(self, key: str, token: StoredToken) -> None:
        with self._guard:
            self._tokens[key] = token

    def delete(self, key: str) -> None:
        with self._guard:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        """Forget every token, refresh tokens included."""
        with self._guard:
            self._tokens.clear()

    def forget_access_tokens(self) -> None:
        """Forget every access token; keep the refresh tokens."""
        with self._guard:
            for key, token in list(self._tokens.items()):
                if token.refresh_token is None:
                    del self._tokens[key]
                elif token.access_token is not None:
                    self._tokens[key] = StoredToken(
                        None, token.lifetime, token.obtained_at, token.refresh_token
                    )

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        if not lock.acquire(timeout=self.lock_timeout):
            raise TokenStoreError(
                f"gave up after {self.lock_timeout:g} s waiting for the token store's lock "
                f"of {key!r}"
            )
        try:
            yield
        finally:
            lock.release()

    def _after_fork(self) -> None:
        # Locks held by the parent's other threads would never be released in the child.
        self._guard = threading.Lock()
        self._locks = {}
