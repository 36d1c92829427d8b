"""requests-criteo for httpx: the same tokens for ``httpx.Client`` and ``httpx.AsyncClient``.

What lives here: :class:`CriteoHTTPXAuth`, an ``httpx.Auth`` with a sync and an async
flow, and the async transport of its token requests. What does not: the credentials,
cache, stores and the rules of the token request, which it shares with
:class:`~requests_criteo.CriteoAuth` (:mod:`._credentials`, :mod:`._token_request`);
carrying those out from a task (:mod:`._async`). Needs the ``httpx`` extra:
``pip install "requests-criteo[httpx]"``.

One process, one token: a ``CriteoHTTPXAuth`` and a ``CriteoAuth`` of the same credentials
share the process-wide cache (and any store), so a program that uses requests in some
threads and httpx in others, sync or async, makes one token request per token lifetime.

From async code the token request goes through httpx, in the event loop; the store's lock
and its reads and writes run in a worker thread, so the loop never blocks on them. From
sync code it goes through requests, as :class:`~requests_criteo.CriteoAuth`'s does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any, cast

try:
    import httpx
except ImportError as exc:  # pragma: no cover - the extra is installed in every test env
    raise ImportError(
        'requests_criteo.httpx needs httpx: pip install "requests-criteo[httpx]"'
    ) from exc

from .__version__ import __version__
from ._answer import MAX_TOKEN_BODY, length_refusal, size_refusal
from ._cache import Token
from ._credentials import Credentials, Options, from_env
from ._httpx_transport import AsyncCriteoTransport, CriteoTransport, body_kept
from ._text import Answer
from ._token_request import (
    FORM_HEADERS,
    Failed,
    Reply,
    Send,
    cut_off,
    no_answer,
    not_connected,
    past_deadline,
)
from ._transport import RequestsTransport
from .envelope import MAX_ENVELOPE_BODY, Envelope, bearer_of, json_of, read_envelope, summary
from .exceptions import CriteoAPIError, CriteoAuthError, TokenRequestError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = [
    "AsyncCriteoTransport",
    "CriteoHTTPXAuth",
    "CriteoTransport",
    "envelope",
    "raise_for_status",
]

log = logging.getLogger("requests_criteo")

#: The User-Agent of the token requests sent through httpx.
USER_AGENT = f"python-httpx/{httpx.__version__} requests-criteo/{__version__}"


class CriteoHTTPXAuth(httpx.Auth):
    """An ``httpx.Auth`` that authenticates requests to Criteo's origins, sync or async.

    ::

        auth = CriteoHTTPXAuth(client_id, client_secret)
        with httpx.Client(auth=auth) as client:
            client.get("https://api.criteo.com/2025-10/retail-media/me")
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get("https://api.criteo.com/2025-10/retail-media/me")

    It takes the options of :class:`~requests_criteo.CriteoAuth` (``token_url``,
    ``api_origins``, ``store``, ``refresh_token``, ``account``...). A request to another
    origin is sent untouched; one to a Criteo origin gets the token, and on a 401 is sent
    once more with a new one (the token is dropped once however many requests carried
    it), unless its body cannot be sent again (a generator, a stream): that 401 is
    returned, with a warning. A 403 is returned as it is: a new token would not help.
    Redirects are httpx's: it keeps the header on a hop within one origin and drops it
    elsewhere, and a hop into Criteo from another site gets no token.
    """

    def __init__(self, client_id: str, client_secret: str, **options: Unpack[Options]) -> None:
        self.credentials = Credentials(
            client_id, client_secret, transport=RequestsTransport(), **options
        )
        self._token_requests = _TokenRequests(self.credentials)

    @classmethod
    def from_env(cls, **options: Unpack[Options]) -> CriteoHTTPXAuth:
        """An auth for ``CRITEO_CLIENT_ID`` and ``CRITEO_CLIENT_SECRET``, as
        :meth:`CriteoAuth.from_env <requests_criteo.CriteoAuth.from_env>` reads them."""
        client_id, client_secret, found = from_env(dict(options))
        return cls(client_id, client_secret, **found)

    def __repr__(self) -> str:
        client_id, token_url = self.credentials.client_id, self.credentials.token_url
        return f"CriteoHTTPXAuth(client_id={client_id!r}, token_url={token_url!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.credentials.scope.allows(str(request.url)):
            yield request
            return
        token = self.credentials.token()
        response = yield _with_token(request, token)
        if self._resend(request, response):
            self.credentials.drop(token)
            yield _with_token(request, self.credentials.token())

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self.credentials.scope.allows(str(request.url)):
            yield request
            return
        send = self._token_requests
        token = await self.credentials.token_in_loop(send)
        response = yield _with_token(request, token)
        if self._resend(request, response):
            # The drop may touch the store (its lock, a file, Redis): off the loop.
            await asyncio.get_running_loop().run_in_executor(None, self.credentials.drop, token)
            yield _with_token(request, await self.credentials.token_in_loop(send))

    def _resend(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Whether to send *request* again with a new token: a 401 from Criteo (the last
        hop, and every hop before it, on its origins), and a body that can be sent again."""
        if response.status_code != 401:
            return False
        chain = [str(hop.url) for hop in response.history]
        if not self.credentials.scope.allows(str(response.url), chain):
            return False  # another site's 401 says nothing of Criteo's token
        return _replayable(request)


def _with_token(request: httpx.Request, token: Token) -> httpx.Request:
    request.headers["Authorization"] = token.header
    return request


