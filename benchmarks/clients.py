"""The clients compared, each built the way its documentation suggests, all over one transport.

What lives here: :func:`build`, which makes one :class:`Client` by name (:data:`HOT_PATH`,
described in :data:`DESCRIPTIONS`) for an API origin served in memory, by the loopback
server or by :class:`~requests_criteo.testing.FakeCriteo`. What does not: timing and
counting (:mod:`benchmarks.hotpath`, :mod:`benchmarks.counts`).

``floor`` is bare requests with a static header: it never renews, and is what any token
library adds to; ``floor-again`` is the same client built twice, to measure the noise.
The peers that renew tokens are given requests-criteo's renewal margin where they take
one. requests-oauthlib has no renewal for client credentials: its caller catches
``TokenExpiredError``, fetches a token and tries again, as its documentation shows.
Authlib's ``OAuth2Auth`` never renews a token nor resends a 401: shown, never a target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

import requests_criteo

from .hotpath import timed_calls
from .transport import (
    API_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_PATH,
    FormCredentialsAdapter,
    MemoryPoolManager,
)

__all__ = ["CRITEO_WAYS", "HOT_PATH", "MEMORY_ORIGIN", "RENEWING", "Client", "build"]

#: The origin of the in-memory runs: Criteo's own, so requests-criteo's defaults apply.
MEMORY_ORIGIN = "https://api.criteo.com"
CRITEO_WAYS = ("auth=", "session()", "mount()")
#: The peers that renew tokens: the targets compare requests-criteo with these.
RENEWING = ("requests-oauthlib", "requests-auth", "authlib-session")
HOT_PATH = ("floor", "floor-again", *CRITEO_WAYS, *RENEWING, "authlib-auth")

DESCRIPTIONS = {
    "floor": "bare requests, a static `Authorization` header on the session",
    "floor-again": "the floor again, built twice: the run's noise",
    "auth=": "`requests.get(..., auth=CriteoAuth(...))`",
    "session()": "`requests_criteo.session(...)`",
    "mount()": "`requests_criteo.mount(session, CriteoAuth(...))`",
    "requests-oauthlib": "`OAuth2Session(client=BackendApplicationClient(...))`, "
    "`fetch_token()` again on `TokenExpiredError`",
    "requests-auth": "`auth=OAuth2ClientCredentials(...)`",
    "authlib-session": "Authlib's `OAuth2Session(grant_type='client_credentials', ...)`",
    "authlib-auth": "Authlib's `auth=OAuth2Auth(token)`: never renews, never resends",
}


@dataclass
class Client:
    """One client: ``call()`` makes one ``GET`` to the API; ``prime()`` its first token."""

    name: str
    call: Callable[[], requests.Response]
    sessions: list[requests.Session]
    prime: Callable[[], object] | None = None
    #: Seconds before expiry at which it renews (0: it uses a token to its last second).
    margin: float = 0.0
    adapters: list[HTTPAdapter] = field(default_factory=list)

    def run(self, calls: int) -> int:
        """Make *calls* calls, each a 200; the nanoseconds they took."""
        return timed_calls(self.name, self.call, calls)

    def close(self) -> None:
        """Close the client's sessions."""
        for session in self.sessions:
            session.close()


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=pool_size))
    return session


def _static_token(token_url: str, memory: bool) -> dict[str, Any]:
    """A token fetched once, in the shape the peers keep: for clients that never renew."""
    session = _finish(requests.Session(), memory)
    with session:
        response = session.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        response.raise_for_status()
        token: dict[str, Any] = response.json()
    token["expires_at"] = int(time.time()) + int(token["expires_in"])
    return token


def _finish(session: requests.Session, memory: bool) -> requests.Session:
    """No environment lookups; in memory, every adapter of *session* answers in memory."""
    # requests reads proxies from the environment on every call, and ~/.netrc on every
    # call without auth=: costs that would fall on some clients only.
    session.trust_env = False
    if memory:
        for adapter in session.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                adapter.poolmanager = MemoryPoolManager()
    return session


