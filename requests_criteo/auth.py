"""CriteoAuth: a requests auth that puts a cached Criteo bearer token on each request.

What lives here: :class:`CriteoAuth`, a thin ``AuthBase`` over the app's credentials
(:class:`~requests_criteo._credentials.Credentials`: validation, cache key, token source,
pickling). What does not: the token cache (:mod:`._cache`), the token request
(:mod:`._token`), the 401 resend and the redirect bookkeeping (:mod:`._request_path`), the
mounted adapter (:mod:`.adapters`).

``__call__`` only decorates: if the request's URL belongs to a Criteo origin it sets
``Authorization: Bearer ...`` from the cache, marks the request for its resend, and
registers :meth:`CriteoAuth.handle_401`. Network work happens only when no usable token is
cached; when one is, no lock is taken. A 403 is left alone: a new token cannot fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.auth import AuthBase

from ._cache import Timer, Token, TokenCache
from ._credentials import (
    DEFAULT_ACCOUNT,
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_URL,
    Credentials,
    from_env,
)
from ._request_path import Mark, chain_of, mark_of, resend_once
from ._source import AUTHORIZATION_CODE
from ._token import USER_AGENT
from ._transport import RequestsTransport
from .retry import CriteoRetry
from .stores import StoredToken, TokenStore

__all__ = ["DEFAULT_TOKEN_URL", "USER_AGENT", "CriteoAuth"]


def _setting(name: str, doc: str) -> Any:
    """A read-only attribute of the auth: its credentials' setting *name*."""
    return property(lambda auth: getattr(auth.credentials, name), doc=doc)


