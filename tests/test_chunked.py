"""Bodies sent in chunks (``Transfer-Encoding: chunked``), gzipped or not, as gateways do.

Every body the library reads itself (the token answer, a 401 before its resend, an error
body searched for Criteo's envelope) is read whole, whatever its framing: a reader that
took a fresh iterator per read once stopped a chunked body after its first piece.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import requests_criteo
from requests_criteo import CriteoAPIError, CriteoAuth, TokenCache

from .conftest import SECRET

ACCESS_TOKEN = "tok-" + "a" * 40
TOKEN = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 900}
ERROR = {
    "errors": [
        {
            "code": "insufficient-advertisers-permissions",
            "title": "No rights on this advertiser",
            "traceId": "abc-123",
        }
    ]
}
EXPIRED = {"errors": [{"code": "authorization-token-expired", "title": "x" * 200}]}


class ChunkedHandler(BaseHTTPRequestHandler):
    """Answers every request in chunks of 16 bytes; gzipped under /gzip/."""

    protocol_version = "HTTP/1.1"
    calls: dict[str, int]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.removeprefix("/gzip")
        self.calls[path] = self.calls.get(path, 0) + 1
        if path == "/oauth2/token":
            self.chunked(200, TOKEN)
        elif path == "/2025-10/error":
            self.chunked(403, ERROR)
        elif path == "/2025-10/me" and self.calls[path] == 1:
            self.chunked(401, EXPIRED)
        else:
            self.chunked(200, {"data": "ok"})

    def chunked(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        if self.path.startswith("/gzip/"):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        for start in range(0, len(body), 16):
            piece = body[start : start + 16]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    """Says nothing when a client closes a connection it is done with."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(params=["", "/gzip"], ids=["identity", "gzip"])
def api(request: pytest.FixtureRequest) -> Iterator[str]:
    """The chunked server's root URL on 127.0.0.1 (its bodies gzipped or not)."""
    handler = type("Handler", (ChunkedHandler,), {"calls": {}})
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{request.param}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def chunked_auth(api: str) -> CriteoAuth:
    origin = api.removesuffix("/gzip")
    return CriteoAuth(
        "client-chunked",
        SECRET,
        token_url=f"{api}/oauth2/token",
        api_origins=[origin],
        cache=TokenCache(),
    )


def test_a_chunked_token_answer_gives_its_token(api: str) -> None:
    assert chunked_auth(api).token().header == "Bearer " + ACCESS_TOKEN


def test_raise_for_status_reads_criteos_error_from_a_streamed_chunked_body(api: str) -> None:
    with (
        requests.get(f"{api}/2025-10/error", stream=True, timeout=5) as r,
        pytest.raises(CriteoAPIError) as info,
    ):
        requests_criteo.raise_for_status(r)
    assert [e.code for e in info.value.errors] == ["insufficient-advertisers-permissions"]
    assert "abc-123" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
def test_a_chunked_401_is_kept_whole_in_history_and_the_call_resent(api: str, stream: bool) -> None:
    with requests.Session() as s:
        r = s.get(f"{api}/2025-10/me", auth=chunked_auth(api), stream=stream, timeout=5)
        assert r.status_code == 200
        assert r.history[0].status_code == 401
        assert r.history[0].json() == EXPIRED
