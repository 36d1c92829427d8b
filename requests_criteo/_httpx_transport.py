"""Criteo's rate limits for httpx: transports that pace calls and retry 429s.

What lives here: :class:`CriteoTransport` and :class:`AsyncCriteoTransport` (exported by
:mod:`requests_criteo.httpx`), which wrap an httpx transport. What does not: the retry
rules (:class:`~requests_criteo.CriteoRetry`, the same policy as the requests adapter's)
or the pacing (:class:`~requests_criteo.RateLimiter` and ``RedisRateLimiter``).

The rules are the adapter's: a 429 is retried whatever the method (Criteo did not execute
the call), 502/503/504 for idempotent methods, after the wait Criteo asks for
(``x-ratelimit-reset`` or ``Retry-After``) or else a backoff; a limiter paces the calls
and is paused by a 429. Connection errors are left to the wrapped transport
(``httpx.HTTPTransport(retries=...)``). Only requests to the auth's Criteo origins are
paced and retried; a body that cannot be sent again (a stream) is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Protocol

import httpx
from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse

from ._credentials import Credentials
from ._waits import pause, pause_in_loop
from .ratelimit import RateLimiter, budget_of, is_reporting
from .retry import CriteoRetry

__all__ = ["AsyncCriteoTransport", "CriteoTransport", "body_kept"]

log = logging.getLogger("requests_criteo")


def body_kept(request: httpx.Request) -> bool:
    """Whether *request*'s body can be sent again: bytes httpx kept, not a stream it sent."""
    try:
        request.content  # noqa: B018 - raises for a body that was streamed, not kept
    except httpx.RequestNotRead:
        return False
    return True


class _HasCredentials(Protocol):
    """What the transports need of an auth: its credentials (a ``CriteoHTTPXAuth``)."""

    credentials: Credentials


class _Pacing:
    """What both transports share: whose calls they handle, their limiters, their policy."""

    def __init__(
        self,
        credentials: Credentials,
        retry: CriteoRetry | None,
        rate_limit: float | RateLimiter | None,
        reporting_rate_limit: float | RateLimiter | None,
    ) -> None:
        self.credentials = credentials
        self.retry = retry if retry is not None else CriteoRetry()
        app = (credentials.token_url, credentials.client_id, credentials.account)
        self.limiter = budget_of(rate_limit, "rate_limit", *app)
        self.reporting_limiter = budget_of(reporting_rate_limit, "reporting_rate_limit", *app)

    def covers(self, request: httpx.Request) -> bool:
        return self.credentials.scope.covers(str(request.url))

    def limiter_for(self, request: httpx.Request) -> RateLimiter | None:
        if self.reporting_limiter is not None and is_reporting(request.url.path):
            return self.reporting_limiter
        return self.limiter

    def next_try(
        self, policy: CriteoRetry, request: httpx.Request, response: httpx.Response
    ) -> tuple[CriteoRetry, float, str] | None:
        """The policy and wait (and its reason) before sending *request* again; ``None``
        when *response* is to be returned: not retried, retries spent, or a streamed body."""
        status, headers = response.status_code, response.headers
        if not policy.is_retry(request.method, status, "Retry-After" in headers):
            return None
        if not body_kept(request):
            return None
        answer = HTTPResponse(headers=dict(headers), status=status)
        try:
            after = policy.increment(request.method, str(request.url), response=answer)
        except MaxRetryError:
            return None
        asked = policy.get_retry_after(answer)
        if asked:
            log.info("Criteo asked to wait: retrying in %.2f s (HTTP %s)", asked, status)
            return after, asked, f"Criteo asked to wait (HTTP {status})"
        wait = after.get_backoff_time()
        log.info("retrying in %.2f s", wait)
        return after, wait, f"retrying after HTTP {status}"

    @staticmethod
    def tell_429(policy: CriteoRetry, response: httpx.Response) -> None:
        """The policy's ``on_429`` told of a 429 about to be retried, as ``CriteoRetry.sleep``
        tells it before its wait (it may be a caller's function: it may block)."""
        if policy.on_429 is not None:
            policy.on_429(HTTPResponse(headers=dict(response.headers), status=429))

    def until(self, policy: CriteoRetry, headers: Mapping[str, str]) -> float | None:
        """The Unix time a 429 named (``x-ratelimit-reset`` or ``Retry-After``), if any."""
        return policy.reset_at(HTTPResponse(headers=dict(headers), status=429))


