"""A small, fast HTTP/1.1 keep-alive server for the loopback benchmark, in its own process.

``python -m benchmarks.server`` binds ``127.0.0.1`` on a free port, prints the port on its
first line of output, and serves until its standard input is closed (so it never outlives
the benchmark). It is an asyncio ``Protocol`` that parses requests by their blank line and
``Content-Length`` and answers each with a response built in advance:

* ``/oauth2/token``: a client-credentials token answer (``expires_in`` 900);
* any other path: a small JSON body when the request carries ``Authorization: Bearer``,
  else a 401 with Criteo's error envelope.

Pipelined requests are answered in order in one write. It does far less work per request
than the client, so that the single-threaded client is what the benchmark measures.
:class:`LoopbackServer` starts it and stops it from the benchmark's process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from .transport import API_BODY, UNAUTHORIZED_BODY, token_body

__all__ = ["LoopbackServer", "main"]

_TOKEN_LINE = b" /oauth2/token"
_BEARER = b"\r\nauthorization: bearer "
_LENGTH = b"\r\ncontent-length:"
_CLOSE = b"\r\nconnection: close"
#: The project's root, from which the server's process runs.
_ROOT = str(Path(__file__).resolve().parent.parent)
_PATH = os.environ.get("PYTHONPATH")


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


_OK = _response(b"200 OK", API_BODY)
_TOKEN = _response(b"200 OK", token_body("loopback"))
_UNAUTHORIZED = _response(b"401 Unauthorized", UNAUTHORIZED_BODY)


class _Protocol(asyncio.Protocol):
    """One keep-alive connection: answers every complete request in the buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        answers: list[bytes] = []
        close = False
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(_LENGTH)
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + len(_LENGTH) : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                break
            del buffer[:total]
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            if _TOKEN_LINE in request_line:
                answers.append(_TOKEN)
            elif _BEARER in head:
                answers.append(_OK)
            else:
                answers.append(_UNAUTHORIZED)
            if _CLOSE in head:
                close = True
                break
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))
            if close:
                self.transport.close()


def _wait_for_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Future[None]) -> None:
    sys.stdin.buffer.read()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    loop.call_soon_threadsafe(finish)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop: asyncio.Future[None] = loop.create_future()
    threading.Thread(target=_wait_for_stdin_eof, args=(loop, stop), daemon=True).start()
    async with server:
        await stop


def main() -> None:
    """Serve until standard input closes."""
    asyncio.run(_serve())


class LoopbackServer:
    """Runs :func:`main` in a child process; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, cpu: int | None = None) -> None:
        self.cpu = cpu  # the CPU to run on, when given
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        """Start the child (on its CPU, when given) and wait until it listens."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, _PATH]))},
        )
        if self.cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self.process.pid, {self.cpu})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the loopback server did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        """Close the child's standard input and wait for it to end (kill it if it hangs)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