class CriteoAuth(AuthBase):
    """Authenticate requests to the Criteo APIs with a cached OAuth2 bearer token.

    Drop it into existing requests code; the first request fetches a token with the
    client-credentials grant, later requests reuse it until shortly before it expires,
    and a 401 from Criteo causes one refresh and one resend::

        import requests
        from requests_criteo import CriteoAuth

        auth = CriteoAuth(client_id, client_secret)
        r = requests.get("https://api.criteo.com/2025-10/retail-media/me", auth=auth)

    Tokens are shared by every ``CriteoAuth`` of the process with the same credentials
    and token URL, so building a new one per call still makes one token request per
    token lifetime. Only requests to the API origins get a token: the scheme, host and
    port must match exactly.

    :param client_id: the app's client id.
    :param client_secret: the app's client secret. Never logged, shown or pickled.
    :param token_url: the token endpoint; https, or http on a loopback host (local fakes).
    :param api_origins: the origins (``scheme://host[:port]``) that may receive the token;
        by default the token URL's origin, ``https://api.criteo.com``.
    :param timer: the clock for token expiry, in seconds (``time.monotonic`` by default).
        Auths with the same timer share a cache; tests pass a fake clock.
    :param cache: a :class:`~requests_criteo.TokenCache` to use instead of the shared one
        (its timer is then the clock).
    :param timeout: ``(connect, read)`` seconds for one token request.
    :param deadline: seconds a token fetch may take in all, retries and waits included.
    :param retry: the retry policy of the token request (a :class:`~requests_criteo.CriteoRetry`).
    :param token_session: the session token requests go through; a private one by default.
        Whatever it is, requests-criteo never follows a redirect or reads ``.netrc`` with it.
    :param refresh_token: for an authorization-code app, a refresh token kept from an
        earlier exchange; used only if the store has none (the store's is newer).
    :param store: a :class:`~requests_criteo.TokenStore` shared with other processes
        (:class:`~requests_criteo.FileTokenStore`); the process's memory by default.
    :param on_token: called with each new :class:`~requests_criteo.StoredToken` (access and
        refresh token) right after it is stored and before it is used, for apps that keep
        tokens in their own database. If it raises, the error reaches the caller; the
        token stays in the store.
    :param grant: ``"client_credentials"`` (the default) or ``"authorization_code"``
        (implied by ``refresh_token``): the latter refreshes with the refresh-token grant.
    :param account: for authorization-code apps holding several consents, the name under
        which this one's tokens are stored.
    :raises InsecureTransportError: a non-loopback http URL was given.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str = DEFAULT_TOKEN_URL,
        api_origins: Iterable[str] | None = None,
        timer: Timer | None = None,
        cache: TokenCache | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        retry: CriteoRetry | None = None,
        token_session: requests.Session | None = None,
        refresh_token: str | None = None,
        store: TokenStore | None = None,
        on_token: Callable[[StoredToken], object] | None = None,
        grant: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.credentials = Credentials(
            client_id,
            client_secret,
            transport=RequestsTransport(token_session),
            token_url=token_url,
            api_origins=api_origins,
            timer=timer,
            cache=cache,
            timeout=timeout,
            deadline=deadline,
            retry=retry,
            refresh_token=refresh_token,
            store=store,
            on_token=on_token,
            grant=grant,
            account=account,
        )

    # The credentials' settings, read-only: an auth is built with them (build another).
    client_id: str = _setting("client_id", "The app's client id.")
    token_url: str = _setting("token_url", "The token endpoint.")
    api_origins: tuple[str, ...] = _setting("api_origins", "The origins that get the token.")
    cache: TokenCache = _setting("cache", "The token cache (the process's, unless given).")
    store: TokenStore = _setting("store", "Where tokens are kept (this process's memory).")
    on_token: Callable[[StoredToken], object] | None = _setting("on_token", "Told new tokens.")
    grant: str = _setting("grant", "``client_credentials`` or ``authorization_code``.")
    account: str = _setting("account", "The name an authorization-code app's tokens go by.")
    fingerprint: str = _setting("fingerprint", "A one-way fingerprint of the credentials.")
    timeout: tuple[float, float] = _setting("timeout", "Seconds for one token request.")
    deadline: float = _setting("deadline", "Seconds a token fetch may take in all.")
    retry: CriteoRetry = _setting("retry", "The retry policy of the token request.")

    @classmethod
    def from_env(cls, **options: Any) -> CriteoAuth:
        """A ``CriteoAuth`` with credentials from the environment.

        Reads ``CRITEO_CLIENT_ID`` and ``CRITEO_CLIENT_SECRET``, and ``CRITEO_TOKEN_URL``
        when set (for a local fake or a proxy); keyword *options* are those of
        ``CriteoAuth`` and win over the environment::

            auth = CriteoAuth.from_env()

        :raises MissingCredentialsError: a required variable is unset or empty; the
            message names it.
        """
        client_id, client_secret, options = from_env(options)
        return cls(client_id, client_secret, **options)

    @classmethod
    def from_authorization_code(
        cls,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str | None = None,
        **options: Any,
    ) -> CriteoAuth:
        """Exchange an authorization code for tokens, and return the auth that uses them.

        The code is always sent, once, even when tokens for the same client and account
        are cached: they are replaced by the new consent's. Codes are single-use, so a
        failed exchange is never retried (except a 429, which Criteo did not execute). The
        access and refresh tokens go to the store (``store=``, the process's memory by
        default) and to ``on_token=`` before the auth is returned::

            request = requests_criteo.consent_url(client_id, redirect_uri)
            # ... the user consents; the browser comes back with ?code=...&state=...
            code = requests_criteo.code_from_redirect(callback_url, request.state)
            auth = CriteoAuth.from_authorization_code(
                client_id, client_secret, code, redirect_uri, request.code_verifier,
                store=FileTokenStore("tokens.json"),
            )

        :param redirect_uri: the same redirect URI as in the consent request.
        :param code_verifier: the PKCE verifier of the consent request, if it had one.
        :param options: keyword arguments of ``CriteoAuth`` (``store``, ``on_token``,
            ``account``, ``token_url``...).
        :raises ConsentRequiredError: Criteo refused the code (``invalid_grant``).
        """
        options["grant"] = AUTHORIZATION_CODE
        auth = cls(client_id, client_secret, **options)
        auth.credentials.exchange(code, redirect_uri, code_verifier)
        return auth

    def __repr__(self) -> str:
        return f"CriteoAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CriteoAuth):
            return NotImplemented
        mine, theirs = self.credentials, other.credentials
        return mine.key == theirs.key and mine.scope.origins == theirs.scope.origins

    def __hash__(self) -> int:
        return hash((self.credentials.key, self.credentials.scope.origins))

    def __getstate__(self) -> dict[str, Any]:
        return {"credentials": self.credentials}  # which pickle without their secret

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.credentials = state["credentials"]

    # -- the request path -------------------------------------------------------------

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return self.apply(r)

    def apply(
        self,
        r: requests.PreparedRequest,
        *,
        keep_authorization: bool = False,
        hook: bool = True,
    ) -> requests.PreparedRequest:
        """Decorate *r* if it goes to a Criteo origin; what ``__call__`` does.

        :param keep_authorization: keep a ``Bearer`` header the caller set (a hand-rolled
            token; the adapter and :func:`~requests_criteo.install` pass ``True``); a 401 to
            that header is resent with a managed token, and later requests carrying it get
            a managed token at once. Any other ``Authorization`` (Basic from ``.netrc``,
            say) is replaced. A request already decorated by a ``CriteoAuth`` is then left
            as it is.
        :param hook: register :meth:`handle_401` as *r*'s first response hook. An adapter
            that passes ``False`` resends its own 401s (:class:`CriteoAdapter` does).
        """
        url = r.url
        if url is None or not self.credentials.scope.allows(url, chain_of(r)):
            return r
        mark = mark_of(r)
        if mark is not None and mark.resent:
            return r  # a resend carries its token, and the 401 handling is done
        if mark is None or not keep_authorization:
            # Not decorated yet; or decorated by another auth, which this one takes over
            # (a prepared request handed to a second auth: tests/test_hot_path.py,
            # test_an_auth_applied_after_another_takes_the_request_over).
            self._decorate(r, keep_authorization)
        if hook:
            self._ensure_hook(r)
        return r

    def _decorate(self, r: requests.PreparedRequest, keep_authorization: bool) -> None:
        """Put the token on *r* (unless it keeps the caller's own) and mark it."""
        token = self._own_or_managed(r) if keep_authorization else self.credentials.token()
        if token is not None:
            r.headers["Authorization"] = token.header
        Mark.put_on(r, self.credentials, token)

    def _own_or_managed(self, r: requests.PreparedRequest) -> Token | None:
        """``None`` to keep the caller's own ``Bearer`` header, else the managed token.

        The caller's header is kept until Criteo refuses it (a 401); one that is this
        auth's token (on a redirect hop, say) is not the caller's.
        """
        own = r.headers.get("Authorization")
        credentials = self.credentials
        if (
            own is not None
            and own[:7].lower() == "bearer "
            and credentials.token_for(own) is None
            and not credentials.refused(own)
        ):
            return None
        return credentials.token()

    def _ensure_hook(self, r: requests.PreparedRequest) -> None:
        """Register :meth:`handle_401` first on *r*, unless a ``CriteoAuth``'s already is.

        First, so that a session's own hooks (raise_for_status...) see the resend. Any
        auth's hook will do: the resend uses the credentials the request was marked with.
        """
        hooks = r.hooks["response"]
        if not hooks or not any(
            isinstance(getattr(h, "__self__", None), CriteoAuth) for h in hooks
        ):
            hooks.insert(0, self.handle_401)

    def handle_401(
        self,
        r: requests.Response,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Response hook: on a 401 from a Criteo origin, refresh the token and resend once.

        Called by requests with the send options (stream, timeout, verify, cert, proxies);
        the resend uses the same ones. Returns the resent request's response, whose
        ``history`` holds the 401, or *r* itself when nothing is to be done: not a 401, not
        a request this library authenticated, already a resend, or a body that cannot be
        sent again (a generator or a non-seekable stream).
        """
        if r.status_code != 401:
            return r
        return resend_once(
            r,
            self.credentials,
            stream=stream,
            timeout=timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
            **kwargs,
        )

    def is_token_url(self, url: str) -> bool:
        """Whether *url* is this auth's token endpoint, which never gets a bearer token."""
        return self.credentials.scope.is_token_url(url)

    def token(self) -> Token:
        """A usable token, fetched only when none is cached (one fetch however many ask).

        :raises TokenRequestError: the token endpoint refused or could not be reached.
        :raises InvalidTokenResponse: its answer held no usable token.
        """
        return self.credentials.token()

    def invalidate(self) -> None:
        """Forget the cached token of these credentials, so the next request fetches one.

        The token is also taken out of the store; a refresh token is kept.
        """
        self.credentials.invalidate()
