"""Token requests of 64 threads over several token lifetimes, and a 401 storm.

Both run against :class:`requests_criteo.testing.FakeCriteo` (a real HTTP/1.1 server on
loopback, in this process) and count what reached its token endpoint.

**Lifetimes.** The fake issues tokens that live ``lifetime`` seconds (2 by default) on real
time. 64 threads share one client and make requests back to back for a fixed duration;
the client starts without a token. requests-criteo replaces a token ``margin`` seconds
before it expires (min(60 s, lifetime / 2): 1 s here), so it must make exactly one token
request per ``lifetime - margin`` seconds started: ``ceil(duration / (lifetime - margin))``.
Each peer is set up the way its documentation suggests for automatic renewal, with the
same margin where it has one:

* requests-auth: ``auth=OAuth2ClientCredentials(..., early_expiry=margin)`` renews by itself;
* Authlib: ``OAuth2Session(token_endpoint=, grant_type="client_credentials", leeway=margin)``
  fetches a new token when its token is expired (its first one by ``fetch_token()``);
* requests-oauthlib: no automatic renewal for client credentials, so the common pattern:
  ``fetch_token()`` first, then catch ``TokenExpiredError`` in the thread, ``fetch_token()``
  and retry (it has no margin: the token is used to its last second).

**401 storm.** 64 threads each make a first request with a valid token; the fake then
revokes every token, and a barrier releases the threads together for one more request. A
gate in the transport (:class:`~benchmarks.transports.GateAdapter`) holds each of these
requests, after the client has put its token on it, until all 64 are ready: 64 requests
carrying the revoked token reach the API at once (without it, threads that start late
would already carry the new token, and the count of resends would be luck).
requests-criteo must make one token request and 64 resends (each response has the 401 in
its ``history``) and return 64 answers 200. What each peer does is shown as it is.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import requests

from requests_criteo import CriteoAuth
from requests_criteo._cache import margin_for
from requests_criteo.testing import FakeCriteo

from .candidates import CRITEO, PEER
from .transports import (
    API_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    FormCredentialsAdapter,
    GateAdapter,
    GatedCriteoAdapter,
)

S = TypeVar("S", bound=requests.Session)

__all__ = [
    "Client",
    "LifetimeResult",
    "RenewalResult",
    "StormResult",
    "call_until",
    "expected_token_requests",
    "lifetimes",
    "storm",
    "tokens_seen",
]


@dataclass
class Client:
    """One client shared by the threads."""

    name: str
    kind: str  # CRITEO or PEER
    how: str  # how it renews, in a few words
    margin: float  # seconds before expiry at which it renews (0: none)
    call: Callable[[], requests.Response]
    prime: Callable[[], None] | None = None  # the first token, where the library needs it
    sessions: list[requests.Session] = field(default_factory=list)

    def arm(self, gate: threading.Barrier | None) -> None:
        """Arm (or disarm) the gate of every API transport of the client."""
        for session in self.sessions:
            for adapter in session.adapters.values():
                if isinstance(adapter, GateAdapter):
                    adapter.arm(gate)

    def close(self) -> None:
        """Close the client's sessions."""
        for session in self.sessions:
            session.close()


def _pooled(session: S, threads: int) -> S:
    session.mount("http://", GateAdapter(pool_connections=4, pool_maxsize=threads))
    return session


CLIENT_NAMES = (
    "criteo-adapter",
    "criteo-auth",
    "requests-oauthlib",
    "authlib-session",
    "requests-auth",
)


