"""Token stores: where tokens live beyond one auth object, one process, or one run.

What lives here: :class:`StoredToken` (what a store keeps), :class:`TokenStore` (the
interface), :class:`MemoryTokenStore` (process-wide, the default) and
:class:`FileTokenStore` (one JSON file shared by the processes of a host). What does not:
deciding when to fetch (:mod:`.auth`), the in-process cache of usable tokens
(:mod:`._cache`), Redis (:mod:`.redis_store`, which needs the ``redis`` extra).

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
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from .exceptions import CriteoAuthError

__all__ = ["FileTokenStore", "MemoryTokenStore", "StoredToken", "TokenStore"]

log = logging.getLogger("requests_criteo")

Clock = Callable[[], float]


@dataclass(frozen=True, repr=False)
class StoredToken:
    """A token as a store keeps it: the access token, its schedule, the refresh token.

    ``access_token`` is ``None`` when only a refresh token is kept (after a 401, or before
    the first refresh). ``obtained_at`` is a Unix time (by the store's clock) taken just
    before the token request was sent. Its ``repr`` shows no token.
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

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what :class:`FileTokenStore` writes)."""
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
        lifetime, obtained = data.get("lifetime"), data.get("obtained_at")
        if access is not None and (not isinstance(access, str) or not access):
            return None
        if refresh is not None and (not isinstance(refresh, str) or not refresh):
            return None
        if access is None and refresh is None:
            return None
        numbers = (lifetime, obtained)
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            return None
        return cls(access, float(lifetime), float(obtained), refresh)  # type: ignore[arg-type]


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
    must survive a restart needs a :class:`FileTokenStore` or ``on_token=``.

    :param maxsize: how many keys are kept at most.
    :param clock: Unix time; tests inject one.
    """

    def __init__(self, maxsize: int = 1024, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self._tokens: LRUCache[str, StoredToken] = LRUCache(maxsize=maxsize)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        _MEMORY_STORES.add(self)

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
        with lock:
            yield

    def _after_fork(self) -> None:
        self._guard = threading.Lock()
        self._locks = {}


_FORMAT = "requests-criteo token store"


class FileTokenStore(TokenStore):
    """Tokens in one JSON file, shared by every process of a host.

    The file is created with mode 0600 (its directory 0700 if it has to be made),
    rewritten atomically (a temporary file in the same directory, then a rename) and
    guarded by a lock file beside it (``filelock``), so a cron job started every minute, or
    eight workers on one machine, share one token per lifetime and never use a refresh
    token twice::

        store = FileTokenStore("~/.cache/requests-criteo/tokens.json")
        auth = CriteoAuth(client_id, client_secret, store=store)

    A file that is not a token store (corrupt, truncated, another program's) is moved
    aside to ``<name>.corrupt-<time>`` with a warning — kept, so a refresh token in it can
    still be recovered by hand — and a new store is started. The file holds tokens in
    clear: keep it where only the job's user can read it.

    :param path: the file (``~`` is expanded).
    :param lock_timeout: seconds to wait for another process's lock before giving up.
    :param clock: Unix time; tests inject one.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, lock_timeout: float = 60.0, clock: Clock = time.time
    ) -> None:
        self.path = Path(path).expanduser()
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "lock_timeout": self.lock_timeout, "clock": self.clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], lock_timeout=state["lock_timeout"], clock=state["clock"])  # type: ignore[misc]

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """The whole file's lock (one lock for every key: token writes are rare)."""
        with self._thread_lock:
            self._ensure_directory()
            try:
                self._file_lock.acquire()
            except FileLockTimeout:
                raise CriteoAuthError(
                    f"gave up after {self.lock_timeout:g} s waiting for the lock of token "
                    f"store {self.path} (another process holds it)"
                ) from None
            try:
                yield
            finally:
                self._file_lock.release()

    def read(self, key: str) -> StoredToken | None:
        with self.lock(key):
            return StoredToken.from_json(self._load().get(key))

    def write(self, key: str, token: StoredToken) -> None:
        with self.lock(key):
            tokens = self._load()
            tokens[key] = token.to_json()
            self._save(tokens)

    def delete(self, key: str) -> None:
        with self.lock(key):
            tokens = self._load()
            if tokens.pop(key, None) is not None:
                self._save(tokens)

    def _ensure_directory(self) -> None:
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _load(self) -> dict[str, Any]:
        """The stored entries; a file that is not a token store is moved aside."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != _FORMAT:
                raise ValueError("not a requests-criteo token store")
            tokens = data.get("tokens")
            if not isinstance(tokens, dict):
                raise ValueError("no tokens object")
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            log.warning(
                "token store %s is not readable (%s): moved aside to %s, starting a new one",
                self.path,
                type(exc).__name__ if not str(exc) else exc,
                aside,
            )
            return {}
        kept = {}
        for key, entry in tokens.items():
            if StoredToken.from_json(entry) is None:
                log.warning("token store %s: dropping a malformed entry", self.path)
            else:
                kept[key] = entry
        return kept

    def _save(self, tokens: dict[str, Any]) -> None:
        payload = json.dumps({"format": _FORMAT, "version": 1, "tokens": tokens}, indent=1)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            if hasattr(os, "fchmod"):  # pragma: no branch - mkstemp already makes it 0600
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


_MEMORY_STORES: weakref.WeakSet[MemoryTokenStore] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for store in list(_MEMORY_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
    os.register_at_fork(after_in_child=_reinit_after_fork)
