"""Token stores on their own: the file's format, mode, atomicity, corruption and locking."""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
import threading
from pathlib import Path

import pytest

from requests_criteo import CriteoAuthError, FileTokenStore, MemoryTokenStore, StoredToken

from .conftest import TOKEN, assert_no_secret

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