def build_client(name: str, fake: FakeCriteo, threads: int) -> Client:
    """The client called *name* (one of :data:`CLIENT_NAMES`) for *fake*."""
    url = fake.url + API_PATH
    token_url = fake.token_url
    margin = margin_for(fake.lifetime)
    if name == "criteo-adapter":
        # What requests_criteo.session() builds, with the gated transport under the adapter.
        session = requests.Session()
        adapter = GatedCriteoAdapter(
            CriteoAuth(CLIENT_ID, CLIENT_SECRET, token_url=token_url), pool_maxsize=threads
        )
        session.mount(fake.url + "/", adapter)
        return Client(
            name,
            CRITEO,
            "CriteoAdapter on a shared session",
            margin,
            lambda: session.get(url),
            None,
            [session],
        )
    if name == "criteo-auth":
        auth = CriteoAuth(CLIENT_ID, CLIENT_SECRET, token_url=token_url)
        plain = _pooled(requests.Session(), threads)
        return Client(
            name,
            CRITEO,
            "auth=CriteoAuth on a shared session",
            margin,
            lambda: plain.get(url, auth=auth),
            None,
            [plain],
        )
    if name == "requests-oauthlib":
        from oauthlib.oauth2 import BackendApplicationClient, TokenExpiredError
        from requests_oauthlib import OAuth2Session

        oauth = _pooled(
            OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID)), threads
        )

        def fetch() -> None:
            oauth.fetch_token(
                token_url,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                include_client_id=True,
            )

        def call_oauthlib() -> requests.Response:
            try:
                return oauth.get(url)
            except TokenExpiredError:
                fetch()
                return oauth.get(url)

        return Client(
            name,
            PEER,
            "fetch_token(); on TokenExpiredError fetch_token() and retry",
            0.0,
            call_oauthlib,
            fetch,
            [oauth],
        )
    if name == "authlib-session":
        from authlib.integrations.requests_client import (  # type: ignore[import-untyped]
            OAuth2Session as AuthlibSession,
        )

        leeway = int(margin)  # Authlib takes whole seconds
        authlib = _pooled(
            AuthlibSession(
                CLIENT_ID,
                CLIENT_SECRET,
                token_endpoint=token_url,
                grant_type="client_credentials",
                token_endpoint_auth_method="client_secret_post",
                leeway=leeway,
            ),
            threads,
        )
        return Client(
            name,
            PEER,
            "OAuth2Session(grant_type=client_credentials, leeway=margin), fetch_token()",
            float(leeway),
            lambda: authlib.get(url),
            lambda: authlib.fetch_token(),
            [authlib],
        )
    if name == "requests-auth":
        from requests_auth import OAuth2ClientCredentials

        token_session = requests.Session()
        token_session.mount("http://", FormCredentialsAdapter(CLIENT_ID, CLIENT_SECRET))
        auth_ra = OAuth2ClientCredentials(
            token_url, CLIENT_ID, CLIENT_SECRET, session=token_session, early_expiry=margin
        )
        ra = _pooled(requests.Session(), threads)
        return Client(
            name,
            PEER,
            "auth=OAuth2ClientCredentials(early_expiry=margin)",
            margin,
            lambda: ra.get(url, auth=auth_ra),
            None,
            [ra, token_session],
        )
    raise ValueError(f"unknown client {name!r}")


@dataclass
class RenewalResult:
    """What a run over several token lifetimes did (threads of one process, or processes)."""

    duration: float
    lifetime: float
    margin: float
    token_requests: int
    expected: int  # one per (lifetime - margin) started, for the client's margin
    tokens_used: int  # distinct tokens the API saw
    requests: int
    ok: int
    statuses: dict[str, int]
    exceptions: dict[str, int]

    @property
    def errors(self) -> int:
        """Calls that did not end in a 200."""
        return self.requests - self.ok

    @property
    def lifetimes(self) -> float:
        """Token lifetimes elapsed during the run."""
        return self.duration / self.lifetime

    @property
    def per_lifetime(self) -> float:
        """Token requests per lifetime elapsed."""
        return self.token_requests / self.lifetimes

    @property
    def exact(self) -> bool:
        """One token request per renewal period started, and every call answered 200."""
        return self.token_requests == self.expected and self.errors == 0

    def data(self) -> dict[str, Any]:
        """The fields and the figures derived from them, for the JSON report."""
        return {
            **asdict(self),
            "errors": self.errors,
            "lifetimes": self.lifetimes,
            "per_lifetime": self.per_lifetime,
        }


@dataclass
class LifetimeResult(RenewalResult):
    """What one client did over the lifetimes run."""

    name: str
    kind: str
    how: str


