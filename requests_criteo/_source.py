"""Where a CriteoAuth's tokens come from: its grant, its store, and the token endpoint.

What lives here: :class:`TokenSource`, which a :class:`~requests_criteo.CriteoAuth` calls
when its process-local cache has no usable token (one thread at a time per key: the
cache's single flight). It takes the store's lock, reuses a token another process stored
meanwhile, or else asks the endpoint — with the client-credentials grant, or with the
refresh-token grant of an authorization-code app — and writes the answer, new refresh
token included, to the store *before* the token is used. What does not: decorating
requests and the 401 hook (:mod:`.auth`), HTTP (:mod:`._token`, given as an endpoint).

Refresh tokens are treated as rotating and single-use, the safe reading of Criteo's
undocumented behaviour: a refresh is never retried once sent, never run twice at once
for one key (the store's lock), and always takes the newest refresh token from the store.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from oauthlib.oauth2 import BackendApplicationClient, WebApplicationClient

from ._cache import Timer, Token, margin_for
from ._text import Secret, Secrets
from ._token_request import Call, Plan, drive
from .exceptions import ConsentRequiredError, CriteoAuthError, TokenRequestError
from .stores import StoredToken, TokenStore

if TYPE_CHECKING:  # requests' endpoint, given by the caller: imported for its type only
    from ._token import TokenEndpoint

log = logging.getLogger("requests_criteo")

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
#: Seconds a stored token may claim to come from the future (clock skew between hosts).
_SKEW = 60.0


def store_key(token_url: str, client_id: str, fp: str, grant: str, account: str) -> str:
    """The store key of a token: readable, and free of secrets.

    Client-credentials tokens are keyed by the secret's fingerprint too (another secret,
    another token); authorization-code tokens by the account name only, so that a refresh
    token survives a rotation of the client secret.
    """
    if grant == CLIENT_CREDENTIALS:
        scope = hashlib.sha256(f"{token_url}\0{fp}".encode()).hexdigest()[:16]
        return f"{client_id}/{grant}/{scope}"
    scope = hashlib.sha256(token_url.encode()).hexdigest()[:16]
    return f"{client_id}/{grant}/{account}/{scope}"


class TokenSource:
    """Obtains tokens for one key, through a store shared with other threads and processes."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        grant: str,
        key: str,
        store: TokenStore,
        endpoint: TokenEndpoint,
        timer: Timer,
        on_token: Callable[[StoredToken], object] | None,
    ) -> None:
        self.client_id = client_id
        self._secret = Secret(client_secret)
        self.grant = grant
        self.key = key
        self.store = store
        self.endpoint = endpoint
        self.timer = timer
        self.on_token = on_token

    def seed(self, refresh_token: str) -> None:
        """Keep *refresh_token* unless the store already has one (which is newer)."""
        with self.store.lock(self.key):
            stored = self.store.read(self.key)
            if stored is None or stored.refresh_token is None:
                self.store.write(
                    self.key, StoredToken(None, 0.0, self.store.clock(), refresh_token)
                )

    def fetch(self) -> Token:
        """A usable token: the store's if another process got one, else a new one."""
        with self.store.lock(self.key):
            return drive(self.fetching(), self.endpoint.send)

    def fetching(self) -> Plan:
        """The steps of :meth:`fetch`, for a driver that holds the store's lock around them.

        Every store operation is a :class:`~._token_request.Call` step, so that an async
        driver can run it off its event loop (and in the thread that holds the lock).
        """
        log.debug(
            "requesting a token for client %s from %s", self.client_id, self.endpoint.request.url
        )
        stored = yield Call(self.store.read, (self.key,))
        token = self._usable(stored)
        if token is not None:
            log.debug("token for client %s taken from the store", self.client_id)
            return token
        if self.grant == CLIENT_CREDENTIALS:
            body = Secret(
                BackendApplicationClient(self.client_id).prepare_request_body(
                    include_client_id=True, client_secret=self._secret
                )
            )
            return (yield from self._requesting(body, [self._secret], retry=True, used=None))
        refresh = Secret(stored.refresh_token) if stored and stored.refresh_token else None
        if refresh and not (yield Call(self.store.may_refresh, (self.key,))):
            return self._last_resort(stored)
        if not refresh:
            raise ConsentRequiredError(
                f"no refresh token for client {self.client_id!r} in {self.store!r}: "
                "exchange an authorization code first (criteo-auth authorize)"
            )
        body = Secret(
            WebApplicationClient(self.client_id).prepare_refresh_body(
                refresh_token=refresh, client_id=self.client_id, client_secret=self._secret
            )
        )
        log.debug("refreshing the token of client %s", self.client_id)
        secrets = [self._secret, refresh]
        return (yield from self._requesting(body, secrets, retry=False, used=refresh))

    def exchange(self, code: str, redirect_uri: str, code_verifier: str | None) -> Token:
        """Exchange an authorization code, once: a code cannot be used twice."""
        code = Secret(code)
        code_verifier = Secret(code_verifier) if code_verifier else None
        body = Secret(
            WebApplicationClient(self.client_id).prepare_request_body(
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                client_secret=self._secret,
                include_client_id=True,
            )
        )
        secrets = Secrets(s for s in (self._secret, code, code_verifier) if s)
        with self.store.lock(self.key):
            plan = self._requesting(body, secrets, retry=False, used=None)
            return drive(plan, self.endpoint.send)

    def forget(self, token: Token) -> None:
        """After a 401: keep the store from handing *token* out again (refresh token kept)."""
        with self.store.lock(self.key):
            stored = self.store.read(self.key)
            if stored is None or stored.access_token != token.access_token:
                return
            if stored.refresh_token:
                self.store.write(
                    self.key,
                    StoredToken(None, stored.lifetime, stored.obtained_at, stored.refresh_token),
                )
            else:
                self.store.delete(self.key)

    def _last_resort(self, stored: StoredToken | None) -> Token:
        """While a store cannot share its lock: the stored token to its very end, or an error."""
        if stored is not None and stored.access_token is not None:
            remaining = stored.expires_at - self.store.clock()
            if remaining > 0:
                log.warning(
                    "using the last token of client %s until it expires: the store "
                    "cannot serialize a refresh now",
                    self.client_id,
                )
                return Token(
                    stored.access_token,
                    lifetime=stored.lifetime,
                    obtained_at=self.timer() - (stored.lifetime - remaining),
                )
        raise CriteoAuthError(
            f"not refreshing the token of client {self.client_id!r}: {self.store!r} cannot "
            "lock across processes right now, and a refresh token must never be used twice"
        )

    def _usable(self, stored: StoredToken | None) -> Token | None:
        if stored is None or stored.access_token is None:
            return None
        age = self.store.clock() - stored.obtained_at
        if not -_SKEW <= age < stored.lifetime - margin_for(stored.lifetime):
            return None
        return Token(
            stored.access_token, lifetime=stored.lifetime, obtained_at=self.timer() - max(age, 0.0)
        )

    def _requesting(
        self, body: str, secrets: Sequence[str], *, retry: bool, used: str | None
    ) -> Plan:
        """The token request, then its answer stored (new refresh token included) and
        told to ``on_token``; *used* is the refresh token the request spends, if any."""
        before = self.store.clock()
        request = self.endpoint.request
        try:
            token = yield from request.plan(body, secrets=secrets, timer=self.timer, retry=retry)
        except TokenRequestError as exc:
            if exc.error == "invalid_grant" and self.grant == AUTHORIZATION_CODE:
                yield Call(self._drop_refresh, (used,))
                what = "refresh token" if used else "authorization code"
                raise ConsentRequiredError(
                    f"Criteo refused the {what} (invalid_grant): the account must consent "
                    "again (criteo-auth authorize)",
                    status_code=exc.status_code,
                    error=exc.error,
                    error_description=exc.error_description,
                    trace_id=exc.trace_id,
                ) from None
            raise
        refresh = token.refresh_token or used
        if self.grant == AUTHORIZATION_CODE and not refresh:
            log.warning("the token endpoint gave no refresh token to client %s", self.client_id)
        stored = StoredToken(token.access_token, token.lifetime, before, refresh)
        # Persist first: if the process dies right after, the rotated refresh token is kept.
        yield Call(self.store.write, (self.key, stored))
        if self.on_token is not None:
            yield Call(self.on_token, (stored,))
        return token

    def _drop_refresh(self, used: str | None) -> None:
        """Forget a refused refresh token, unless another process already replaced it."""
        if used is None:
            return
        stored = self.store.read(self.key)
        if stored is not None and stored.refresh_token == used:
            self.store.delete(self.key)
