"""Credentials: one Criteo app's secret and the life of its tokens, whatever the transport.

What lives here: :class:`Credentials`, which checks the app's settings, keys its tokens in
the process-wide cache, gets them from its store or its token endpoint (one request per
lifetime, however many threads ask), drops a refused one, exchanges authorization codes,
and pickles without its secret. What does not: HTTP. The token request goes through the
*transport* it is given (requests' in :mod:`._transport`); putting the token on a request
and resending a 401 are the request path's (:mod:`.auth`, :mod:`._request_path`). Nothing
here imports requests, so another HTTP library's glue can use the same credentials, cache
and stores. Two things remain shared with the requests side, by the public contract: the
errors raised are requests' ``RequestException`` subclasses, and the retry policy is a
:class:`~requests_criteo.CriteoRetry`, which is urllib3's ``Retry``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from ._async import AsyncSend, fetch_in_loop
from ._cache import Timer, Token, TokenCache, shared_cache
from ._fork import forget_in_child
from ._origins import Scope
from ._source import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, TokenSource, store_key
from ._text import Secret
from .exceptions import CriteoAuthError, MissingCredentialsError
from .retry import CriteoRetry
from .stores import StoredToken, TokenStore

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

    from ._token import TokenEndpoint  # requests' endpoint, for its type only

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOKEN_URL",
    "Credentials",
    "Options",
    "Transport",
    "fingerprint",
    "from_env",
]


#: Criteo's one token endpoint, for every API and every grant.
DEFAULT_TOKEN_URL = "https://api.criteo.com/oauth2/token"  # noqa: S105 - a URL
#: ``(connect, read)`` seconds for one token request.
DEFAULT_TIMEOUT = (5.0, 15.0)
#: Seconds a token fetch may take in all, retries and waits included.
DEFAULT_DEADLINE = 120.0
#: The name under which an authorization-code app's tokens are stored.
DEFAULT_ACCOUNT = "default"

#: How many refused ``Authorization`` headers of the caller's own are remembered.
_REFUSED_KEPT = 32


class Transport(Protocol):
    """Builds the token endpoint of a credential; must pickle (e.g. as its class)."""

    def __call__(
        self, url: str, *, timeout: tuple[float, float], deadline: float, retry: CriteoRetry
    ) -> TokenEndpoint: ...

    def as_sent(self, url: str) -> str:
        """*url* as this transport writes it on the wire (host lower-cased, say)."""
        ...


class _Kept:
    """A secret, kept for as long as any credential using it is alive."""

    __slots__ = ("__weakref__", "secret")

    def __init__(self, secret: str) -> None:
        self.secret = secret


# The secrets of the live credentials by (client_id, fingerprint), so that a copy or an
# unpickled auth in this process finds its secret without the pickle carrying it. Each
# credential holds its pair's _Kept, and the registry holds it weakly: once no credential
# uses a secret, it is no longer kept (tests/test_auth.py: the pickle and copy tests need
# the registry, the unpickling-without-the-secret test its weakness).
_KEPT: weakref.WeakValueDictionary[tuple[str, str], _Kept] = weakref.WeakValueDictionary()
_KEPT_LOCK = threading.Lock()


@forget_in_child
def _new_lock_after_fork() -> None:
    global _KEPT_LOCK
    _KEPT_LOCK = threading.Lock()  # another thread of the parent may have held it


def _keep(client_id: str, fp: str, secret: str) -> _Kept:
    """The holder of *secret* shared by every live credential of (client_id, fingerprint)."""
    with _KEPT_LOCK:
        kept = _KEPT.get((client_id, fp))
        if kept is None:
            kept = _KEPT[(client_id, fp)] = _Kept(secret)
        return kept


def fingerprint(client_id: str, client_secret: str) -> str:
    """A short, one-way fingerprint of a credential pair: safe to log and to use as a key."""
    digest = hashlib.sha256(f"requests-criteo\0{client_id}\0{client_secret}".encode())
    return digest.hexdigest()[:24]


def required_env(name: str) -> str:
    """The environment variable *name*; :class:`MissingCredentialsError` if unset or empty."""
    value = os.environ.get(name, "")
    if not value:
        raise MissingCredentialsError(name)
    return value


def from_env(options: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The client id, secret and *options* of ``CriteoAuth.from_env``, from the environment.

    ``CRITEO_TOKEN_URL``, when set, is the token URL unless *options* name one;
    ``CRITEO_API_ORIGINS`` (origins separated by spaces or commas), the API origins unless
    *options* name them.
    """
    client_id = required_env("CRITEO_CLIENT_ID")
    client_secret = required_env("CRITEO_CLIENT_SECRET")
    token_url = os.environ.get("CRITEO_TOKEN_URL", "")
    if token_url:
        options.setdefault("token_url", token_url)
    origins = os.environ.get("CRITEO_API_ORIGINS", "").replace(",", " ").split()
    if origins:
        options.setdefault("api_origins", origins)
    return client_id, client_secret, options


