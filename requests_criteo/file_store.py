"""FileTokenStore: one JSON file of tokens, shared by the processes of a host.

What lives here: :class:`FileTokenStore` and the checks it makes on its files before
trusting them (as ssh checks its keys). What does not: what a store keeps and the interface
every store implements (:mod:`.stores`), when to fetch (:mod:`._source`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from ._fork import reset_in_child
from .exceptions import CriteoAuthError, TokenStoreError
from .stores import Clock, StoredToken, TokenStore

__all__ = ["FileTokenStore"]

log = logging.getLogger("requests_criteo")

_FORMAT = "requests-criteo token store"


class FileTokenStore(TokenStore):
    """Tokens in one JSON file, shared by every process of a host.

    The file is created with mode 0600 (its directory 0700 if it has to be made),
    rewritten atomically (a temporary file in the same directory, then a rename) and
    guarded by a lock file beside it (``filelock``, also 0600), so a cron job started every
    minute, or eight workers on one machine, share one token per lifetime and never use a
    refresh token twice::

        store = FileTokenStore("~/.config/my-reports/criteo-tokens.json")
        auth = CriteoAuth(client_id, client_secret, store=store)

    A program done with the store may remove the lock file (:meth:`remove_lock_file`, as
    ``criteo-auth`` does): every lock checks that the file it locked is still the one at
    the path, so the processes still sharing the store stay mutually excluded.

    The token file and the lock file are checked as ssh checks its keys: a symbolic link
    (never followed), something other than a regular file, another user's file, or a token
    file writable by group or others is refused with
    :class:`~requests_criteo.TokenStoreError` naming the path and the fix. A file of this
    user that others may only read (or a lock file with any group or other bit) is
    narrowed to 0600 with a warning. Every ``OSError`` reaches the caller as a
    ``TokenStoreError`` naming the path.

    A file that is not a token store (corrupt, truncated, another program's) is moved
    aside to ``<name>.corrupt-<time>`` with a warning — kept, so a refresh token in it can
    still be recovered by hand — and a new store is started. The file holds tokens in
    clear: keep it where only the job's user can read it.

    :param path: the file (``~`` is expanded).
    :param lock_timeout: seconds to wait, in all, for the lock (held by another thread or
        another process) before giving up with ``TokenStoreError``.
    :param clock: Unix time; tests inject one.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, lock_timeout: float = 60.0, clock: Clock = time.time
    ) -> None:
        # NaN fails the comparison too; TIMEOUT_MAX is the most a thread lock can wait.
        if not 0 <= lock_timeout <= threading.TIMEOUT_MAX:
            raise ValueError(f"lock_timeout must be a number of seconds >= 0, not {lock_timeout}")
        self.path = Path(path).expanduser()
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._new_locks()
        reset_in_child(self)

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "lock_timeout": self.lock_timeout, "clock": self.clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        FileTokenStore.__init__(
            self, state["path"], lock_timeout=state["lock_timeout"], clock=state["clock"]
        )

    def _new_locks(self) -> None:
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(self._lock_path, mode=0o600)

    def _after_fork(self) -> None:
        # The parent's other threads may hold either lock, and never release it here; a
        # recent filelock also refuses a lock object inherited across fork.
        self._new_locks()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """The whole file's lock (one lock for every key: token writes are rare)."""
        # Taken once, so that the objects released are the ones acquired even if a fork
        # replaces them in between.
        thread_lock, file_lock, owner = self._thread_lock, self._file_lock, os.getpid()
        deadline = time.monotonic() + self.lock_timeout
        if not thread_lock.acquire(timeout=self.lock_timeout):
            raise self._gave_up("another thread of this process holds it")
        try:
            with self._os_errors():
                self._ensure_directory()
                self._take(file_lock, deadline)
            try:
                yield
            finally:
                if os.getpid() == owner:
                    with self._os_errors():
                        file_lock.release()
                else:  # pragma: no cover - runs in a forked child, whose coverage is not kept
                    # A child forked in this block shares the parent's flock: unlocking it,
                    # here or in the lock's finalizer (filelock < 4 does), would end the
                    # parent's hold too. So the child keeps the lock object and never lets go.
                    _INHERITED_LOCKS.append(file_lock)
        finally:
            thread_lock.release()

    def _take(self, file_lock: FileLock, deadline: float) -> None:
        """Take *file_lock*, and make sure the file it locks is the lock file at the path.

        :meth:`remove_lock_file` removes the file while holding its lock, so a process that
        opened it just before may then lock a file that is gone, while a newcomer locks the
        new one. So the lock file is opened (and checked) before locking and compared with
        the path once locked; if they differ, the lock is let go and taken again.
        """
        while True:
            fd = self._open_lock_file()
            try:
                try:
                    file_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0))
                except FileLockTimeout:
                    raise self._gave_up("another process holds it") from None
                except FileNotFoundError:
                    # filelock < 4 opens a lock file it saw exist without creating it: one
                    # removed in between (remove_lock_file) is made again on the next turn.
                    if time.monotonic() >= deadline:
                        raise self._gave_up("its lock file kept being removed") from None
                    continue
                if file_lock.lock_counter > 1 or self._is_the_lock_file(fd):
                    return  # a nested hold of this thread, or the file at the path
                file_lock.release()
            finally:
                os.close(fd)  # filelock locks through its own descriptor

    def _open_lock_file(self) -> int:
        """The lock file, checked (and narrowed) as the token file is; made 0600 if absent."""
        while True:
            fd = self._open_trusted(self._lock_path, holds_tokens=False)
            if fd is not None:
                return fd
            try:
                return os.open(
                    self._lock_path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600
                )
            except FileExistsError:  # another process made it meanwhile: check theirs
                continue

    def _is_the_lock_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.lstat(self._lock_path))
        except FileNotFoundError:
            return False

    def remove_lock_file(self) -> bool:
        """Remove the lock file beside the token file; whether one was removed.

        For a program that is done with the store, such as ``criteo-auth`` at the end of a
        command, so that no ``.lock`` file is left beside the token file. It is removed
        while its lock is held, and every ``lock()`` checks, once it holds the lock, that
        the file it locked is still the one at the path (else it takes the new one), so
        processes sharing the store stay mutually excluded. On Windows a lock file that
        another process has open cannot be removed: it stays, and ``False`` is returned.
        """
        with self.lock(""), self._os_errors():
            try:
                os.unlink(self._lock_path)
            except OSError:
                return False
            return True

    def read(self, key: str) -> StoredToken | None:
        with self.lock(key), self._os_errors():
            return StoredToken.from_json(self._load().get(key))

    def write(self, key: str, token: StoredToken) -> None:
        with self.lock(key), self._os_errors():
            tokens = self._load()
            tokens[key] = token.to_json()
            self._save(tokens)

    def delete(self, key: str) -> None:
        with self.lock(key), self._os_errors():
            tokens = self._load()
            if tokens.pop(key, None) is not None:
                self._save(tokens)

    def _gave_up(self, holder: str) -> TokenStoreError:
        return TokenStoreError(
            f"gave up after {self.lock_timeout:g} s waiting for the lock of token store "
            f"{self.path} ({holder})",
            str(self.path),
        )

    @contextlib.contextmanager
    def _os_errors(self) -> Iterator[None]:
        """An ``OSError`` of the store's files as the library's own error, naming the path."""
        try:
            yield
        except CriteoAuthError:  # requests' errors are OSErrors: ours pass as they are
            raise
        except OSError as exc:
            # strerror says what happened; a bare OSError("...") has only its message.
            reason = exc.strerror or str(exc) or type(exc).__name__
            where = "" if exc.filename in (None, str(self.path)) else f"{exc.filename}: "
            raise TokenStoreError(
                f"cannot use token store {self.path}: {where}{reason}", str(self.path)
            ) from exc

    def _ensure_directory(self) -> None:
        # Not Path.exists(), which answers False to a symlink loop and hides the real error.
        try:
            os.stat(self.path.parent)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _open_trusted(self, path: Path, *, holds_tokens: bool) -> int | None:
        """*path* opened for reading once checked as ssh checks its keys; ``None`` if absent.

        The checks are made on the open descriptor (``fstat``), so the file checked is the
        file read.
        """
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise self._untrusted(
                    path, "is a symbolic link, which is not followed: put the file itself there"
                )
            # O_NOFOLLOW: a link planted after the lstat is refused, not followed.
            # O_NONBLOCK: a FIFO planted there cannot hold the open forever.
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except FileNotFoundError:
            return None
        try:
            self._check(path, fd, holds_tokens=holds_tokens)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check(self, path: Path, fd: int, *, holds_tokens: bool) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise self._untrusted(path, "is not a regular file: move it away")
        if not hasattr(os, "geteuid"):  # pragma: no cover - Windows: ACLs, not uid and mode
            return
        uid = os.geteuid()
        if st.st_uid != uid:
            raise self._untrusted(
                path,
                f"belongs to another user (uid {st.st_uid}, this is uid {uid}): not trusted; "
                f"remove it, or `chown {uid} {path}` and `chmod 600 {path}`",
            )
        mode = stat.S_IMODE(st.st_mode)
        if holds_tokens and mode & (stat.S_IWGRP | stat.S_IWOTH):
            # Someone else may have written the tokens in it: narrowing the mode would not
            # make them ours again. A lock file holds nothing, so it is only narrowed.
            raise self._untrusted(
                path,
                f"is writable by group or others (mode {mode:04o}), so its tokens may not "
                f"be yours: check it, then `chmod 600 {path}`",
            )
        if mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning(
                "%s %s was open to group or others (mode %04o): set to 0600%s",
                "token store" if holds_tokens else "lock file of a token store",
                path,
                mode,
                "; the tokens in it may have been read" if holds_tokens else "",
            )

    def _untrusted(self, path: Path, why: str) -> TokenStoreError:
        what = "token store" if path == self.path else f"token store {self.path}: lock file"
        return TokenStoreError(f"{what} {path} {why}", str(self.path))

    def _load(self) -> dict[str, Any]:
        """The stored entries; a file that is not a token store is moved aside."""
        fd = self._open_trusted(self.path, holds_tokens=True)
        if fd is None:
            return {}
        with open(fd, "rb") as f:
            raw = f.read()
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


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# File locks a forked child left while its parent held them (see FileTokenStore.lock).
_INHERITED_LOCKS: list[FileLock] = []
