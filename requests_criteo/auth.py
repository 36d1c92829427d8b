"""CriteoAuth: a requests auth that sends a cached Criteo bearer token, and resends once on 401.

What lives here: :class:`CriteoAuth` and the per-request bookkeeping of its 401 hook.
What does not: the token cache (:mod:`._cache`), the HTTP exchange with the token
endpoint (:mod:`._token`), the mounted adapter (:mod:`.adapters`).

How a request is decorated, and why it is safe with many threads:

* ``__call__`` only decorates: if the request's URL belongs to a Criteo origin it sets
  ``Authorization: Bearer ...`` from the cache and registers :meth:`CriteoAuth.handle_401`.
  Network work happens only when no usable token is cached; when one is, no lock is taken.
* What a request needs for its resend (which token it carried, where its body started,
  whether it is itself a resend) is kept on the request, never on the shared auth.
* On a 401 from a Criteo origin the hook drops the token only if it is still the cached
  one, gets a fresh one (one token request however many threads saw the 401), releases the
  401's connection, and resends a copy once. A 403 is left alone: a new token cannot fix it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import default_user_agent

from . import _origins
from .__version__ import __version__
from ._cache import Timer, Token, TokenCache, shared_cache
from ._reading import read_capped
from ._source import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, TokenSource, store_key
from ._text import Secret
from ._token import TokenEndpoint
from .exceptions import CriteoAuthError, MissingCredentialsError
from .retry import CriteoRetry
from .stores import StoredToken, TokenStore

__all__ = ["DEFAULT_TOKEN_URL", "USER_AGENT", "CriteoAuth"]

log = logging.getLogger("requests_criteo")
log.addHandler(logging.NullHandler())

#: Criteo's one token endpoint, for every API and every grant.
DEFAULT_TOKEN_URL = "https://api.criteo.com/oauth2/token"  # noqa: S105 - a URL
#: requests' own User-Agent followed by ours, so Criteo's support can tell the traffic apart.
USER_AGENT = f"{default_user_agent()} requests-criteo/{__version__}"

#: The most of a 401's body read before its connection is released for the resend.
MAX_401_BODY = 64 * 1024
#: The longest a 401's body is read before the resend (Criteo's arrive with the headers).
MAX_401_SECONDS = 1.0
#: Where a request carries what its 401 handling needs (see _RequestState).
STATE_ATTRIBUTE = "_criteo_state"

# Secrets by (client_id, fingerprint), so that an auth unpickled or copied in this
# process (or a forked child) finds its secret without the pickle carrying it.
_SECRETS: dict[tuple[str, str], str] = {}
_SECRETS_LOCK = threading.Lock()


#: Bodies sent as they are, which can therefore be sent again.
_AS_IS_BODIES = (bytes, bytearray, memoryview, str)


def header_value(headers: MutableMapping[str, str], name: str) -> str | None:
    """``headers.get(name)`` for a *name* in lower case, made cheap for the request path.

    requests' ``CaseInsensitiveDict`` inherits ``get`` from ``Mapping``, which raises and
    catches a ``KeyError`` for a missing header: on every request, that exception costs
    more than all the rest of :meth:`CriteoAuth.apply`. Its ``_store`` (lower-cased name
    to ``(name, value)``) has been how it keeps headers since requests 1.x. (The request
    path also writes the two headers it sets there, as ``__setitem__`` would, without the
    Python call; tests read them back through requests' own interface.)
    """
    if type(headers) is CaseInsensitiveDict:
        entry: tuple[str, str] | None = headers._store.get(name)  # type: ignore[attr-defined]
        return None if entry is None else entry[1]
    return next((v for k, v in headers.items() if k.lower() == name), None)


def replay_position(body: object) -> tuple[bool, int | None]:
    """Whether *body* can be sent again, and the position to rewind a stream to.

    ``None``, ``bytes``, ``bytearray``, ``memoryview`` and ``str`` can; so can a stream
    whose ``seekable()`` (when it has one) and ``tell()`` succeed. A generator, an iterator,
    a pipe or a socket cannot: once sent, gone.
    """
    if body is None or isinstance(body, _AS_IS_BODIES):
        return True, None
    seek, tell = getattr(body, "seek", None), getattr(body, "tell", None)
    if seek is None or tell is None:
        return False, None
    try:
        seekable = getattr(body, "seekable", None)
        if seekable is not None and not seekable():
            return False, None
        position = tell()
    except (OSError, ValueError):
        return False, None
    return (True, position) if isinstance(position, int) else (False, None)


def fingerprint(client_id: str, client_secret: str) -> str:
    """A short, one-way fingerprint of a credential pair: safe to log and to use as a key."""
    digest = hashlib.sha256(f"requests-criteo\0{client_id}\0{client_secret}".encode())
    return digest.hexdigest()[:24]


class _RequestState:
    """What one request needs for its 401 handling; lives on the PreparedRequest.

    Never changed once on a request: the state of requests whose body can be sent again
    as it is (none, bytes, str) is one object per auth and token, shared by all of them
    (see :meth:`CriteoAuth.apply`), so a change means a new state. It holds its auth
    weakly, as the auth holds the shared one: a cycle would keep an auth used once (and
    its token session's sockets) alive until the garbage collector runs. Whoever sends
    the request holds the auth (its hook, the adapter, the session, ``install()``).
    """

    __slots__ = ("_auth", "body_position", "replayable", "resent", "token")

    def __init__(
        self,
        auth: CriteoAuth,
        token: Token | None,
        replayable: bool = True,
        body_position: int | None = None,
        resent: bool = False,
    ) -> None:
        self._auth = weakref.ref(auth)
        # None: the request carried the caller's own Authorization header, not ours.
        self.token = token
        self.replayable = replayable
        self.body_position = body_position
        self.resent = resent

    @property
    def auth(self) -> CriteoAuth | None:
        """The auth that decorated the request (``None`` once nothing holds it)."""
        return self._auth()

    @classmethod
    def of(
        cls, auth: CriteoAuth, token: Token | None, request: requests.PreparedRequest
    ) -> _RequestState:
        """The state of *request*, whose body is where sending it will start."""
        return cls(auth, token, *replay_position(request.body))

    def __reduce__(self) -> tuple[Any, ...]:
        # A pickled request or response (in an exception, say) carries no state, and so
        # no Token: it unpickles to None.
        return (type(None), ())

    def rewind(self, request: requests.PreparedRequest) -> bool:
        """Put the body back where it started; ``False`` if that cannot be done."""
        body: Any = request.body
        if self.body_position is None or body is None or isinstance(body, _AS_IS_BODIES):
            # Nothing to rewind (a mock transport may already have read a file into bytes).
            return self.replayable
        try:
            body.seek(self.body_position)
        except (OSError, ValueError, AttributeError):
            return False
        return True


_CHAIN = "_criteo_chain"
# Set on a 401 response once handle_401 has dealt with it.
_HANDLED = "_criteo_handled"


def note_redirect(prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
    """Record on a redirect hop the URLs it came through (``Session.rebuild_auth`` calls it).

    :meth:`CriteoAuth.apply` gives no token to a hop whose chain left the Criteo origins: a
    redirect from another site into Criteo must not arrive authenticated.
    """
    previous = response.request
    chain = (*getattr(previous, _CHAIN, ()), previous.url or "")
    setattr(prepared_request, _CHAIN, chain)


def required_env(name: str) -> str:
    """The environment variable *name*; :class:`MissingCredentialsError` if unset or empty."""
    value = os.environ.get(name, "")
    if not value:
        raise MissingCredentialsError(name)
    return value


def _check_credential(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a str (from Criteo's developer portal), not {type(value).__name__}"
        )
    if not value:
        raise ValueError(f"{name} is empty: pass the {name} of your Criteo app")
    if value != value.strip():
        raise ValueError(
            f"{name} has leading or trailing whitespace, usually a copy-paste mistake; strip it"
        )
    return value


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
        timeout: tuple[float, float] = (5.0, 15.0),
        deadline: float = 120.0,
        retry: CriteoRetry | None = None,
        token_session: requests.Session | None = None,
        refresh_token: str | None = None,
        store: TokenStore | None = None,
        on_token: Callable[[StoredToken], object] | None = None,
        grant: str | None = None,
        account: str = "default",
    ) -> None:
        self.client_id = _check_credential("client_id", client_id)
        self._secret = Secret(_check_credential("client_secret", client_secret))
        token_origin = _origins.parse_origin(token_url, what="token_url", allow_path=True)
        self.token_url = token_url
        # As requests prepares it (host lower-cased, escapes normalised): what apply() sees.
        prepared = requests.PreparedRequest()
        prepared.prepare_url(token_url, None)
        self._token_url = prepared.url or token_url
        if api_origins is None:
            origins = [token_origin]
        else:
            if isinstance(api_origins, str):
                api_origins = [api_origins]
            origins = [
                _origins.parse_origin(o, what="api_origins entry", allow_path=False)
                for o in api_origins
            ]
            if not origins:
                raise ValueError("api_origins is empty: no request could ever be authenticated")
        self.api_origins: tuple[str, ...] = tuple(str(o) for o in origins)
        self._prefixes = tuple(p for o in origins for p in o.prefixes)
        if (
            not isinstance(timeout, tuple)
            or len(timeout) != 2
            or not all(isinstance(t, (int, float)) and t > 0 for t in timeout)
        ):
            raise ValueError("timeout must be a (connect, read) pair of positive seconds")
        if not isinstance(deadline, (int, float)) or deadline <= 0:
            raise ValueError("deadline must be a positive number of seconds")
        if cache is not None and timer is not None and cache.timer is not timer:
            raise ValueError("pass either timer= or cache=, or give the cache that timer")
        self.cache = cache if cache is not None else shared_cache(timer)
        self._timer = self.cache.timer
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.deadline = float(deadline)
        self.retry = retry if retry is not None else CriteoRetry()
        if grant is None:
            grant = AUTHORIZATION_CODE if refresh_token is not None else CLIENT_CREDENTIALS
        if grant not in (CLIENT_CREDENTIALS, AUTHORIZATION_CODE):
            raise ValueError(
                f"grant must be 'client_credentials' or 'authorization_code', not {grant!r}"
            )
        if refresh_token is not None and grant != AUTHORIZATION_CODE:
            raise ValueError("a refresh_token goes with grant='authorization_code'")
        if refresh_token is not None:
            _check_credential("refresh_token", refresh_token)
        if not isinstance(account, str) or not account:
            raise ValueError("account must be a non-empty name")
        if store is not None and not isinstance(store, TokenStore):
            raise TypeError(f"store must be a TokenStore, not {type(store).__name__}")
        if on_token is not None and not callable(on_token):
            raise TypeError("on_token must be a callable taking a StoredToken")
        self.grant = grant
        self.account = account
        self.store = store if store is not None else self.cache.memory_store
        self._custom_store = store is not None
        self.on_token = on_token
        self.fingerprint = fingerprint(self.client_id, self._secret)
        self._key = (token_url, self.client_id, self.fingerprint, grant, account)
        self._endpoint = TokenEndpoint(
            token_url,
            timeout=self.timeout,
            deadline=self.deadline,
            retry=self.retry,
            user_agent=USER_AGENT,
            session=token_session,
        )
        self._source = TokenSource(
            client_id=self.client_id,
            client_secret=self._secret,
            grant=grant,
            key=store_key(token_url, self.client_id, self.fingerprint, grant, account),
            store=self.store,
            endpoint=self._endpoint,
            timer=self._timer,
            on_token=on_token,
        )
        self._token: Token | None = None
        self._shared_state: _RequestState | None = None
        # Digests of Authorization headers set by the caller that Criteo refused (401).
        self._dead: dict[str, None] = {}
        with _SECRETS_LOCK:
            _SECRETS[(self.client_id, self.fingerprint)] = self._secret
        if refresh_token is not None:
            self._source.seed(refresh_token)

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
        client_id, client_secret = (
            required_env("CRITEO_CLIENT_ID"),
            required_env("CRITEO_CLIENT_SECRET"),
        )
        token_url = os.environ.get("CRITEO_TOKEN_URL", "")
        if token_url:
            options.setdefault("token_url", token_url)
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
        _check_credential("code", code)
        if not isinstance(redirect_uri, str) or not redirect_uri:
            raise TypeError("redirect_uri must be the redirect URI of the consent request")
        options["grant"] = AUTHORIZATION_CODE
        auth = cls(client_id, client_secret, **options)
        # Always sent, even with a token cached for this account: a new code is a new
        # consent, whose tokens replace the old ones in the store and the cache.
        token = auth._source.exchange(code, redirect_uri, code_verifier)
        auth.cache.put(auth._key, token)
        auth._token = token
        return auth

    def __repr__(self) -> str:
        return f"CriteoAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CriteoAuth):
            return NotImplemented
        return self._key == other._key and self.api_origins == other.api_origins

    def __hash__(self) -> int:
        return hash((self._key, self.api_origins))

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
            token; the adapter and :func:`~requests_criteo.install` pass ``True``); the 401
            hook is still registered, a 401 to that header is resent with a managed token,
            and later requests carrying it get a managed token at once. Any other
            ``Authorization`` (Basic from ``.netrc``, say) is replaced. A request already
            decorated by a ``CriteoAuth`` is then left as it is.
        :param hook: register :meth:`handle_401` as *r*'s first response hook. An adapter
            that passes ``False`` calls ``handle_401`` itself on the responses it gets, which
            spares requests a hook call on every response (:class:`CriteoAdapter` does).
        """
        url = r.url
        if (
            url is None
            or not url.startswith(self._prefixes)
            or (url.startswith(self._token_url) and self.is_token_url(url))
        ):
            return r
        # Our marks are read with getattr, never through r.__dict__: on CPython 3.11+,
        # asking for an object's __dict__ slows every later attribute read of that object.
        chain: tuple[str, ...] | None = getattr(r, _CHAIN, None)
        if chain is not None and not all(u.startswith(self._prefixes) for u in chain):
            return r  # a redirect hop that came from another site
        state: _RequestState | None = getattr(r, STATE_ATTRIBUTE, None)
        if state is not None and (keep_authorization or state.resent):
            # Decorated already. A request an adapter sent has no hook (it handles its own
            # 401s): sent again some other way, it needs one.
            if hook and not state.resent:
                self._ensure_hook(r)
            return r
        token: Token | None
        own = header_value(r.headers, "authorization") if keep_authorization else None
        if (
            own is not None
            and own[:7].lower() == "bearer "
            and (self._token is None or own != self._token.header)  # not ours, on a hop
            and not self._is_dead(own)
        ):
            token = None  # the caller's own header, kept until Criteo refuses it
        else:
            token = self._token
            if token is None or token.dropped or not self._timer() < token.refresh_at:
                token = self.token()
            headers = r.headers
            if type(headers) is CaseInsensitiveDict:  # its __setitem__, without the call
                headers._store["authorization"] = ("Authorization", token.header)  # type: ignore[attr-defined]
            else:
                headers["Authorization"] = token.header
        if state is not None:
            # Decorated before by another auth: from now on, this one handles its 401.
            setattr(
                r,
                STATE_ATTRIBUTE,
                _RequestState(self, token, state.replayable, state.body_position),
            )
            if hook:
                self._ensure_hook(r)
            return r
        body = r.body
        if token is not None and (body is None or isinstance(body, _AS_IS_BODIES)):
            # The common case: one state per token, shared by every such request.
            state = self._shared_state
            if state is None or state.token is not token:
                state = self._shared_state = _RequestState(self, token)
        else:
            state = _RequestState.of(self, token, r)
        setattr(r, STATE_ATTRIBUTE, state)
        if hook:
            # First, so that a session's own hooks (raise_for_status...) see the resend.
            r.hooks["response"].insert(0, self.handle_401)
        return r

    def _ensure_hook(self, r: requests.PreparedRequest) -> None:
        """Register :meth:`handle_401` on *r* unless a ``CriteoAuth``'s already is.

        Any auth's hook will do: ``handle_401`` acts for the auth named in the request's
        state, whichever auth it is bound to.
        """
        hooks = r.hooks["response"]
        if not any(isinstance(getattr(h, "__self__", None), CriteoAuth) for h in hooks):
            hooks.insert(0, self.handle_401)

    def _adopt(self, request: requests.PreparedRequest) -> _RequestState | None:
        """The state of a redirect hop that carries our token, or ``None``.

        requests copies a request for each redirect hop without our state, keeping the
        ``Authorization`` header on a same-host hop. A hop that stayed on the Criteo origins
        and carries this auth's current token is ours to refresh and resend. Its body is
        replayable only from the position requests itself recorded.
        """
        url = request.url
        token = self._token
        if url is None or token is None or not url.startswith(self._prefixes):
            return None
        chain: tuple[str, ...] = getattr(request, _CHAIN, ())
        if not all(u.startswith(self._prefixes) for u in chain):
            return None
        if request.headers.get("Authorization") != token.header:
            return None
        state = _RequestState.of(self, token, request)
        if state.body_position is not None:
            recorded = getattr(request, "_body_position", None)
            if isinstance(recorded, int):
                state.body_position = recorded
            else:
                state.replayable, state.body_position = False, None
        return state

    def _is_dead(self, header: str) -> bool:
        return _digest(header) in self._dead

    def _forget(self, state: _RequestState, request: requests.PreparedRequest) -> None:
        """After a 401: drop our token if still cached, or remember the caller's as dead."""
        if state.token is not None:
            if self.cache.drop(self._key, state.token):
                self._source.forget(state.token)
            return
        header = request.headers.get("Authorization")
        if header is not None:
            with _SECRETS_LOCK:
                self._dead[_digest(header)] = None
                while len(self._dead) > 32:
                    del self._dead[next(iter(self._dead))]

    def is_token_url(self, url: str) -> bool:
        """Whether *url* is this auth's token endpoint, which never gets a bearer token."""
        return url.split("?", 1)[0] in (self._token_url, self.token_url)

    def token(self) -> Token:
        """A usable token, fetched only when none is cached (one fetch however many ask).

        :raises TokenRequestError: the token endpoint refused or could not be reached.
        :raises InvalidTokenResponse: its answer held no usable token.
        """
        return self._cached(self._fetch)

    def _cached(self, fetch: Callable[[], Token]) -> Token:
        """The cached token, or the one *fetch* gets (once, however many threads ask)."""
        token = self.cache.get_or_fetch(self._key, fetch, wait=self.deadline + 5.0)
        self._token = token
        return token

    def _fetch(self) -> Token:
        log.debug("requesting a token for client %s from %s", self.client_id, self.token_url)
        return self._source.fetch()

    def invalidate(self) -> None:
        """Forget the cached token of these credentials, so the next request fetches one.

        The token is also taken out of the store; a refresh token is kept.
        """
        token = self.cache.get(self._key) or self._token
        if token is not None:
            self.cache.drop(self._key, token)
            self._source.forget(token)
        self._token = None

    # -- the 401 hook -----------------------------------------------------------------

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
        the resend uses the same ones. (They are named parameters rather than only
        ``**kwargs`` because requests calls this for every response, and a call that fills
        named parameters is cheaper than one that builds a dict.)

        Returns the resent request's response, whose ``history`` holds the 401, or *r*
        itself when nothing is to be done: not a 401, not a request this library
        authenticated, already a resend, or a body that cannot be sent again (a generator
        or a non-seekable stream).
        """
        if r.status_code != 401 or getattr(r, _HANDLED, False):
            return r
        # Once per 401: an adapter that handled it may hand it on to a hook unchanged.
        setattr(r, _HANDLED, True)
        request = r.request
        state: _RequestState | None = getattr(request, STATE_ATTRIBUTE, None)
        if state is None:
            state = self._adopt(request)  # a same-origin redirect hop of ours, perhaps
        if state is None or state.resent or request.url is None:
            return r
        # The auth that decorated the request, or, once nothing holds it any more, this one
        # (the hook's or the adapter's), if the request is for one of its origins.
        auth = state.auth or self
        if not request.url.startswith(auth._prefixes):
            return r
        if not state.replayable:
            log.warning(
                "Criteo answered 401 to %s %s, whose body is a stream that cannot be sent "
                "again; returning the 401 (pass bytes or a seekable file to get a resend)",
                request.method,
                _origins_path(request.url),
            )
            auth._forget(state, request)
            return r
        _release(r)
        log.debug(
            "401 from %s: refreshing the token and resending once", _origins_path(request.url)
        )
        auth._forget(state, request)
        token = auth.token()
        prep = request.copy()
        if not state.rewind(prep):
            log.warning(
                "could not rewind the body of %s %s; returning the 401",
                request.method,
                _origins_path(request.url),
            )
            return r
        extract_cookies_to_jar(prep._cookies, request, r.raw)  # type: ignore[attr-defined,no-untyped-call]
        prep.prepare_cookies(prep._cookies)  # type: ignore[attr-defined]
        prep.headers["Authorization"] = token.header
        resent_state = _RequestState(
            auth, token, state.replayable, state.body_position, resent=True
        )
        setattr(prep, STATE_ATTRIBUTE, resent_state)
        connection = r.connection
        resent: requests.Response = connection.send(
            prep,
            stream=stream,
            timeout=timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
            **kwargs,
        )
        resent.history.append(r)
        resent.request = prep
        return resent

    # -- pickling and copying: never the secret, never a token ------------------------

    def __getstate__(self) -> dict[str, Any]:
        timer = None if self._timer is shared_cache().timer else self._timer
        return {
            "client_id": self.client_id,
            "fingerprint": self.fingerprint,
            "token_url": self.token_url,
            "api_origins": self.api_origins,
            "timer": timer,
            "timeout": self.timeout,
            "deadline": self.deadline,
            "retry": self.retry,
            "grant": self.grant,
            "account": self.account,
            "store": self.store if self._custom_store else None,
            "on_token": self.on_token,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        secret = _find_secret(state["client_id"], state["fingerprint"])
        self.__init__(  # type: ignore[misc]
            state["client_id"],
            secret,
            token_url=state["token_url"],
            api_origins=state["api_origins"],
            timer=state["timer"],
            timeout=state["timeout"],
            deadline=state["deadline"],
            retry=state["retry"],
            grant=state["grant"],
            account=state["account"],
            store=state["store"],
            on_token=state["on_token"],
        )


def _reinit_after_fork() -> None:
    # Another thread may have held the lock when the process forked; the child's copy
    # would then stay locked forever.
    global _SECRETS_LOCK
    _SECRETS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
    os.register_at_fork(after_in_child=_reinit_after_fork)


def _digest(header: str) -> str:
    return hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()


def _find_secret(client_id: str, fp: str) -> str:
    with _SECRETS_LOCK:
        secret = _SECRETS.get((client_id, fp))
    if secret is None:
        env_secret = os.environ.get("CRITEO_CLIENT_SECRET", "")
        if env_secret and fingerprint(client_id, env_secret) == fp:
            secret = env_secret
    if secret is None:
        raise CriteoAuthError(
            f"this CriteoAuth for client {client_id!r} was unpickled in a process that does "
            "not know its secret (pickles never carry it): set CRITEO_CLIENT_SECRET or "
            "build the CriteoAuth in this process"
        )
    return secret


def _origins_path(url: str) -> str:
    """The URL without its query, which may carry identifiers not worth logging."""
    return url.split("?", 1)[0]


def _release(r: requests.Response) -> None:
    """Read the 401 (at most :data:`MAX_401_BODY`, for at most :data:`MAX_401_SECONDS`) and
    give its connection back.

    Without this, a resend under ``stream=True`` with a blocking pool of one connection
    would wait forever for the connection the 401 still holds. A 401 too large or too slow
    has its connection closed instead; what was read stays in ``history`` for the caller.
    """
    read_capped(r, MAX_401_BODY, within=MAX_401_SECONDS)
    r.close()