def build(
    name: str, origin: str, *, memory: bool = False, pool_size: int = 10, margin: float = 60.0
) -> Client:
    """The client *name* (one of :data:`HOT_PATH`) for the API at *origin*.

    :param memory: answer in memory instead of over sockets.
    :param pool_size: connections kept per host (one per thread of the callers).
    :param margin: seconds before expiry at which the peers that can be told renew.
    """
    url = origin + API_PATH
    token_url = origin + TOKEN_PATH
    client = _build(name, url, token_url, memory, pool_size, margin)
    for session in client.sessions:
        _finish(session, memory)
    client.adapters = list(
        {
            id(a): a
            for s in client.sessions
            for a in s.adapters.values()
            if isinstance(a, HTTPAdapter)
        }.values()
    )
    return client


def _build(
    name: str, url: str, token_url: str, memory: bool, pool_size: int, margin: float
) -> Client:
    if name in ("floor", "floor-again"):
        floor = _session(pool_size)
        floor.headers["Authorization"] = (
            "Bearer " + _static_token(token_url, memory)["access_token"]
        )
        return Client(name, lambda: floor.get(url), [floor])

    if name in CRITEO_WAYS:
        # requests-criteo's token requests go through a private session of its own; in
        # memory, it is given one that answers in memory.
        token_session = _finish(requests.Session(), True) if memory else None
        options: dict[str, Any] = {"token_url": token_url, "token_session": token_session}
        if name == "session()":
            session = requests_criteo.session(
                CLIENT_ID, CLIENT_SECRET, pool_maxsize=pool_size, **options
            )
            return Client(name, lambda: session.get(url), [session], margin=margin)
        auth = requests_criteo.CriteoAuth(CLIENT_ID, CLIENT_SECRET, **options)
        plain = _session(pool_size)
        if name == "mount()":
            requests_criteo.mount(plain, auth, pool_maxsize=pool_size)
            return Client(name, lambda: plain.get(url), [plain], margin=margin)
        return Client(name, lambda: plain.get(url, auth=auth), [plain], margin=margin)

    if name == "requests-oauthlib":
        from oauthlib.oauth2 import BackendApplicationClient, TokenExpiredError
        from requests_oauthlib import OAuth2Session

        oauth = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID))
        oauth.mount("http://", HTTPAdapter(pool_maxsize=pool_size))

        def fetch() -> None:
            oauth.fetch_token(
                token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, include_client_id=True
            )

        def call_oauthlib() -> requests.Response:
            try:
                return oauth.get(url)
            except TokenExpiredError:
                fetch()
                return oauth.get(url)

        return Client(name, call_oauthlib, [oauth], prime=fetch)

    if name == "requests-auth":
        from requests_auth import OAuth2ClientCredentials

        token_session = requests.Session()
        token_session.mount("http://", FormCredentialsAdapter(CLIENT_ID, CLIENT_SECRET))
        token_session.mount("https://", FormCredentialsAdapter(CLIENT_ID, CLIENT_SECRET))
        ra_auth = OAuth2ClientCredentials(
            token_url, CLIENT_ID, CLIENT_SECRET, session=token_session, early_expiry=margin
        )
        ra = _session(pool_size)
        return Client(name, lambda: ra.get(url, auth=ra_auth), [ra, token_session], margin=margin)

    from authlib.integrations.requests_client import (  # type: ignore[import-untyped]
        OAuth2Auth,
    )
    from authlib.integrations.requests_client import OAuth2Session as AuthlibSession

    if name == "authlib-session":
        leeway = int(margin)  # whole seconds only
        authlib = AuthlibSession(
            CLIENT_ID,
            CLIENT_SECRET,
            token_endpoint=token_url,
            grant_type="client_credentials",
            token_endpoint_auth_method="client_secret_post",
            leeway=leeway,
        )
        authlib.mount("http://", HTTPAdapter(pool_maxsize=pool_size))
        return Client(
            name, lambda: authlib.get(url), [authlib], prime=authlib.fetch_token, margin=leeway
        )

    if name == "authlib-auth":
        bare = OAuth2Auth(_static_token(token_url, memory))
        plain = _session(pool_size)
        return Client(name, lambda: plain.get(url, auth=bare), [plain])
    raise ValueError(f"unknown client {name!r}")
