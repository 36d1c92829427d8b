"""The fake Criteo: :class:`FakeCriteo`, the object a test starts, drives and inspects.

What lives here: its knobs (clients, token lifetime and clock, faults, canned answers, rate
limits, consent), its counters and its log of requests. What does not: how it answers, which
:mod:`~requests_criteo.testing.api` and :mod:`~requests_criteo.testing.oauth` decide, and its
rate budgets, which :mod:`~requests_criteo.testing.rates` counts and records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final

from ._wire import _split_path
from .api import _canned, _CannedAnswers, _error_envelope, _respond
from .consent import _check_code_request, _read_consent_url, _redirect_with
from .oauth import TOKEN_PATH, _TokenFaults
from .rates import _Budgets, _check_speed, _RateWindows, _SpedUpClock
from .seen import SeenRequest
from .server import _LoopbackService
from .tokens import _Authority


class FakeCriteo(_LoopbackService, _Budgets):
    """A local fake of Criteo's token endpoint and API, served over real HTTP/1.1.

    The server listens on ``127.0.0.1`` on a free port, answers on daemon threads, keeps
    connections alive and writes nothing to stderr. Everything it receives is kept in
    :attr:`requests` and counted (:attr:`token_requests`, :attr:`tokens_issued`,
    :attr:`api_requests`, and for the consent grants :attr:`codes_issued`,
    :attr:`code_exchanges`, :attr:`refreshes`, :attr:`refresh_token_reuses`).

    * ``POST /oauth2/token`` (form-encoded ``client_id``, ``client_secret``, ``grant_type``)
      first authenticates the client (``invalid_client`` otherwise), then answers a JWT-looking
      bearer token, ``expires_in`` = :attr:`lifetime`, for:

      - ``grant_type=client_credentials``, with ``"refresh_token": null``;
      - ``grant_type=authorization_code`` with ``code`` and ``redirect_uri`` (and
        ``code_verifier`` when the code has a PKCE challenge), for a code from
        :meth:`issue_code` or :meth:`consent_redirect`, with a new refresh token. A code is
        single-use: its client's first attempt spends it, successful or not;
      - ``grant_type=refresh_token`` with ``refresh_token``: the refresh token is rotated, the
        answer carries a new one and the old one is refused from then on (a reuse is counted
        in :attr:`refresh_token_reuses`). :meth:`revoke_consent` ends a consent.

      Errors use the OAuth2 shape ``{"error": ..., "error_description": ...}``: a bad, spent,
      foreign or revoked code or refresh token, a different ``redirect_uri`` or a wrong
      ``code_verifier`` give ``400 invalid_grant``.
    * ``/{version}/...`` (``YYYY-MM``, ``preview``, ``experimental``), any method: ``401`` with
      Criteo's error envelope unless the request carries a valid ``Authorization: Bearer``
      token; then ``/{version}/retail-media/me`` and ``/{version}/marketing-solutions/me``
      describe the client and every other path echoes the request (method, path, body length
      and SHA-256).
    * Any other path: ``404`` with an envelope, unless :meth:`set_response` registered it.

    Token expiry and the rate limits are decided by :attr:`timer` (``time.monotonic`` by
    default); inject a fake clock to expire tokens without sleeping. ``FakeCriteo(speed=10)``
    runs it ten times as fast as real time, so that a minute of a :attr:`rate_limit` passes in
    six seconds; what the fake tells a client stays in real time (``x-ratelimit-reset``, and a
    token lives its ``expires_in`` real seconds). :meth:`arrivals` says when each call came.

    Example::

        import requests
        from requests_criteo.testing import FakeCriteo

        with FakeCriteo() as fake:
            token = requests.post(
                fake.token_url,
                data={
                    "client_id": FakeCriteo.CLIENT_ID,
                    "client_secret": FakeCriteo.CLIENT_SECRET,
                    "grant_type": "client_credentials",
                },
            ).json()["access_token"]
            me = requests.get(
                f"{fake.url}/2025-10/retail-media/me",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert me.json()["data"]["id"] == FakeCriteo.CLIENT_ID

            fake.inject_token_fault(503, body='{"error": "unavailable"}', times=2)
            fake.set_response("/2025-10/retail-media/accounts", status=429,
                              headers={"x-ratelimit-reset": "1628249355"})

    The authorization-code grant, the consent page played by :meth:`consent_redirect`::

        callback = fake.consent_redirect(
            "https://consent.criteo.com/request?response_type=code"
            f"&client_id={FakeCriteo.CLIENT_ID}&redirect_uri=https://app.example/cb"
            f"&state=xyz&code_challenge={challenge}&code_challenge_method=S256"
        )  # "https://app.example/cb?code=...&state=xyz"
        code = parse_qs(urlsplit(callback).query)["code"][0]
        client = {"client_id": FakeCriteo.CLIENT_ID, "client_secret": FakeCriteo.CLIENT_SECRET}
        tokens = requests.post(fake.token_url, data={
            **client, "grant_type": "authorization_code", "code": code,
            "redirect_uri": "https://app.example/cb", "code_verifier": verifier,
        }).json()
        tokens = requests.post(fake.token_url, data={
            **client, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        }).json()  # a new access token and a new refresh token; the old one is dead
        assert fake.refresh_token_reuses == 0
    """

    CLIENT_ID: Final = "fake-client-id"
    """The client id registered when no ``clients`` mapping is given."""
    CLIENT_SECRET: Final = "fake+client/secret=="  # noqa: S105 - a fake, public on purpose
    """Its secret; ``+``, ``/`` and ``=`` must be form-encoded, as in real Criteo secrets."""
    CONSENT_URL: Final = "https://consent.criteo.com/request"
    """Criteo's consent page, the only one :meth:`consent_redirect` accepts (query aside)."""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        lifetime: float = 900,
        timer: Callable[[], float] | None = None,
        speed: float = 1,
    ) -> None:
        """Create a stopped fake; ``clients`` maps client ids to secrets.

        ``lifetime`` is the ``expires_in`` (seconds) of the tokens issued; ``timer`` the clock
        of their expiry and of the rate limits (by default ``time.monotonic``, run ``speed``
        times as fast). Raises ``TypeError`` or ``ValueError`` for a ``speed`` that is not a
        positive, finite number.
        """
        self.speed: Final = _check_speed(speed)
        """Seconds of :attr:`timer` per real second (1 unless given; a ``timer`` of your own is
        taken to run at that speed): a token lives ``lifetime * speed`` seconds of it."""
        self.lifetime: float = lifetime
        """Seconds a token issued from now on lives (its ``expires_in``); settable any time."""
        if timer is None:
            timer = time.monotonic if self.speed == 1 else _SpedUpClock(self.speed)
        self.timer: Callable[[], float] = timer
        """The clock of token expiry and rate limits (seconds; only differences matter)."""
        self.requests: list[SeenRequest] = []
        """Every request received, oldest first (see also :meth:`reset_counters`)."""
        self.wall_clock: Callable[[], float] = time.time
        """The Unix time, for ``x-ratelimit-reset``."""
        super().__init__(partial(_respond, self), "FakeCriteo")
        self._lock = threading.Lock()  # guards requests and the two request counters
        # Requests that reached the token endpoint, and any other path.
        self._arrived = {"token": 0, "api": 0}
        self._authority = _Authority(
            {self.CLIENT_ID: self.CLIENT_SECRET} if clients is None else clients, self
        )
        self._token_faults = _TokenFaults()
        self._answers = _CannedAnswers()
        self._rates = _RateWindows(self)

    # -- where it listens ---------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        """URL of the token endpoint, ``url + "/oauth2/token"``."""
        return self.url + TOKEN_PATH

    # -- clients and tokens ------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register (or replace the secret of) a client id."""
        self._authority.add_client(client_id, client_secret)

    def revoke(self, token: str | None = None) -> None:
        """Revoke one issued token, or every issued token when ``token`` is None.

        A revoked token gets ``401 authorization-token-expired``. Raises ``KeyError`` for a
        token this fake never issued (most likely a bug in the test).
        """
        self._authority.revoke(token)

    def expire_all(self) -> None:
        """Make every token issued so far expired (tokens issued later are unaffected)."""
        self._authority.expire_all()

    # -- authorization code and consent ------------------------------------------------------

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
    ) -> str:
        """Return a fresh authorization code, as Criteo's consent page would after a "yes".

        The code is bound to ``client_id``, ``redirect_uri`` (compared as an exact string at
        the exchange) and, when given, the PKCE ``code_challenge`` with
        ``code_challenge_method`` (``"S256"``: the unpadded base64url SHA-256 of the verifier;
        ``"plain"``: the verifier itself). It is single-use: the first exchange attempt by its
        client spends it, successful or not. Raises ``ValueError`` for an unregistered client,
        a method other than ``"S256"`` and ``"plain"``, a challenge not shaped as RFC 7636 says
        (an S256 challenge with ``=`` padding, say), or a ``redirect_uri`` that is not an
        absolute http(s) URL without fragment.
        """
        _check_code_request(redirect_uri, code_challenge, code_challenge_method)
        return self._authority.add_code(
            client_id, redirect_uri, code_challenge, code_challenge_method
        )

    def consent_redirect(self, consent_url: str) -> str:
        """Play the user consenting on Criteo's page: return where the browser is sent next.

        ``consent_url`` is the URL an app sends its user to,
        ``https://consent.criteo.com/request?response_type=code&client_id=...&redirect_uri=...``
        with optional ``state``, ``code_challenge`` and ``code_challenge_method`` (which, as RFC
        7636 says, defaults to ``plain`` when a challenge comes without it). A code is issued as
        by :meth:`issue_code` and the answer is ``{redirect_uri}?code={code}&state={state}``,
        ``state`` only when the consent URL had one, and any query of the redirect URI kept.
        Raises ``ValueError`` for another scheme, host or path, a fragment, a malformed or
        repeated query parameter, a ``response_type`` other than ``code``, a missing
        ``client_id`` or ``redirect_uri``, an unknown client or a bad challenge.
        """
        asked = _read_consent_url(consent_url, self.CONSENT_URL)
        code = self.issue_code(
            asked.client_id,
            asked.redirect_uri,
            code_challenge=asked.challenge,
            code_challenge_method=asked.method,
        )
        return _redirect_with(asked.redirect_uri, code, asked.state)

    def revoke_consent(self, client_id: str | None = None) -> None:
        """End the users' consent to ``client_id`` (or to every client when ``None``).

        Every refresh token of that client then gets ``invalid_grant``, every access token
        issued by its code exchanges and refreshes gets ``401`` (as after :meth:`revoke`), and
        its codes not yet exchanged become unknown. Client-credentials tokens are untouched.
        Raises ``ValueError`` for an unregistered client id.
        """
        self._authority.revoke_consent(client_id)

    # -- counters and log --------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Requests that reached the token endpoint, faulted and refused ones included."""
        return self._arrivals("token")

    @property
    def tokens_issued(self) -> int:
        """Token requests answered with a new token."""
        return self._authority.counts().tokens_issued

    @property
    def api_requests(self) -> int:
        """Requests to any path other than the token endpoint."""
        return self._arrivals("api")

    @property
    def codes_issued(self) -> int:
        """Authorization codes handed out by :meth:`issue_code` and :meth:`consent_redirect`."""
        return self._authority.counts().codes_issued

    @property
    def code_exchanges(self) -> int:
        """Successful ``authorization_code`` grants (also counted in :attr:`tokens_issued`)."""
        return self._authority.counts().code_exchanges

    @property
    def refreshes(self) -> int:
        """Successful ``refresh_token`` grants (also counted in :attr:`tokens_issued`)."""
        return self._authority.counts().refreshes

    @property
    def refresh_token_reuses(self) -> int:
        """Refresh grants presenting a refresh token already rotated away by its client.

        Each one is refused with ``invalid_grant``; an app that persists the newest refresh
        token and never refreshes twice at once keeps this at zero.
        """
        return self._authority.counts().refresh_token_reuses

    def _arrivals(self, where: str) -> int:
        with self._lock:
            return self._arrived[where]

    def reset_counters(self) -> None:
        """Set the counters to zero, forget rate-limit windows and arrivals, empty :attr:`requests`.

        Tokens, codes, refresh tokens and consents are kept.
        """
        with self._lock:
            self._arrived = dict.fromkeys(self._arrived, 0)
            self.requests.clear()
        self._authority.reset_counts()
        self._rates.clear()

    def token_endpoint_requests(self) -> list[SeenRequest]:
        """The logged requests to the token endpoint, oldest first (a copy)."""
        with self._lock:
            return [r for r in self.requests if _split_path(r.path) == TOKEN_PATH]

    def api_calls(self) -> list[SeenRequest]:
        """The logged requests to any other path, oldest first (a copy)."""
        with self._lock:
            return [r for r in self.requests if _split_path(r.path) != TOKEN_PATH]

    # -- faults and canned answers -----------------------------------------------------------

    def inject_token_fault(
        self,
        status: int | None = None,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` token endpoint requests misbehave.

        Faults queue up first in, first out, each for its own ``times`` requests. A request
        served by a fault is counted in :attr:`token_requests` but issues no token.

        * ``delay``: wait that many seconds before answering (a slow endpoint);
        * ``drop=True``: read the request, then close the connection without an answer;
        * ``status`` (with optional ``body`` and ``headers``): answer that instead of the real
          answer; with ``status=None`` (and no ``drop``) the real answer follows the delay.
        """
        self._token_faults.add(status, body, headers, delay, drop, times)

    def clear_token_faults(self) -> None:
        """Forget every pending token endpoint fault."""
        self._token_faults.clear()

    def set_response(
        self,
        path: str,
        *,
        status: int = 200,
        json: object = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        authorize: bool = True,
    ) -> None:
        """Register a canned answer for ``path`` (exact match, query ignored) and ``method``.

        ``method=None`` matches any method; an answer for the request's own method wins over
        one for any method. ``json`` (serialized, ``Content-Type: application/json``) or
        ``body`` gives the body. With ``authorize=True`` the request still needs a valid bearer
        token (else the usual ``401``); with ``False`` it is answered regardless. Works on any
        path but the token endpoint (use :meth:`inject_token_fault` there), e.g.::

            fake.set_response("/2025-10/retail-media/old", status=307,
                              headers={"Location": other.url + "/2025-10/retail-media/me"})
        """
        answer = _canned(status, json, body, headers, authorize)
        self._answers.set(path, method, answer)

    def set_error(
        self,
        path: str,
        *,
        status: int = 403,
        code: str = "insufficient-advertisers-permissions",
        title: str = "The application lacks the permissions for this advertiser",
        error_type: str = "authorization",
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
    ) -> None:
        """Answer *path* with Criteo's error envelope (after the token check).

        A shortcut for :meth:`set_response` with a body in Criteo's shape
        (``{"errors": [{"traceId", "type", "code", "instance", "title"...}]}``)::

            fake.set_error("/2025-10/retail-media/accounts")                 # a 403
            fake.set_error("/2025-10/statistics/report", status=400,
                           code="required-field", title="startDate is required",
                           error_type="validation")
        """
        extra = {"detail": detail} if detail is not None else {}
        envelope = _error_envelope(error_type, code, _split_path(path), title, **extra)
        self.set_response(path, status=status, json=envelope, headers=headers, method=method)

    def clear_responses(self) -> None:
        """Forget every canned answer."""
        self._answers.clear()

    def __repr__(self) -> str:
        url = self._url_if_running()
        return (
            f"FakeCriteo(url={url!r}, token_requests={self.token_requests}, "
            f"tokens_issued={self.tokens_issued}, api_requests={self.api_requests})"
        )

    # -- used by api._respond, for each request -----------------------------------------------

    def _record(self, seen: SeenRequest, *, token: bool) -> None:
        with self._lock:
            self.requests.append(seen)
            self._arrived["token" if token else "api"] += 1
