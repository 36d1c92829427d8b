"""The clients compared on the hot path, each built with a valid token before timing.

Every candidate is a callable making one ``GET`` to the API through a ``requests.Session``
and returning the status code. The same transport is under all of them: the in-memory
:class:`~benchmarks.transports.MemoryAdapter` (pure client cost) or requests' own
``HTTPAdapter`` to the loopback server (:mod:`benchmarks.server`).

* ``floor``: bare requests with a fixed ``Authorization: Bearer`` header on the session;
* ``floor-again``: the same, a second time (a control: its distance to ``floor`` is the
  resolution of the run);
* ``criteo-adapter``: ``CriteoAdapter`` mounted on the API origin;
* ``criteo-auth``: ``auth=CriteoAuth(...)`` on each call;
* ``requests-oauthlib``: ``OAuth2Session(client=BackendApplicationClient(...), token=...)``;
* ``authlib-session``: Authlib's requests ``OAuth2Session`` with a token, a token endpoint
  and the client-credentials grant (so it renews an expired token itself);
* ``authlib-auth``: Authlib's ``OAuth2Auth(token)`` with ``auth=``;
* ``requests-auth``: ``auth=OAuth2ClientCredentials(...)``, whose first token comes from
  the warm-up.

requests-criteo runs with its defaults; its token requests go to the same transport
(``token_session=`` a session with that transport mounted, in memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from requests_criteo import CriteoAdapter, CriteoAuth
from requests_criteo.adapters import CriteoSession, SessionAuth

from .transports import (
    API_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_PATH,
    MemoryAdapter,
    MemoryCriteoAdapter,
)

__all__ = ["MEMORY_BASE", "Candidate", "build_candidates"]

#: The origin of the in-memory runs: Criteo's own, so requests-criteo's defaults apply.
MEMORY_BASE = "https://api.criteo.com"

FLOOR = "floor"
CONTROL = "control"
CRITEO = "criteo"
PEER = "peer"


@dataclass
class Candidate:
    """One client on the hot path."""

    name: str
    kind: str  # FLOOR, CONTROL, CRITEO or PEER
    description: str
    call: Callable[[], int]
    sessions: list[requests.Session] = field(default_factory=list)

    def close(self) -> None:
        """Close the candidate's sessions."""
        for session in self.sessions:
            session.close()


def _transport(memory: bool) -> HTTPAdapter:
    return MemoryAdapter() if memory else HTTPAdapter()


def _mounted(session: requests.Session, base: str, memory: bool) -> requests.Session:
    session.mount(base + "/", _transport(memory))
    return session


def _criteo_adapter(auth: CriteoAuth, memory: bool) -> CriteoAdapter:
    return MemoryCriteoAdapter(auth) if memory else CriteoAdapter(auth)