def check_credential(name: str, value: object) -> str:
    """*value* if it is a usable credential; a ``TypeError`` or ``ValueError`` naming it."""
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


def _check_timing(timeout: object, deadline: object) -> tuple[tuple[float, float], float]:
    if (
        not isinstance(timeout, tuple)
        or len(timeout) != 2
        or not all(isinstance(t, (int, float)) and t > 0 for t in timeout)
    ):
        raise ValueError("timeout must be a (connect, read) pair of positive seconds")
    if not isinstance(deadline, (int, float)) or deadline <= 0:
        raise ValueError("deadline must be a positive number of seconds")
    return (float(timeout[0]), float(timeout[1])), float(deadline)


def _check_grant(grant: str | None, refresh_token: str | None, account: object) -> str:
    if grant is None:
        grant = AUTHORIZATION_CODE if refresh_token is not None else CLIENT_CREDENTIALS
    if grant not in (CLIENT_CREDENTIALS, AUTHORIZATION_CODE):
        raise ValueError(
            f"grant must be 'client_credentials' or 'authorization_code', not {grant!r}"
        )
    if refresh_token is not None:
        if grant != AUTHORIZATION_CODE:
            raise ValueError("a refresh_token goes with grant='authorization_code'")
        check_credential("refresh_token", refresh_token)
    if not isinstance(account, str) or not account:
        raise ValueError("account must be a non-empty name")
    return grant


def _check_cache(cache: TokenCache | None, timer: Timer | None) -> TokenCache:
    if cache is not None and timer is not None and cache.timer is not timer:
        raise ValueError("pass either timer= or cache=, or give the cache that timer")
    return cache if cache is not None else shared_cache(timer)


def _check_store(store: object, on_token: object) -> None:
    if store is not None and not isinstance(store, TokenStore):
        raise TypeError(f"store must be a TokenStore, not {type(store).__name__}")
    if on_token is not None and not callable(on_token):
        raise TypeError("on_token must be a callable taking a StoredToken")


class Options(TypedDict, total=False):
    """The keyword options of a credential: :class:`~requests_criteo.CriteoAuth` documents them."""

    token_url: str
    api_origins: Iterable[str] | None
    timer: Timer | None
    cache: TokenCache | None
    timeout: tuple[float, float]
    deadline: float
    retry: CriteoRetry | None
    refresh_token: str | None
    store: TokenStore | None
    on_token: Callable[[StoredToken], object] | None
    grant: str | None
    account: str


def _check_names(options: Options) -> None:
    unknown = sorted(set(options) - Options.__optional_keys__)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")


