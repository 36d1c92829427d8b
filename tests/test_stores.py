"""Token stores on their own: the file's format, mode, trust, atomicity, corruption, locking
and fork."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import stat
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from requests_criteo import (
    CriteoAuthError,
    FileTokenStore,
    MemoryTokenStore,
    StoredToken,
    TokenStoreError,
)

from .conftest import (
    TOKEN,
    assert_no_secret,
    held_in_another_thread,
    left_in_a_forked_child,
    wait_for_child,
)

REFRESH = "refresh-SENTINEL-token"


def token(access: str | None = TOKEN, refresh: str | None = REFRESH) -> StoredToken:
    return StoredToken(access, 900.0, 1_700_000_000.0, refresh)


def test_stored_token_repr_hides_tokens() -> None:
    text = repr(token())
    assert_no_secret(text, REFRESH)
    assert "[secure]" in text
    assert token().expires_at == 1_700_000_900.0


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "x",
        {},
        {"access_token": None, "refresh_token": None, "lifetime": 1, "obtained_at": 1},
        {"access_token": "", "lifetime": 1, "obtained_at": 1},
        {"access_token": 5, "lifetime": 1, "obtained_at": 1},
        {"access_token": "a", "refresh_token": "", "lifetime": 1, "obtained_at": 1},
        {"access_token": "a", "lifetime": "900", "obtained_at": 1},
        {"access_token": "a", "lifetime": 900, "obtained_at": True},
    ],
)
def test_malformed_entries_are_not_tokens(data: object) -> None:
    assert StoredToken.from_json(data) is None


def test_round_trip() -> None:
    assert StoredToken.from_json(token().to_json()) == token()
    assert StoredToken.from_json(token(access=None).to_json()) == token(access=None)


@pytest.mark.parametrize("make", [lambda p: MemoryTokenStore(), lambda p: FileTokenStore(p)])
def test_read_write_delete(tmp_path: Path, make: object) -> None:
    store = make(tmp_path / "t.json")  # type: ignore[operator]
    assert store.read("k") is None
    store.write("k", token())
    store.write("other", token("other-access"))
    assert store.read("k") == token()
    store.delete("k")
    store.delete("k")  # absent: no error
    assert store.read("k") is None
    assert store.read("other") == token("other-access")


def test_the_file_is_0600_json_and_holds_no_secret_in_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "tokens.json"
    store = FileTokenStore(path)
    store.write("client-1/client_credentials/abcdef", token())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["format"] == "requests-criteo token store"
    assert data["tokens"]["client-1/client_credentials/abcdef"]["refresh_token"] == REFRESH
    assert list(tmp_path.glob("sub/dir/.tokens.json.*")) == []  # no temp file left
    assert "FileTokenStore(" in repr(store)


def test_a_broad_mode_is_narrowed_on_write(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.write("k", token())
    path.chmod(0o644)
    store.write("k", token("new"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.write("k", token())
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write("k", token("new"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tokens")] == []


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"format": "requests-criteo token store", "tokens": {"k": {"access',  # truncated
        b'{"some": "other program"}',
        b"[1, 2]",
        b"\xff\xfe garbage",
        b'{"format": "requests-criteo token store", "tokens": []}',
        b"",
    ],
)
def test_a_corrupt_file_is_moved_aside_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    store = FileTokenStore(path)
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        assert store.read("k") is None
    aside = list(tmp_path.glob("tokens.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == content  # kept, for recovery by hand
    assert "moved aside" in caplog.text
    store.write("k", token())
    assert store.read("k") == token()


def test_a_malformed_entry_is_dropped_and_the_others_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "format": "requests-criteo token store",
                "version": 1,
                "tokens": {"good": token().to_json(), "bad": {"x": 1}},
            }
        )
    )
    store = FileTokenStore(path)
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        assert store.read("good") == token()
    assert "malformed entry" in caplog.text
    assert_no_secret(caplog.text, REFRESH)


def test_the_lock_excludes_threads(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    inside = 0
    overlaps = 0
    guard = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        nonlocal inside, overlaps
        barrier.wait()
        for _ in range(20):
            with store.lock("k"):
                with guard:
                    inside += 1
                    overlaps += inside > 1
                current = store.read("k")
                count = int(current.access_token) if current and current.access_token else 0
                store.write("k", token(str(count + 1)))
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps == 0
    final = store.read("k")
    assert final is not None
    assert final.access_token == "160"  # no lost update


def test_the_lock_gives_up_after_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    holder = FileTokenStore(path)
    waiter = FileTokenStore(path, lock_timeout=0.2)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.lock("k"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(CriteoAuthError, match="waiting for the lock"), waiter.lock("k"):
            pass  # pragma: no cover - never reached
    finally:
        release.set()
        t.join(5)


def test_file_store_pickles_by_path(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    store.write("k", token())
    blob = pickle.dumps(store)
    assert TOKEN.encode() not in blob
    assert pickle.loads(blob).read("k") == token()


def test_a_stored_token_refuses_pickling() -> None:
    stored = StoredToken(TOKEN, 900.0, 1000.0, "refresh-SENTINEL")
    for dump in (pickle.dumps, copy.deepcopy):
        with pytest.raises(TypeError, match="never pickled"):
            dump(stored)
    assert TOKEN not in repr(stored) and "refresh-SENTINEL" not in repr(stored)


def test_memory_store_refuses_pickling_and_clears() -> None:
    store = MemoryTokenStore()
    store.write("k", token())
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(store)
    assert "keys=1" in repr(store)
    store.clear()
    assert store.read("k") is None


def test_the_home_directory_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = FileTokenStore("~/tokens.json")
    assert store.path == tmp_path / "tokens.json"


# -- a lock held in a forked parent, and every wait bounded ---------------------------------


def test_the_lock_gives_up_on_another_thread_after_its_timeout(tmp_path: Path) -> None:
    # One store shared by two threads: the wait is on the in-process lock, not the file's.
    store = FileTokenStore(tmp_path / "tokens.json", lock_timeout=0.2)
    with held_in_another_thread(lambda: store.lock("k")):
        started = time.monotonic()
        with pytest.raises(TokenStoreError, match="another thread") as caught, store.lock("k"):
            pass  # pragma: no cover - never reached
        assert time.monotonic() - started < 2
        assert caught.value.path == str(tmp_path / "tokens.json")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
@pytest.mark.parametrize("parent_releases", [True, False], ids=["released", "kept"])
def test_a_child_forked_while_a_thread_holds_the_lock_does_not_hang(
    tmp_path: Path, parent_releases: bool
) -> None:
    # The child inherits the in-process lock as held by a thread it does not have, and the
    # parent's FileLock object: it must start with its own. While the parent still holds
    # the file lock, the child gives up after lock_timeout; once it lets go, the child
    # gets the lock and the token.
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, lock_timeout=5 if parent_releases else 0.3)
    store.write("k", token())
    with held_in_another_thread(lambda: store.lock("k")) as release:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 1
            try:
                if parent_releases:
                    code = 0 if store.read("k") == token() else 2
                    store.write("k", token("from-the-child"))
                else:
                    try:
                        store.read("k")
                    except TokenStoreError as exc:
                        code = 0 if "another process" in str(exc) else 3
            finally:
                os._exit(code)
        if parent_releases:
            release.set()
        assert wait_for_child(pid) == 0
    if parent_releases:
        assert store.read("k") == token("from-the-child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_leaving_the_lock_block_keeps_the_parent_holding_it(tmp_path: Path) -> None:
    # The child shares the parent's flock: unlocking it in the child would let a third
    # party in while the parent still writes.
    path = tmp_path / "tokens.json"
    held = FileTokenStore(path).lock("k")
    held.__enter__()
    try:
        assert left_in_a_forked_child(held) == 0
        other = FileTokenStore(path, lock_timeout=0.2)
        with pytest.raises(TokenStoreError, match="another process"), other.lock("k"):
            pass  # pragma: no cover - never reached
    finally:
        held.__exit__(None, None, None)


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf")])
def test_a_lock_timeout_that_bounds_nothing_is_refused(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ValueError, match="lock_timeout"):
        FileTokenStore(tmp_path / "tokens.json", lock_timeout=timeout)


# -- the token file and its lock file, checked as ssh checks its keys ------------------------


def test_the_lock_file_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    with store.lock("k"):
        assert stat.S_IMODE(os.stat(str(path) + ".lock").st_mode) == 0o600


def _give_away(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make *path* another user's file, as the store sees it."""
    if os.geteuid() == 0:
        os.chown(path, 4242, -1)  # root can give a file away
        assert path.stat().st_uid == 4242
    else:  # pragma: no cover - the CI runs as root; elsewhere the store's uid changes
        monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 4242)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX owners and modes")
