"""The fake's book of who may call: clients, access tokens, codes, refresh tokens, consents.

What lives here: ``_Authority``, which registers clients, mints JWT-looking access tokens,
keeps single-use authorization codes (with their PKCE challenge) and rotating refresh tokens,
and answers whether a bearer token is valid now; ``_GrantError``, a refused grant. What does
not: HTTP (:mod:`~requests_criteo.testing.oauth` turns these into answers) and the checks of
a consent URL (:mod:`~requests_criteo.testing.consent`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Protocol

from ._wire import _b64url, _dumps, _number

_BAD_REFRESH: Final = "The refresh token is invalid or was already used"


class _Settings(Protocol):
    """What the fake lets a test change at any time, read at each use."""

    lifetime: float
    timer: Callable[[], float]

    @property
    def speed(self) -> float: ...


@dataclass
class _Grant:
    """One user consent, from a code exchange; its refresh tokens and access tokens share it."""

    client_id: str
    revoked: bool = False


@dataclass
class _Issued:
    client_id: str
    expires_at: float
    revoked: bool = False
    grant: _Grant | None = None  # None: a client-credentials token


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    spent: bool = False


@dataclass
class _Refresh:
    grant: _Grant
    rotated: bool = False


@dataclass
class _Counts:
    tokens_issued: int = 0
    codes_issued: int = 0
    code_exchanges: int = 0
    refreshes: int = 0
    refresh_token_reuses: int = 0


class _GrantError(Exception):
    """A refused grant: answered ``400 {"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _verifier_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        computed = _b64url(hashlib.sha256(verifier.encode("utf-8")).digest())
    else:
        computed = verifier
    return secrets.compare_digest(computed.encode("utf-8"), challenge.encode("utf-8"))


class _Authority:
    """Everything the fake's token endpoint knows, behind one lock."""

    def __init__(self, clients: Mapping[str, str], settings: _Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._clients = dict(clients)
        self._tokens: dict[str, _Issued] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _Refresh] = {}
        self._grants: list[_Grant] = []
        self._counts = _Counts()

    def counts(self) -> _Counts:
        """A copy of the counters."""
        with self._lock:
            return replace(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts = _Counts()

    # -- clients -------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret

    def authenticate(self, client_id: str, client_secret: str) -> bool:
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            return False
        return secrets.compare_digest(expected.encode("utf-8"), client_secret.encode("utf-8"))

    # -- access tokens -------------------------------------------------------------------

    def issue(self, client_id: str) -> tuple[str, int | float]:
        """A client-credentials token and its ``expires_in``."""
        token, lifetime = self._mint(client_id)
        with self._lock:
            self._tokens[token] = _Issued(client_id, self._expiry(lifetime))
            self._counts.tokens_issued += 1
        return token, _number(lifetime)

    def _expiry(self, lifetime: float) -> float:
        """When a token of ``lifetime`` real seconds (its ``expires_in``) expires, on the timer."""
        return self._settings.timer() + lifetime * self._settings.speed

    def _mint(self, client_id: str) -> tuple[str, float]:
        """A new access token (not yet valid: the caller registers it) and its lifetime."""
        lifetime = self._settings.lifetime
        issued_at = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        payload = {
            "iss": "https://fake-criteo.invalid",
            "sub": client_id,
            "client_id": client_id,
            "iat": issued_at,
            "exp": issued_at + math.ceil(lifetime),
            "jti": str(uuid.uuid4()),
        }
        token = ".".join(
            (_b64url(_dumps(header)), _b64url(_dumps(payload)), _b64url(secrets.token_bytes(256)))
        )
        return token, lifetime

    def client_for(self, token: str) -> str | None:
        """The client of a valid ``token``; ``None`` for an unknown, revoked or expired one."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or issued.revoked or self._settings.timer() >= issued.expires_at:
                return None
            return issued.client_id

    def revoke(self, token: str | None) -> None:
        with self._lock:
            if token is None:
                for issued in self._tokens.values():
                    issued.revoked = True
            elif token in self._tokens:
                self._tokens[token].revoked = True
            else:
                raise KeyError("FakeCriteo never issued this token")

    def expire_all(self) -> None:
        with self._lock:
            for issued in self._tokens.values():
                issued.expires_at = float("-inf")

    # -- codes, refresh tokens and consents ----------------------------------------------

    def add_code(
        self, client_id: str, redirect_uri: str, challenge: str | None, method: str
    ) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            if client_id not in self._clients:
                raise ValueError("unknown client_id: register it with add_client() first")
            self._codes[code] = _Code(client_id, redirect_uri, challenge, method)
            self._counts.codes_issued += 1
        return code

    def exchange_code(
        self, client_id: str, code: str, redirect_uri: str, verifier: str | None
    ) -> dict[str, object]:
        """The ``authorization_code`` grant of an authenticated client; ``_GrantError`` if bad."""
        access, lifetime = self._mint(client_id)  # outside the lock: 256 random bytes
        with self._lock:
            pending = self._spend_code(client_id, code)
            if redirect_uri != pending.redirect_uri:
                raise _GrantError(
                    "invalid_grant",
                    "The redirect_uri differs from the one of the authorization request",
                )
            _check_verifier(pending, verifier)
            grant = _Grant(client_id)
            self._grants.append(grant)
            self._counts.code_exchanges += 1
            return self._grant_tokens(grant, access, lifetime)

    def _spend_code(self, client_id: str, code: str) -> _Code:
        """The pending code, now spent: a failed attempt spends it too. Call with the lock."""
        pending = self._codes.get(code)
        if pending is None or pending.client_id != client_id:
            raise _GrantError("invalid_grant", "The authorization code is invalid")
        if pending.spent:
            raise _GrantError("invalid_grant", "The authorization code was already used")
        pending.spent = True
        return pending

    def rotate_refresh_token(self, client_id: str, refresh_token: str) -> dict[str, object]:
        """The ``refresh_token`` grant of an authenticated client; ``_GrantError`` if bad."""
        access, lifetime = self._mint(client_id)
        with self._lock:
            current = self._refresh_tokens.get(refresh_token)
            if current is None or current.grant.client_id != client_id:
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            if current.rotated:
                self._counts.refresh_token_reuses += 1
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            if current.grant.revoked:
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            current.rotated = True
            self._counts.refreshes += 1
            return self._grant_tokens(current.grant, access, lifetime)

    def _grant_tokens(self, grant: _Grant, access: str, lifetime: float) -> dict[str, object]:
        """Register ``access`` and a new refresh token for ``grant``; call with the lock held."""
        refresh = secrets.token_urlsafe(48)
        self._tokens[access] = _Issued(grant.client_id, self._expiry(lifetime), grant=grant)
        self._refresh_tokens[refresh] = _Refresh(grant)
        self._counts.tokens_issued += 1
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": _number(lifetime),
            "refresh_token": refresh,
        }

    def revoke_consent(self, client_id: str | None) -> None:
        with self._lock:
            if client_id is not None and client_id not in self._clients:
                raise ValueError("unknown client_id")
            for grant in self._grants:
                if client_id is None or grant.client_id == client_id:
                    grant.revoked = True
            for issued in self._tokens.values():
                if issued.grant is not None and issued.grant.revoked:
                    issued.revoked = True
            for code, pending in list(self._codes.items()):
                if client_id is None or pending.client_id == client_id:
                    del self._codes[code]


def _check_verifier(pending: _Code, verifier: str | None) -> None:
    """PKCE (RFC 7636): a verifier exactly when the code has a challenge, and one that fits."""
    if pending.challenge is None:
        if verifier is not None:
            raise _GrantError("invalid_grant", "A code_verifier was given for a code without PKCE")
    elif verifier is None:
        raise _GrantError("invalid_grant", "The code_verifier is missing")
    elif not _verifier_matches(verifier, pending.challenge, pending.method):
        raise _GrantError("invalid_grant", "The code_verifier does not match the code_challenge")