class Credentials:
    """One app's credentials: where its tokens come from, where they may go, and their cache.

    The *options* are :class:`~requests_criteo.CriteoAuth`'s, which documents them;
    *transport* builds the token endpoint (requests' by default, from the auth).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        transport: Transport,
        **options: Unpack[Options],
    ) -> None:
        _check_names(options)
        self.client_id = check_credential("client_id", client_id)
        self._secret = Secret(check_credential("client_secret", client_secret))
        self.token_url = token_url = options.get("token_url", DEFAULT_TOKEN_URL)
        self.scope = Scope(token_url, options.get("api_origins"), transport.as_sent(token_url))
        self.api_origins = self.scope.origins
        self.timeout, self.deadline = _check_timing(
            options.get("timeout", DEFAULT_TIMEOUT), options.get("deadline", DEFAULT_DEADLINE)
        )
        self.cache = _check_cache(options.get("cache"), options.get("timer"))
        refresh_token = options.get("refresh_token")
        self.account = account = options.get("account", DEFAULT_ACCOUNT)
        self.grant = grant = _check_grant(options.get("grant"), refresh_token, account)
        store, self.on_token = options.get("store"), options.get("on_token")
        _check_store(store, self.on_token)
        self._custom_store = store is not None
        self.store = store if store is not None else self.cache.memory_store
        self.retry = options.get("retry") or CriteoRetry()
        self.transport = transport
        self.fingerprint = fp = fingerprint(self.client_id, self._secret)
        self.key = (token_url, self.client_id, fp, grant, account)
        self.source = TokenSource(
            client_id=self.client_id,
            client_secret=self._secret,
            grant=grant,
            key=store_key(token_url, self.client_id, fp, grant, account),
            store=self.store,
            endpoint=transport(
                token_url, timeout=self.timeout, deadline=self.deadline, retry=self.retry
            ),
            timer=self.cache.timer,
            on_token=self.on_token,
        )
        self._token: Token | None = None
        # Digests of Authorization headers of the caller's own that Criteo refused (401).
        self._refused: deque[str] = deque(maxlen=_REFUSED_KEPT)
        self._kept = _keep(self.client_id, fp, self._secret)
        if refresh_token is not None:
            self.source.seed(refresh_token)

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, token_url={self.token_url!r})"

    # -- tokens -----------------------------------------------------------------------

    def token(self) -> Token:
        """A usable token, fetched only when none is cached (one fetch however many ask).

        :raises TokenRequestError: the token endpoint refused or could not be reached.
        :raises InvalidTokenResponse: its answer held no usable token.
        """
        token = self._fresh()
        if token is None:
            token = self.cache.get_or_fetch(self.key, self.source.fetch, wait=self.deadline + 5.0)
            self._token = token
        return token

    async def token_in_loop(self, send: AsyncSend) -> Token:
        """:meth:`token` for a task: the same cache, flight and store, without blocking the
        event loop; *send* is the async transport that carries the token request."""
        token = self._fresh()
        if token is None:
            fetch = partial(fetch_in_loop, self.source, send)
            token = await self.cache.aget_or_fetch(self.key, fetch, wait=self.deadline + 5.0)
            self._token = token
        return token

    def _fresh(self) -> Token | None:
        """The token these credentials used last, while it needs no refresh."""
        token = self._token
        if token is None or token.dropped or not self.cache.timer() < token.refresh_at:
            return None
        return token

    def token_for(self, header: str) -> Token | None:
        """The token these credentials use, if *header* is its ``Authorization``."""
        token = self._token
        return token if token is not None and header == token.header else None

    def drop(self, token: Token) -> None:
        """Forget *token*, which Criteo refused: once, however many requests carried it."""
        if self.cache.drop(self.key, token):
            self.source.forget(token)

    def invalidate(self) -> None:
        """Forget the cached token, here and in the store (a refresh token is kept)."""
        token = self.cache.get(self.key) or self._token
        if token is not None:
            self.drop(token)
        self._token = None

    def exchange(self, code: str, redirect_uri: str, code_verifier: str | None) -> None:
        """Exchange an authorization code; its tokens replace any the account had."""
        check_credential("code", code)
        if not isinstance(redirect_uri, str) or not redirect_uri:
            raise TypeError("redirect_uri must be the redirect URI of the consent request")
        token = self.source.exchange(code, redirect_uri, code_verifier)
        self.cache.put(self.key, token)
        self._token = token

    # -- a caller's own Authorization header (install(), the adapter) -----------------

    def refuse(self, header: str) -> None:
        """Remember that Criteo refused the caller's own *header* (a 401)."""
        self._refused.append(_digest(header))  # atomic: no lock for a deque with maxlen

    def refused(self, header: str) -> bool:
        """Whether Criteo refused the caller's own *header* before."""
        return _digest(header) in self._refused

    # -- pickling: never the secret, never a token ------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        timer = self.cache.timer
        return {
            "client_id": self.client_id,
            "fingerprint": self.fingerprint,
            "transport": self.transport,
            "token_url": self.token_url,
            "api_origins": self.scope.origins,
            "timer": None if timer is shared_cache().timer else timer,
            "timeout": self.timeout,
            "deadline": self.deadline,
            "retry": self.retry,
            "grant": self.grant,
            "account": self.account,
            "store": self.store if self._custom_store else None,
            "on_token": self.on_token,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = dict(state)
        client_id, fp = options.pop("client_id"), options.pop("fingerprint")
        Credentials.__init__(self, client_id, _find_secret(client_id, fp), **options)


def _digest(header: str) -> str:
    return hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()


def _find_secret(client_id: str, fp: str) -> str:
    with _KEPT_LOCK:
        kept = _KEPT.get((client_id, fp))
    if kept is not None:
        return kept.secret
    env_secret = os.environ.get("CRITEO_CLIENT_SECRET", "")
    if env_secret and fingerprint(client_id, env_secret) == fp:
        return env_secret
    raise CriteoAuthError(
        f"this CriteoAuth for client {client_id!r} was unpickled in a process that does "
        "not know its secret (pickles never carry it): set CRITEO_CLIENT_SECRET or "
        "build the CriteoAuth in this process"
    )
