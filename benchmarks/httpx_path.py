"""The httpx part of the hot path: bare httpx, ``CriteoHTTPXAuth`` and Authlib's httpx
clients, sync and async, each built the way its documentation suggests.

What lives here: the in-memory transport (an ``httpx.MockTransport`` answering as
:class:`~benchmarks.transport.MemoryPoolManager` does), the clients of each world
(:data:`SYNC`, :data:`ASYNC`, described in :data:`DESCRIPTIONS`) and :func:`measure_world`,
which times one world's clients with :func:`benchmarks.hotpath.measure`. What does not:
the timing itself (:mod:`benchmarks.hotpath`), the exact counts
(:mod:`benchmarks.httpx_counts`), the targets and printing (:mod:`benchmarks.__main__`).

Each world, sync and async, has its own floor: a bare ``httpx.Client`` (or
``httpx.AsyncClient``) with a fixed ``Authorization: Bearer`` header on the client, which
never renews anything, and ``floor-again``, the same client built twice, for the run's
noise. Every client carries a token of the same size (Criteo's are about 700 characters).

**Where the tokens come from.** Authlib's clients fetch theirs through their own transport,
so in memory the mock answers it. ``CriteoHTTPXAuth`` takes no transport for its token
requests (from sync code they go through a private requests session, from async code
through a private ``httpx.AsyncClient``), so it fetches its token from the loopback server
(:mod:`benchmarks.server`) at its first call, during the untimed warm-up; the clients of a
run share it through the process-wide cache. The token lives 900 s and is renewed 60 s
before it expires, so no run of the benchmark fetches another: only the hot path is timed.

**Async.** All the async clients of a run share one event loop; :meth:`AsyncTimed.run`
times its calls inside a coroutine, so that starting the loop is not timed.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from requests_criteo.httpx import CriteoHTTPXAuth

from .hotpath import Timings, measure, timed_calls
from .transport import (
    API_BODY,
    API_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_PATH,
    UNAUTHORIZED_BODY,
    token_body,
)

__all__ = [
    "ASYNC",
    "AUTHLIB",
    "DESCRIPTIONS",
    "SYNC",
    "WORLDS",
    "AsyncTimed",
    "SyncTimed",
    "measure_world",
    "memory_transport",
]

#: The clients of each world; ``auth=`` is ``CriteoHTTPXAuth`` on the client.
SYNC = ("floor", "floor-again", "auth=", "authlib-client")
ASYNC = ("floor", "floor-again", "auth=", "authlib-async")
#: The clients of each world, by world.
WORLDS = {"sync": SYNC, "async": ASYNC}
#: Authlib's client in each world.
AUTHLIB = {"sync": "authlib-client", "async": "authlib-async"}

DESCRIPTIONS = {
    "sync": {
        "floor": "bare `httpx.Client`, a fixed `Authorization` header on the client",
        "floor-again": "the floor again, built twice: the run's noise",
        "auth=": "`httpx.Client(auth=CriteoHTTPXAuth(...))`",
        "authlib-client": "Authlib's `OAuth2Client(grant_type='client_credentials', ...)`",
    },
    "async": {
        "floor": "bare `httpx.AsyncClient`, a fixed `Authorization` header on the client",
        "floor-again": "the floor again, built twice: the run's noise",
        "auth=": "`httpx.AsyncClient(auth=CriteoHTTPXAuth(...))`",
        "authlib-async": "Authlib's `AsyncOAuth2Client(grant_type='client_credentials', ...)`",
    },
}

_JSON = {"Content-Type": "application/json"}
#: The leeway Authlib is given: requests-criteo's renewal margin for 900 s tokens.
_LEEWAY = 60


def _answer(request: httpx.Request) -> httpx.Response:
    """What Criteo would answer: a token, the API's answer to a bearer, else a 401."""
    if request.url.path == TOKEN_PATH:
        return httpx.Response(200, content=token_body("memory"), headers=_JSON)
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return httpx.Response(200, content=API_BODY, headers=_JSON)
    return httpx.Response(401, content=UNAUTHORIZED_BODY, headers=_JSON)


def memory_transport() -> httpx.MockTransport:
    """A transport that answers at once, sync or async, as Criteo would: no socket."""
    return httpx.MockTransport(_answer)


@dataclass
class SyncTimed:
    """One ``httpx.Client``, timed by :func:`benchmarks.hotpath.measure`."""

    name: str
    client: httpx.Client
    url: str
    prime: Callable[[], object] | None = None

    def run(self, calls: int) -> int:
        """Make *calls* calls, each a 200; the nanoseconds they took."""
        client, url = self.client, self.url
        return timed_calls(self.name, lambda: client.get(url), calls)

    def close(self) -> None:
        self.client.close()


