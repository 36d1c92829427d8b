"""What sits under requests' ``HTTPAdapter`` in the benchmarks: memory, a gate, a form.

What lives here: the names and credentials every run shares; :class:`MemoryPoolManager`,
which answers in memory where urllib3 would open a socket; :class:`Gate`, which holds
each thread's next API request until all threads are ready (the 401 storm);
:class:`FormCredentialsAdapter`, which lets requests-auth talk to a Criteo-like token
endpoint. What does not: any client (:mod:`benchmarks.clients`) or server
(:mod:`benchmarks.server`).

Both replace an adapter's ``poolmanager``, the attribute requests'
``HTTPAdapter.send`` asks for a connection pool. Everything above it (requests'
``Session``, every auth, ``CriteoAdapter``, ``HTTPAdapter.send`` itself) runs as it would
against a real server, whichever library built the adapter: no library's internals are
touched.
"""

from __future__ import annotations

import io
import threading
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

from requests_criteo.testing import FakeCriteo

__all__ = [
    "API_BODY",
    "API_PATH",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TOKEN_PATH",
    "FormCredentialsAdapter",
    "Gate",
    "MemoryPoolManager",
    "token_body",
]

#: FakeCriteo's credentials, so that it accepts every client of the benchmarks.
CLIENT_ID = FakeCriteo.CLIENT_ID
CLIENT_SECRET = FakeCriteo.CLIENT_SECRET
TOKEN_PATH = "/oauth2/token"
API_PATH = "/2025-10/retail-media/me"
#: A small API answer, like Criteo's ``/me``.
API_BODY = b'{"data":{"id":"fake-client-id","type":"Application","attributes":{}}}'
#: Criteo's 401 envelope.
UNAUTHORIZED_BODY = (
    b'{"errors":[{"type":"authorization","code":"authorization-token-invalid",'
    b'"title":"The authorization header is invalid"}]}'
)


def token_body(name: str) -> bytes:
    """A client-credentials answer whose token is about the size of Criteo's (700 chars)."""
    token = f"bench.{name}." + "A" * 690
    return b'{"access_token":"%s","token_type":"Bearer","expires_in":900}' % token.encode()


class MemoryPoolManager:
    """Stands for an ``HTTPAdapter``'s ``poolmanager``, and for its pools: no socket.

    ``urlopen`` answers at once, as Criteo would: a token on the token path; on any other
    path a small JSON body when the request carries a ``Bearer`` header, else a 401.
    (``HTTPAdapter.cert_verify`` sets TLS attributes on the pool.)
    """

    cert_reqs: str | None = None
    ca_certs: str | None = None
    ca_cert_dir: str | None = None

    def connection_from_host(self, *args: Any, **kwargs: Any) -> MemoryPoolManager:
        return self

    def clear(self) -> None:
        """Nothing to close."""

    def urlopen(self, method: str, url: str, headers: Any = None, **kwargs: Any) -> HTTPResponse:
        if url.split("?", 1)[0].endswith(TOKEN_PATH):
            status, body = 200, token_body("memory")
        elif str((headers or {}).get("Authorization", "")).startswith("Bearer "):
            status, body = 200, API_BODY
        else:
            status, body = 401, UNAUTHORIZED_BODY
        return HTTPResponse(
            body=io.BytesIO(body),
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
            status=status,
            reason="OK" if status == 200 else "Unauthorized",
            version=11,
            version_string="HTTP/1.1",
            preload_content=False,
            decode_content=False,
            request_method=method,
            request_url=url,
        )


class Gate:
    """Once armed with a barrier, holds each thread's next API request there (the storm).

    :meth:`install` puts it under an adapter, so that a request waits after every library
    has put its token on it (``HTTPAdapter.send`` calls ``urlopen`` last): N requests
    carrying the same token leave together.
    """

    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.generation = 0
        self.passed = threading.local()

    def arm(self, barrier: threading.Barrier | None) -> None:
        """Hold the next API request of each thread at *barrier* (``None``: no gate)."""
        self.barrier = barrier
        self.generation += 1

    def install(self, adapter: HTTPAdapter) -> None:
        """Gate what *adapter* sends (plain http: TLS settings would not reach the pool)."""
        adapter.poolmanager = _Gated(adapter.poolmanager, self)

    def wait(self, url: str) -> None:
        """Wait at the barrier once per thread and arming; never for a token request."""
        barrier = self.barrier
        if (
            barrier is not None
            and getattr(self.passed, "generation", 0) != self.generation
            and TOKEN_PATH not in url
        ):
            self.passed.generation = self.generation
            barrier.wait()


class _Gated:
    """A pool manager whose pools wait at the gate, or one of those pools."""

    def __init__(self, inner: Any, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate

    def connection_from_host(self, *args: Any, **kwargs: Any) -> _Gated:
        return _Gated(self.inner.connection_from_host(*args, **kwargs), self.gate)

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.gate.wait(url)
        return self.inner.urlopen(method, url, *args, **kwargs)

    def clear(self) -> None:
        self.inner.clear()


class FormCredentialsAdapter(HTTPAdapter):
    """Copies the client's credentials into the token request's form, where Criteo reads them.

    requests-auth's ``OAuth2ClientCredentials`` sends them as HTTP Basic only; a user of
    requests-auth against Criteo has to get them into the form somehow, and this is one
    way: mounted on the session requests-auth makes its token requests with.
    """

    def __init__(self, client_id: str, client_secret: str, **kwargs: Any) -> None:
        self.form = urlencode({"client_id": client_id, "client_secret": client_secret})
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        """Append the credentials to the form body, then send as usual."""
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        request.body = f"{body}&{self.form}" if body else self.form
        request.headers["Content-Length"] = str(len(request.body.encode()))
        return super().send(request, *args, **kwargs)