def _replayable(request: httpx.Request) -> bool:
    """Whether *request*'s body can be sent again (logging why not)."""
    if not body_kept(request):
        where = str(request.url.copy_with(query=None))  # a query may carry ids
        log.warning(
            "Criteo answered 401 to %s %s, whose body is a stream that cannot be sent "
            "again; returning the 401 (pass bytes to get a resend)",
            request.method,
            where,
        )
        return False
    log.debug("401 from %s: refreshing the token and resending once", request.url.host)
    return True


class _TokenRequests:
    """The attempts of one credential's token requests, sent by httpx from a task.

    The same rules as requests' (:class:`~requests_criteo._token.TokenEndpoint`): no
    redirect followed, no ``.netrc``, the attempt's timeouts and the whole request's
    deadline, a capped read of an answer asked for uncompressed.
    """

    def __init__(self, credentials: Credentials) -> None:
        self.url = credentials.token_url
        self.deadline = credentials.deadline

    async def __call__(self, step: Send) -> Reply | Failed | CriteoAuthError:
        # The TLS context, built once per CA bundle and off the loop: it reads the bundle.
        tls = await asyncio.get_running_loop().run_in_executor(None, _tls)
        try:
            return await asyncio.wait_for(self._attempt(step, tls), step.remaining)
        except asyncio.TimeoutError:
            return past_deadline(self.deadline)

    async def _attempt(self, step: Send, tls: ssl.SSLContext) -> Reply | Failed | CriteoAuthError:
        connect, read = step.timeout
        headers = {**FORM_HEADERS, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        timeout = httpx.Timeout(read, connect=connect, pool=connect)
        try:
            # auth: a no-op, explicit, so that no httpx version falls back to .netrc.
            async with (
                httpx.AsyncClient(auth=httpx.Auth(), timeout=timeout, verify=tls) as client,
                client.stream("POST", self.url, content=step.body.encode(), headers=headers) as r,
            ):
                return await _read(r)
        except httpx.ConnectTimeout:
            return not_connected(f"within {connect:g} s")
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            return not_connected(f"({type(exc).__name__})")
        except httpx.ReadTimeout:
            return no_answer(read)
        except httpx.TransportError as exc:
            return cut_off(type(exc).__name__)
        except httpx.HTTPError as exc:
            return TokenRequestError(f"the token request failed ({type(exc).__name__})")


def _tls() -> ssl.SSLContext:
    """The TLS context of an async token request: the CAs that requests' token request
    trusts (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when set, say behind a corporate
    proxy), else httpx's default (certifi's, or ``SSL_CERT_FILE``)."""
    return _tls_for(os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))


@functools.lru_cache(maxsize=4)
def _tls_for(bundle: str | None) -> ssl.SSLContext:
    """A context trusting *bundle* (a file or a folder), built once per bundle."""
    if not bundle:
        return httpx.create_ssl_context()
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


async def _read(response: httpx.Response) -> Reply | CriteoAuthError:
    """*response*'s status, headers and body, the body read only up to the cap."""
    refused = length_refusal(response.headers.get("Content-Length", "0"))
    if refused is not None:
        return refused
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_TOKEN_BODY:
            break
    refused = size_refusal(bytes(body))
    if refused is not None:
        return refused
    return Reply(response.status_code, response.headers, Answer(bytes(body)))


# -- Criteo's error envelope, from an httpx response --------------------------------------


def envelope(response: httpx.Response) -> Envelope:
    """Criteo's ``errors`` and ``warnings`` in *response*, whatever its status, as
    :func:`requests_criteo.envelope` reads them from a requests response.

    A streamed body not read yet gives an empty envelope: the body is the caller's.
    """
    return read_envelope(_json(response, may_read=False), [_bearer(response)])


def raise_for_status(response: httpx.Response) -> httpx.Response:
    """Raise :class:`~requests_criteo.CriteoAPIError` for a 4xx or 5xx; return a 2xx/3xx.

    :func:`requests_criteo.raise_for_status` for httpx: the same one-line message and
    parsed ``errors`` and ``warnings``; the exception's ``response`` is the
    ``httpx.Response``. A sync stream not read yet is read (capped at 1 MiB); an async
    one cannot be read here, so ``await response.aread()`` first to get Criteo's details.
    """
    if response.status_code < 400:
        return response
    bearer = _bearer(response)
    found = read_envelope(_json(response, may_read=True), [bearer])
    request = _request_of(response)
    where = (request.method, str(request.url)) if request is not None else None
    status = f"{response.status_code} {response.reason_phrase}"
    error = CriteoAPIError(
        summary(status, where, found, bearer),
        errors=found.errors,
        warnings=found.warnings,
        status_code=response.status_code,
    )
    # Set here, not passed: requests' HTTPError looks for response.request, which an
    # httpx.Response built without a request raises for (not an AttributeError).
    error.response, error.request = cast(Any, response), cast(Any, request)
    raise error


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built by hand, with no request
        return None


def _bearer(response: httpx.Response) -> str | None:
    request = _request_of(response)
    return bearer_of(request.headers.get("Authorization") if request is not None else None)


def _json(response: httpx.Response, *, may_read: bool) -> object:
    """The JSON of *response*'s body, of at most MAX_ENVELOPE_BODY bytes, or ``None``."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        if not may_read:
            return None
        content = _read_capped(response)
    return json_of(content, response.encoding)


def _read_capped(response: httpx.Response) -> bytes:
    """A sync stream's body, up to just over MAX_ENVELOPE_BODY; nothing of an async one."""
    body = bytearray()
    try:
        with contextlib.closing(response):
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ENVELOPE_BODY:
                    break
    except RuntimeError:  # an async stream: it is read with ``await response.aread()``
        return b""
    return bytes(body)
