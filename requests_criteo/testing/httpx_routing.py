"""Criteo's real URLs answered by a local fake, for httpx clients: what CriteoRouting adds.

What lives here: :class:`HTTPXRouting`, which :class:`~requests_criteo.testing.CriteoRouting`
enters along with its own patch when httpx is installed: while it is on, every request an
``httpx.Client`` or ``httpx.AsyncClient`` sends to ``https://api.criteo.com`` goes to the
fake's loopback URL instead. What does not: the requests side (:mod:`.routing`), the fake.

Why the transports' ``handle_request`` and ``handle_async_request``: every httpx request
ends in one, whichever client, auth or mount sent it, and the caller's own transports
(pacing, retries) still run above them. The forwarded request goes over plain http to the
loopback port through a transport of the routing's own, so no TLS and no proxy is
involved; the answer is read whole and handed back as the answer of the original request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["HTTPXRouting"]


class HTTPXRouting:
    """While on, httpx requests for which *routed* is true go to *target* + path and query.

    :param target: the loopback origin of a fake.
    :param routed: whether a URL is to be routed (Criteo's https origin).
    :param count: called once per request routed.
    """

    def __init__(self, target: str, routed: Callable[[str], bool], count: Callable[[], None]):
        self.target = httpx.URL(target)
        self.routed = routed
        self.count = count
        self._sync = httpx.HTTPTransport.handle_request
        self._async = httpx.AsyncHTTPTransport.handle_async_request
        self._patches: tuple[object, object] = (None, None)
        self._live = False

    def start(self) -> None:
        self._sync = httpx.HTTPTransport.handle_request
        self._async = httpx.AsyncHTTPTransport.handle_async_request
        self._patches = (self._make_sync(), self._make_async())
        self._live = True
        # Plain functions, bound by the classes (setattr: mypy forbids assigning methods).
        setattr(httpx.HTTPTransport, "handle_request", self._patches[0])  # noqa: B010
        setattr(httpx.AsyncHTTPTransport, "handle_async_request", self._patches[1])  # noqa: B010

    def stop(self) -> None:
        """Put httpx back; a patch made over ours since (a mock) keeps its place, and ours,
        which it calls, passes everything through from now on."""
        self._live = False
        if httpx.HTTPTransport.handle_request is self._patches[0]:
            setattr(httpx.HTTPTransport, "handle_request", self._sync)  # noqa: B010
        if httpx.AsyncHTTPTransport.handle_async_request is self._patches[1]:
            setattr(httpx.AsyncHTTPTransport, "handle_async_request", self._async)  # noqa: B010

    def _routes(self, request: httpx.Request) -> bool:
        return self._live and self.routed(str(request.url))

    def _forwarded(self, request: httpx.Request) -> httpx.Request:
        self.count()
        url = self.target.copy_with(raw_path=request.url.raw_path)
        headers = httpx.Headers(request.headers)
        headers["Host"] = request.url.netloc.decode("ascii")
        return httpx.Request(request.method, url, headers=headers, stream=request.stream)

    def _make_sync(self) -> Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response]:
        original = self._sync

        def handle_request(
            transport: httpx.HTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            if not self._routes(request):
                return original(transport, request)
            with httpx.HTTPTransport() as plain:
                answer = plain.handle_request(self._forwarded(request))
                try:
                    raw = b"".join(answer.iter_raw())
                finally:
                    answer.close()
            return _handed_back(answer, raw)

        return handle_request

    def _make_async(self) -> Callable[..., Any]:
        original = self._async

        async def handle_async_request(
            transport: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            if not self._routes(request):
                return await original(transport, request)
            # A transport per request: an async pool belongs to the event loop that made it.
            async with httpx.AsyncHTTPTransport() as plain:
                answer = await plain.handle_async_request(self._forwarded(request))
                try:
                    raw = b"".join([chunk async for chunk in answer.aiter_raw()])
                finally:
                    await answer.aclose()
            return _handed_back(answer, raw)

        return handle_async_request


def _handed_back(answer: httpx.Response, raw: bytes) -> httpx.Response:
    """*answer*, its body *raw* (as sent: still encoded), as a response the client reads."""
    return httpx.Response(
        answer.status_code, headers=answer.headers.raw, content=raw, extensions=answer.extensions
    )