@dataclass
class AsyncTimed:
    """One ``httpx.AsyncClient`` on *loop*, timed by :func:`benchmarks.hotpath.measure`."""

    name: str
    client: httpx.AsyncClient
    url: str
    loop: asyncio.AbstractEventLoop
    prime_in_loop: Callable[[], Awaitable[object]] | None = None

    @property
    def prime(self) -> Callable[[], object] | None:
        prime = self.prime_in_loop
        return None if prime is None else lambda: self.loop.run_until_complete(prime())

    def run(self, calls: int) -> int:
        """Make *calls* calls, each a 200; the nanoseconds they took, in the loop."""
        return self.loop.run_until_complete(self._calls(calls))

    async def _calls(self, calls: int) -> int:
        client, url = self.client, self.url
        start = time.perf_counter_ns()
        for _ in range(calls):
            status = (await client.get(url)).status_code
            if status != 200:
                raise RuntimeError(f"{self.name} answered {status}")
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())


def _fixed_header() -> dict[str, str]:
    """The floor's header: a token the size of the others', never renewed."""
    token = json.loads(token_body("memory"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _authlib() -> tuple[Any, Any]:
    """Authlib's httpx clients, ``OAuth2Client`` and ``AsyncOAuth2Client``.

    Authlib 1.9 warns on import that its httpx integration is moving to the httpx2
    package; without httpx2, as here, its clients are httpx's, the ones compared. Its
    warning module puts an "always" filter first when imported, hence the order.
    """
    from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
            AsyncOAuth2Client,
            OAuth2Client,
        )
    return OAuth2Client, AsyncOAuth2Client


def _options(memory: bool) -> dict[str, Any]:
    """The keyword arguments of every client of a run: its transport, no environment."""
    options: dict[str, Any] = {"trust_env": False}
    if memory:
        options["transport"] = memory_transport()
    return options


def _criteo_auth(origin: str, token_url: str) -> CriteoHTTPXAuth:
    return CriteoHTTPXAuth(CLIENT_ID, CLIENT_SECRET, token_url=token_url, api_origins=[origin])


def _authlib_options(origin: str) -> dict[str, Any]:
    """Authlib's client credentials, as its documentation shows, in the form Criteo reads."""
    return {
        "token_endpoint": origin + TOKEN_PATH,
        "grant_type": "client_credentials",
        "token_endpoint_auth_method": "client_secret_post",
        "leeway": _LEEWAY,
    }


def build_sync(name: str, origin: str, token_url: str, memory: bool) -> SyncTimed:
    """The sync client *name* (one of :data:`SYNC`) for the API at *origin*."""
    url, options = origin + API_PATH, _options(memory)
    if name in ("floor", "floor-again"):
        return SyncTimed(name, httpx.Client(headers=_fixed_header(), **options), url)
    if name == "auth=":
        auth = _criteo_auth(origin, token_url)
        return SyncTimed(name, httpx.Client(auth=auth, **options), url)
    if name == "authlib-client":
        client_class, _ = _authlib()
        client = client_class(CLIENT_ID, CLIENT_SECRET, **_authlib_options(origin), **options)
        return SyncTimed(name, client, url, prime=client.fetch_token)
    raise ValueError(f"unknown client {name!r}")


def build_async(
    name: str, origin: str, token_url: str, memory: bool, loop: asyncio.AbstractEventLoop
) -> AsyncTimed:
    """The async client *name* (one of :data:`ASYNC`) for the API at *origin*, on *loop*."""
    url, options = origin + API_PATH, _options(memory)
    if name in ("floor", "floor-again"):
        return AsyncTimed(name, httpx.AsyncClient(headers=_fixed_header(), **options), url, loop)
    if name == "auth=":
        auth = _criteo_auth(origin, token_url)
        return AsyncTimed(name, httpx.AsyncClient(auth=auth, **options), url, loop)
    if name == "authlib-async":
        _, client_class = _authlib()
        client = client_class(CLIENT_ID, CLIENT_SECRET, **_authlib_options(origin), **options)
        return AsyncTimed(name, client, url, loop, prime_in_loop=client.fetch_token)
    raise ValueError(f"unknown client {name!r}")


def measure_world(
    world: str,
    origin: str,
    token_url: str,
    *,
    memory: bool,
    per_round: int,
    rounds: int,
    warmup: int,
) -> Timings:
    """Time the clients of *world* (``"sync"`` or ``"async"``) against the API at *origin*.

    :param token_url: where ``CriteoHTTPXAuth`` gets its token (the loopback server's).
    :param memory: answer in memory instead of over sockets.
    """
    if world == "sync":
        clients: Sequence[SyncTimed | AsyncTimed] = [
            build_sync(n, origin, token_url, memory) for n in SYNC
        ]
        return measure(clients, per_round, rounds, warmup)
    loop = asyncio.new_event_loop()
    try:
        clients = [build_async(n, origin, token_url, memory, loop) for n in ASYNC]
        return measure(clients, per_round, rounds, warmup)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