class CriteoTransport(httpx.BaseTransport):
    """An httpx transport that paces calls to Criteo and retries its 429s, for ``httpx.Client``.

    ::

        auth = CriteoHTTPXAuth(client_id, client_secret)
        client = httpx.Client(auth=auth, transport=CriteoTransport(auth, rate_limit=250))

    :param auth: the :class:`~requests_criteo.httpx.CriteoHTTPXAuth` of the client: its
        Criteo origins are the calls handled, its app (and account) names the budgets.
    :param transport: the transport that sends; ``httpx.HTTPTransport()`` by default.
    :param retry: the policy; :class:`~requests_criteo.CriteoRetry` by default.
    :param rate_limit: calls a minute, or a :class:`~requests_criteo.RateLimiter` (as the
        requests adapter's ``rate_limit``); off by default.
    :param reporting_rate_limit: a separate budget for reporting paths.
    """

    def __init__(
        self,
        auth: _HasCredentials,
        transport: httpx.BaseTransport | None = None,
        *,
        retry: CriteoRetry | None = None,
        rate_limit: float | RateLimiter | None = None,
        reporting_rate_limit: float | RateLimiter | None = None,
    ) -> None:
        self.pacing = _Pacing(auth.credentials, retry, rate_limit, reporting_rate_limit)
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pacing = self.pacing
        if not pacing.covers(request):
            return self.transport.handle_request(request)
        limiter, policy = pacing.limiter_for(request), pacing.retry
        while True:
            if limiter is not None:
                limiter.acquire()
            response = self.transport.handle_request(request)
            if limiter is not None and response.status_code == 429:
                limiter.rate_limited(pacing.until(policy, response.headers))
            retry = pacing.next_try(policy, request, response)
            if retry is None:
                return response
            if response.status_code == 429:
                pacing.tell_429(policy, response)
            _drain(response)
            policy, wait, why = retry
            pause(wait, why, policy.sleep_func)

    def close(self) -> None:
        self.transport.close()


class AsyncCriteoTransport(httpx.AsyncBaseTransport):
    """:class:`CriteoTransport` for ``httpx.AsyncClient``: it never blocks the event loop.

    A limiter's turn is taken off the loop (a ``RedisRateLimiter`` asks Redis for it) and
    every wait is ``asyncio.sleep``. The parameters are :class:`CriteoTransport`'s, with an
    ``httpx.AsyncHTTPTransport()`` by default.
    """

    def __init__(
        self,
        auth: _HasCredentials,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        retry: CriteoRetry | None = None,
        rate_limit: float | RateLimiter | None = None,
        reporting_rate_limit: float | RateLimiter | None = None,
    ) -> None:
        self.pacing = _Pacing(auth.credentials, retry, rate_limit, reporting_rate_limit)
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pacing = self.pacing
        if not pacing.covers(request):
            return await self.transport.handle_async_request(request)
        limiter, policy = pacing.limiter_for(request), pacing.retry
        loop = asyncio.get_running_loop()
        while True:
            if limiter is not None:
                await limiter.acquire_in_loop()
            response = await self.transport.handle_async_request(request)
            if limiter is not None and response.status_code == 429:
                until = pacing.until(policy, response.headers)
                await loop.run_in_executor(None, limiter.rate_limited, until)  # may ask Redis
            retry = pacing.next_try(policy, request, response)
            if retry is None:
                return response
            if response.status_code == 429 and policy.on_429 is not None:
                await loop.run_in_executor(None, pacing.tell_429, policy, response)
            await _drain_in_loop(response)
            policy, wait, why = retry
            await pause_in_loop(wait, why, policy.sleep_func)

    async def aclose(self) -> None:
        await self.transport.aclose()


#: The most of a retried answer's body read before it is dropped (the rest is not read).
_DRAIN = 64 * 1024


def _drain(response: httpx.Response) -> None:
    """Read a little of an answer about to be retried, so its connection may be reused."""
    with contextlib.closing(response):
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > _DRAIN:
                break


async def _drain_in_loop(response: httpx.Response) -> None:
    read = 0
    try:
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read > _DRAIN:
                break
    finally:
        await response.aclose()
