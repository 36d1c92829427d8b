"""requests-criteo: OAuth2 for the Criteo APIs, the requests way.

Three ways in, from the smallest change to the most shared::

    requests.get(url, auth=CriteoAuth(client_id, client_secret))      # drop-in
    requests_criteo.mount(session, auth)                              # your shared session
    s = requests_criteo.session(client_id, client_secret)             # a ready-made one

and for scripts that cannot be touched beyond two lines, ``requests_criteo.install()``.
Tokens are cached process-wide and shared by threads; a 401 from Criteo causes one
refresh and one resend. The public names are listed in ``__all__``; modules whose names
start with ``_`` are private.
"""

import logging
from typing import TYPE_CHECKING

from .__version__ import __version__
from ._cache import DEFAULT_LIFETIME, MAX_LIFETIME, Token, TokenCache, shared_cache
from ._install import Installation, install, installed, uninstall
from .adapters import CriteoAdapter, CriteoSession, SessionAuth, mount, session
from .auth import DEFAULT_TOKEN_URL, USER_AGENT, CriteoAuth
from .consent import ConsentRequest, code_from_redirect, consent_url
from .envelope import Envelope, Problem, envelope, raise_for_status
from .exceptions import (
    ConsentRequiredError,
    CriteoAPIError,
    CriteoAuthError,
    InsecureTransportError,
    InvalidTokenResponse,
    MissingCredentialsError,
    TokenRequestError,
    TokenStoreError,
)
from .file_store import FileTokenStore
from .ratelimit import RateLimiter, RateLimitStats
from .retry import CriteoRetry
from .stores import MemoryTokenStore, StoredToken, TokenStore

if TYPE_CHECKING:
    from .redis_ratelimit import RedisRateLimiter
    from .redis_store import RedisTokenStore

# A library's logger: silent until the application configures logging (no last-resort
# output of the library's warnings on stderr).
logging.getLogger("requests_criteo").addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # The Redis classes need the optional redis-py: imported on first use only.
    if name == "RedisTokenStore":
        from .redis_store import RedisTokenStore

        return RedisTokenStore
    if name == "RedisRateLimiter":
        from .redis_ratelimit import RedisRateLimiter

        return RedisRateLimiter
    raise AttributeError(f"module 'requests_criteo' has no attribute {name!r}")


__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_TOKEN_URL",
    "MAX_LIFETIME",
    "USER_AGENT",
    "ConsentRequest",
    "ConsentRequiredError",
    "CriteoAPIError",
    "CriteoAdapter",
    "CriteoAuth",
    "CriteoAuthError",
    "CriteoRetry",
    "CriteoSession",
    "Envelope",
    "FileTokenStore",
    "InsecureTransportError",
    "Installation",
    "InvalidTokenResponse",
    "MemoryTokenStore",
    "MissingCredentialsError",
    "Problem",
    "RateLimitStats",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisTokenStore",
    "SessionAuth",
    "StoredToken",
    "Token",
    "TokenCache",
    "TokenRequestError",
    "TokenStore",
    "TokenStoreError",
    "__version__",
    "code_from_redirect",
    "consent_url",
    "envelope",
    "install",
    "installed",
    "mount",
    "raise_for_status",
    "session",
    "shared_cache",
    "uninstall",
]
