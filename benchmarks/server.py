"""A small, fast HTTP/1.1 keep-alive server for the loopback runs, in its own process.

``python -m benchmarks.server`` listens on ``127.0.0.1`` on a free port, prints the port,
and serves until its standard input closes, so it never outlives the benchmark;
:func:`loopback_server` starts and stops it. It answers as :mod:`benchmarks.transport`
does in memory: a token on ``/oauth2/token``, a small JSON body to a request carrying
``Authorization: Bearer``, a 401 otherwise. Each answer is built in advance: the server
does far less per request than the client, so that the client is what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .transport import API_BODY, UNAUTHORIZED_BODY, token_body

__all__ = ["loopback_server", "main"]

#: The project's root, from which the server's process runs.
_ROOT = str(Path(__file__).resolve().parent.parent)


def _answer(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (status, len(body)) + body


_OK = _answer(b"200 OK", API_BODY)
_TOKEN = _answer(b"200 OK", token_body("loopback"))
_UNAUTHORIZED = _answer(b"401 Unauthorized", UNAUTHORIZED_BODY)


class _Protocol(asyncio.Protocol):
    """One keep-alive connection: answers every complete request in its buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = []
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                break
            del self.buffer[: end + 4 + length]
            if head.split(b"\r\n", 1)[0].split(b" ")[1].endswith(b"/oauth2/token"):
                answers.append(_TOKEN)
            elif b"\r\nauthorization: bearer " in head:
                answers.append(_OK)
            else:
                answers.append(_UNAUTHORIZED)
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))


def main() -> None:
    """Serve until standard input closes."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Protocol, "127.0.0.1", 0, backlog=256))
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=loop.run_forever, daemon=True).start()
    sys.stdin.buffer.read()


@contextlib.contextmanager
def loopback_server(cpu: int | None = None) -> Iterator[str]:
    """Run the server in a child process (on *cpu*, when given); yields its base URL."""
    path = os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.stdin.close()
        process.stdout.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


if __name__ == "__main__":
    main()