def expected_token_requests(duration: float, lifetime: float, margin: float) -> int:
    """One token request per renewal period (``lifetime - margin``) started in *duration*."""
    return math.ceil(duration / (lifetime - margin))


def tokens_seen(fake: FakeCriteo) -> int:
    """How many distinct tokens *fake*'s API received."""
    return len({r.bearer for r in fake.api_calls() if r.bearer})


def call_until(
    call: Callable[[], requests.Response], end: float
) -> tuple[Counter[str], Counter[str]]:
    """Call *call* back to back until ``time.monotonic()`` reaches *end*.

    :returns: the statuses answered and the exceptions raised (by type name), counted.
    """
    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    while time.monotonic() < end:
        try:
            response = call()
        except Exception as exc:  # a client's failure is a result, not a crash
            exceptions[type(exc).__name__] += 1
        else:
            statuses[str(response.status_code)] += 1
            response.close()
    return statuses, exceptions


def _run_threads(
    call: Callable[[], requests.Response], threads: int, duration: float
) -> tuple[Counter[str], Counter[str], int]:
    """Call *call* from *threads* threads for *duration* seconds; statuses, errors, count."""
    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work() -> None:
        barrier.wait()
        mine, errors = call_until(call, deadline[0])
        with lock:
            statuses.update(mine)
            exceptions.update(errors)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.monotonic() + duration
    barrier.wait()
    for worker in workers:
        worker.join(duration + 60)
    total = sum(statuses.values()) + sum(exceptions.values())
    return statuses, exceptions, total


def lifetimes(name: str, threads: int, lifetime: float, duration: float) -> LifetimeResult:
    """Run client *name* with *threads* threads for *duration* seconds of *lifetime* tokens."""
    with FakeCriteo(lifetime=lifetime) as fake:
        client = build_client(name, fake, threads)
        try:
            if client.prime is not None:
                client.prime()
            statuses, exceptions, total = _run_threads(client.call, threads, duration)
        finally:
            client.close()
        tokens_used = tokens_seen(fake)
        token_requests = fake.token_requests
    return LifetimeResult(
        name=name,
        kind=client.kind,
        how=client.how,
        duration=duration,
        lifetime=lifetime,
        margin=client.margin,
        token_requests=token_requests,
        expected=expected_token_requests(duration, lifetime, client.margin),
        tokens_used=tokens_used,
        requests=total,
        ok=statuses.get("200", 0),
        statuses=dict(statuses),
        exceptions=dict(exceptions),
    )


@dataclass
class StormResult:
    """What one client did when every token was revoked under 64 threads."""

    name: str
    kind: str
    threads: int
    token_requests: int
    resends: int
    statuses: dict[str, int]
    exceptions: dict[str, int]


def storm(name: str, threads: int) -> StormResult:
    """Revoke every token while *threads* threads hold one, then release them together."""
    with FakeCriteo() as fake:
        client = build_client(name, fake, threads)
        statuses: Counter[str] = Counter()
        exceptions: Counter[str] = Counter()
        resends = [0]
        lock = threading.Lock()
        warmed = threading.Barrier(threads + 1)
        go = threading.Barrier(threads + 1)

        def work() -> None:
            try:
                client.call().close()  # a token, and a pooled connection
            finally:
                warmed.wait()
            go.wait()
            try:
                response = client.call()
            except Exception as exc:
                with lock:
                    exceptions[type(exc).__name__] += 1
                return
            with lock:
                statuses[str(response.status_code)] += 1
                if any(h.status_code == 401 for h in response.history):
                    resends[0] += 1
            response.close()

        try:
            if client.prime is not None:
                client.prime()
            client.call().close()  # one token for all, before the threads
            workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
            for worker in workers:
                worker.start()
            warmed.wait(120)
            fake.revoke()
            before = fake.token_requests
            client.arm(threading.Barrier(threads, timeout=120))
            go.wait(120)
            for worker in workers:
                worker.join(120)
            token_requests = fake.token_requests - before
        finally:
            client.close()
    return StormResult(
        name=name,
        kind=client.kind,
        threads=threads,
        token_requests=token_requests,
        resends=resends[0],
        statuses=dict(statuses),
        exceptions=dict(exceptions),
    )