@pytest.mark.parametrize("which", ["tokens.json", "tokens.json.lock"])
def test_a_file_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    store.write("k", token())
    (tmp_path / "tokens.json.lock").touch(mode=0o600)
    _give_away(tmp_path / which, monkeypatch)
    with pytest.raises(TokenStoreError, match="another user") as caught:
        store.read("k")
    assert str(tmp_path / which) in str(caught.value)
    assert "chown" in str(caught.value)
    assert_no_secret(str(caught.value), REFRESH)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_token_file_writable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    # Its tokens may have been replaced by someone else's: narrowing the mode would not
    # make them ours again, so the person who knows checks the file and runs the chmod.
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.write("k", token())
    path.chmod(mode)
    for call in (partial(store.read, "k"), partial(store.write, "k", token("new"))):
        with pytest.raises(TokenStoreError, match="writable by group or others") as caught:
            call()
        assert f"chmod 600 {path}" in str(caught.value)
        assert_no_secret(str(caught.value), REFRESH)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # left as found
    path.chmod(0o600)
    assert store.read("k") == token()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize("which", ["tokens.json", "tokens.json.lock"])
def test_a_file_readable_by_others_is_narrowed_to_0600_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.write("k", token())
    (tmp_path / "tokens.json.lock").touch(mode=0o600)
    (tmp_path / which).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        assert store.read("k") == token()
    assert stat.S_IMODE((tmp_path / which).stat().st_mode) == 0o600
    assert str(tmp_path / which) in caplog.text
    assert "0600" in caplog.text
    assert_no_secret(caplog.text, REFRESH)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks")
