"""Transport adapters for the benchmarks: answers in memory, without any socket.

What lives here:

* :class:`MemoryAdapter`, an ``HTTPAdapter`` whose ``send`` builds the response itself
  (a ``urllib3.HTTPResponse`` over ``BytesIO``, turned into a ``requests.Response`` by
  ``HTTPAdapter.build_response`` as for a real answer). The token path gets a token
  JSON; any other path gets a small JSON body when the request carries a ``Bearer``
  header, else a 401. What a client costs on top of requests is then all that is timed.
* :class:`MemoryCriteoAdapter`, ``CriteoAdapter`` over that transport: its
  ``super().send`` lands in :class:`MemoryAdapter`.
* :class:`GateAdapter`, requests' ``HTTPAdapter`` with a gate: once armed with a
  ``threading.Barrier``, each thread's next API request waits there after its client
  has put a token on it, so that N requests carrying the same token leave together;
  :class:`GatedCriteoAdapter` is ``CriteoAdapter`` over it.
* :class:`FormCredentialsAdapter`, for requests-auth against FakeCriteo: requests-auth
  sends the client's credentials as HTTP Basic, Criteo's token endpoint (and FakeCriteo)
  reads them from the form, so this adapter, mounted on requests-auth's token session,
  copies them into the form.
* Names and credentials shared by the benchmarks.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

from requests_criteo import CriteoAdapter
from requests_criteo.testing import FakeCriteo

from .server import API_BODY, UNAUTHORIZED_BODY

__all__ = [
    "API_PATH",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TOKEN_PATH",
    "FormCredentialsAdapter",
    "GateAdapter",
    "GatedCriteoAdapter",
    "MemoryAdapter",
    "MemoryCriteoAdapter",
    "access_token",
    "token_body",
]

#: The credentials every benchmark client uses (FakeCriteo's, so that it accepts them).
CLIENT_ID = FakeCriteo.CLIENT_ID
CLIENT_SECRET = FakeCriteo.CLIENT_SECRET
TOKEN_PATH = "/oauth2/token"
API_PATH = "/2025-10/retail-media/me"
_JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}

# The types of HTTPAdapter.send's parameters, as typeshed gives them.
Timeout = float | tuple[float, float] | tuple[float, None] | None
Cert = bytes | str | tuple[bytes | str, bytes | str] | None
_counter = itertools.count(1)


def access_token(n: int) -> str:
    """A token of about the size of Criteo's JWTs (some 700 characters), numbered *n*."""
    return f"bench.{n:08d}." + "A" * 690


def token_body(token: str) -> bytes:
    """A client-credentials token answer as Criteo sends it (15 minutes)."""
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": 900}
    return json.dumps(answer, separators=(",", ":")).encode()


class MemoryAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that answers in memory: no socket, no pool, no thread."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Cert = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Answer *request* at once, as a server would."""
        url = request.url or ""
        if url.split("?", 1)[0].endswith(TOKEN_PATH):
            status, reason = 200, "OK"
            body = token_body(access_token(next(_counter)))
        else:
            header = request.headers.get("Authorization")
            if header is not None and header.startswith("Bearer "):
                status, reason, body = 200, "OK", API_BODY
            else:
                status, reason, body = 401, "Unauthorized", UNAUTHORIZED_BODY
        raw = HTTPResponse(
            body=io.BytesIO(body),
            headers={**_JSON_HEADERS, "Content-Length": str(len(body))},
            status=status,
            reason=reason,
            version=11,
            version_string="HTTP/1.1",
            preload_content=False,
            decode_content=True,
            request_method=request.method,
            request_url=url,
        )
        return self.build_response(request, raw)


class MemoryCriteoAdapter(CriteoAdapter, MemoryAdapter):
    """``CriteoAdapter`` whose transport is :class:`MemoryAdapter`."""


class GateAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that can hold each thread's next API request at a barrier."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._gate: threading.Barrier | None = None
        self._generation = 0
        self._passed = threading.local()
        super().__init__(*args, **kwargs)

    def arm(self, gate: threading.Barrier | None) -> None:
        """Hold the next API request of each thread at *gate* (``None``: no more gate)."""
        self._gate = gate
        self._generation += 1

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Cert = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Wait at the gate once per thread and arming (never for a token request)."""
        gate = self._gate
        if (
            gate is not None
            and getattr(self._passed, "generation", 0) != self._generation
            and TOKEN_PATH not in (request.url or "")
        ):
            self._passed.generation = self._generation
            gate.wait()
        return super().send(request, stream, timeout, verify, cert, proxies)


class GatedCriteoAdapter(CriteoAdapter, GateAdapter):
    """``CriteoAdapter`` over :class:`GateAdapter`: the token is on the request at the gate."""


class FormCredentialsAdapter(HTTPAdapter):
    """Puts the client's credentials in the token request's form, where Criteo reads them.

    requests-auth's ``OAuth2ClientCredentials`` authenticates with HTTP Basic only; a
    user of requests-auth against Criteo must get the credentials into the form somehow.
    This is that somehow: mounted on the session given to requests-auth for its token
    requests.
    """

    def __init__(self, client_id: str, client_secret: str, **kwargs: Any) -> None:
        self._form = urlencode({"client_id": client_id, "client_secret": client_secret})
        super().__init__(**kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Cert = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Append the credentials to the form body, then send as usual."""
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        text = f"{body}&{self._form}" if body else self._form
        request.body = text
        request.headers["Content-Length"] = str(len(text.encode()))
        return super().send(request, stream, timeout, verify, cert, proxies)