def _token(base: str, memory: bool) -> dict[str, Any]:
    """A valid token, fetched once from the transport, in the shape the peers keep."""
    with _mounted(requests.Session(), base, memory) as session:
        response = session.post(
            base + TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
    answer["expires_at"] = int(time.time()) + int(answer["expires_in"])
    return answer


def build_candidates(base: str, memory: bool, trust_env: bool = False) -> list[Candidate]:
    """The candidates for the origin *base* (``MEMORY_BASE`` in memory, the server's URL).

    :param trust_env: requests' ``Session.trust_env`` for every session; with ``True``
        (requests' default) each call looks up proxies in the environment and, when no
        ``auth=`` is given, reads ``~/.netrc``: costs that fall on some candidates only.
    """
    url = base + API_PATH
    token_url = base + TOKEN_PATH
    token = _token(base, memory)
    candidates: list[Candidate] = []

    def floor_candidate(name: str, kind: str, description: str) -> Candidate:
        floor = _mounted(requests.Session(), base, memory)
        floor.headers["Authorization"] = "Bearer " + token["access_token"]
        return Candidate(name, kind, description, lambda: floor.get(url).status_code, [floor])

    candidates.append(floor_candidate(FLOOR, FLOOR, "bare requests, fixed Authorization header"))
    candidates.append(
        floor_candidate("floor-again", CONTROL, "the floor again: the run's resolution")
    )

    def criteo_auth() -> CriteoAuth:
        token_session = _mounted(requests.Session(), base, memory) if memory else None
        return CriteoAuth(
            CLIENT_ID, CLIENT_SECRET, token_url=token_url, token_session=token_session
        )

    adapter_session = requests.Session()
    adapter_session.mount(base + "/", _criteo_adapter(criteo_auth(), memory))
    candidates.append(
        Candidate(
            "criteo-adapter",
            CRITEO,
            "requests-criteo: CriteoAdapter mounted",
            lambda: adapter_session.get(url).status_code,
            [adapter_session],
        )
    )

    # What requests_criteo.session() builds: a CriteoSession with the adapter mounted and a
    # SessionAuth, which spares requests its per-call URL-credential and .netrc lookups.
    criteo_session = CriteoSession()
    session_auth = criteo_auth()
    criteo_session.mount(base + "/", _criteo_adapter(session_auth, memory))
    criteo_session.auth = SessionAuth(session_auth)
    candidates.append(
        Candidate(
            "criteo-session",
            CRITEO,
            "requests-criteo: requests_criteo.session() (adapter + SessionAuth)",
            lambda: criteo_session.get(url).status_code,
            [criteo_session],
        )
    )

    auth_session = _mounted(requests.Session(), base, memory)
    auth = criteo_auth()
    candidates.append(
        Candidate(
            "criteo-auth",
            CRITEO,
            "requests-criteo: auth=CriteoAuth",
            lambda: auth_session.get(url, auth=auth).status_code,
            [auth_session],
        )
    )

    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session

    oauthlib_session = _mounted(
        OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID), token=dict(token)),
        base,
        memory,
    )
    candidates.append(
        Candidate(
            "requests-oauthlib",
            PEER,
            "requests-oauthlib: OAuth2Session(client=BackendApplicationClient, token=)",
            lambda: oauthlib_session.get(url).status_code,
            [oauthlib_session],
        )
    )

    from authlib.integrations.requests_client import (  # type: ignore[import-untyped]
        OAuth2Auth,
    )
    from authlib.integrations.requests_client import OAuth2Session as AuthlibSession

    authlib_session = _mounted(
        AuthlibSession(
            CLIENT_ID,
            CLIENT_SECRET,
            token_endpoint=token_url,
            grant_type="client_credentials",
            token_endpoint_auth_method="client_secret_post",
            token=dict(token),
        ),
        base,
        memory,
    )
    candidates.append(
        Candidate(
            "authlib-session",
            PEER,
            "Authlib: requests_client.OAuth2Session(token_endpoint=, grant_type=, token=)",
            lambda: authlib_session.get(url).status_code,
            [authlib_session],
        )
    )

    authlib_auth = OAuth2Auth(dict(token))
    authlib_auth_session = _mounted(requests.Session(), base, memory)
    candidates.append(
        Candidate(
            "authlib-auth",
            PEER,
            "Authlib: auth=OAuth2Auth(token)",
            lambda: authlib_auth_session.get(url, auth=authlib_auth).status_code,
            [authlib_auth_session],
        )
    )

    from requests_auth import OAuth2ClientCredentials

    ra_token_session = _mounted(requests.Session(), base, memory)
    ra_auth = OAuth2ClientCredentials(token_url, CLIENT_ID, CLIENT_SECRET, session=ra_token_session)
    ra_session = _mounted(requests.Session(), base, memory)
    candidates.append(
        Candidate(
            "requests-auth",
            PEER,
            "requests-auth: auth=OAuth2ClientCredentials(session=)",
            lambda: ra_session.get(url, auth=ra_auth).status_code,
            [ra_session, ra_token_session],
        )
    )
    for candidate in candidates:
        for session in candidate.sessions:
            session.trust_env = trust_env
    return candidates