@pytest.mark.parametrize("which", ["tokens.json", "tokens.json.lock"])
def test_a_symlink_in_place_of_a_file_is_refused_and_not_followed(
    tmp_path: Path, which: str
) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    target.chmod(0o600)
    (tmp_path / which).symlink_to(target)
    store = FileTokenStore(tmp_path / "tokens.json")
    for call in (partial(store.read, "k"), partial(store.write, "k", token())):
        with pytest.raises(TokenStoreError, match="symbolic link") as caught:
            call()
        assert str(tmp_path / which) in str(caught.value)
    assert target.read_bytes() == b"precious"  # neither read as a store nor truncated
    assert (tmp_path / which).is_symlink()


def _directory_in_place(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.mkdir()
    return path


def _under_a_regular_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("")
    return tmp_path / "plain" / "tokens.json"


def _under_a_symlink_loop(tmp_path: Path) -> Path:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return tmp_path / "loop" / "tokens.json"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks")
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_directory_in_place, "not a regular file"),
        (_under_a_regular_file, "Not a directory"),
        (_under_a_symlink_loop, "symbolic links"),
    ],
)
def test_a_filesystem_error_is_a_token_store_error_naming_the_path(
    tmp_path: Path, make: object, reason: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    store = FileTokenStore(path)
    for call in (partial(store.read, "k"), partial(store.write, "k", token())):
        with pytest.raises(TokenStoreError, match=reason) as caught:
            call()
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, CriteoAuthError)
        assert_no_secret(str(caught.value), REFRESH)


def test_a_token_store_error_pickles_with_its_path(tmp_path: Path) -> None:
    error = TokenStoreError("cannot use token store /x: Is a directory", "/x")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.path) == (TokenStoreError, str(error), "/x")


# -- removing the lock file (criteo-auth does, at the end of each command) ----------------


def test_stores_whose_lock_file_is_removed_after_each_use_stay_mutually_exclusive(
    tmp_path: Path,
) -> None:
    """What makes removing the lock file safe: a holder that locked a file removed
    meanwhile lets go and locks the new one. Each thread has a store object of its own,
    so they lock through separate descriptors, as separate processes do."""
    path = tmp_path / "tokens.json"
    inside: list[int] = []
    overlaps: list[int] = []

    def use(worker: int) -> None:
        store = FileTokenStore(path)
        for _ in range(40):
            with store.lock("k"):
                inside.append(worker)
                if len(inside) > 1:
                    overlaps.append(worker)
                os.sched_yield()
                inside.remove(worker)
            store.remove_lock_file()

    threads = [threading.Thread(target=use, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps == []
    assert not (tmp_path / "tokens.json.lock").exists()


def test_a_store_whose_lock_file_was_removed_before_it_locked_takes_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check behind the test above, whatever filelock's release does: the file opened
    before locking is gone once locked (another holder removed it), so the store lets go
    and locks the file now at the path."""
    store = FileTokenStore(tmp_path / "tokens.json")
    lock_file = tmp_path / "tokens.json.lock"
    opened: list[int] = []
    open_lock_file = FileTokenStore._open_lock_file

    def opened_then_removed_by_another_holder(self: FileTokenStore) -> int:
        fd = open_lock_file(self)
        opened.append(os.fstat(fd).st_ino)
        if len(opened) == 1:
            lock_file.unlink()
        return fd

    monkeypatch.setattr(FileTokenStore, "_open_lock_file", opened_then_removed_by_another_holder)
    with store.lock("k"):
        held = lock_file.stat().st_ino
    assert len(opened) == 2
    assert opened[1] == held


def test_a_lock_file_removed_while_filelock_opens_it_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """filelock < 4 checks that the lock file exists, then opens it without creating it."""
    import filelock

    store = FileTokenStore(tmp_path / "tokens.json")
    acquire = filelock.FileLock.acquire
    calls: list[int] = []

    def removed_in_between(self: filelock.FileLock, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", str(self.lock_file))
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(filelock.FileLock, "acquire", removed_in_between)
    with store.lock("k"):
        assert len(calls) == 2  # the lock file made again, and locked
    store.write("k", token())
    assert store.read("k") == token()
