"""Origins: which URLs may receive a Criteo token, and which token URLs are acceptable.

Private helpers for the credentials and the request path. Nothing here does network work.

An origin is ``scheme://host[:port]``. A request is in scope only when its URL, as
requests prepares it (scheme and host lower-cased, a path of at least ``/``), starts
with one of the origin's exact prefixes ending in ``/``. Because the authority of a
URL ends at its first ``/``, that test cannot be fooled by user info
(``https://api.criteo.com@evil.example/``), by a longer host name
(``https://api.criteo.com.evil.example/``), by another port or another scheme.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

from .exceptions import InsecureTransportError

DEFAULT_PORTS = {"https": 443, "http": 80}


class Origin(NamedTuple):
    """A parsed, validated origin."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The URL prefixes, as requests prepares URLs, that belong to this origin."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        explicit = f"{self.scheme}://{host}:{self.port}/"
        if self.port == DEFAULT_PORTS[self.scheme]:
            return (f"{self.scheme}://{host}/", explicit)
        return (explicit,)


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_origin(url: str, *, what: str, allow_path: bool, allow_query: bool = False) -> Origin:
    """Validate *url* and return its origin.

    :param what: how to name the URL in error messages (``"token_url"``...).
    :param allow_path: whether a path is allowed (a token URL has one, an origin not).
    :param allow_query: whether a query is allowed (a redirect URI may have one).
    :raises TypeError: *url* is not a string.
    :raises ValueError: *url* is not an absolute http(s) URL without user info or
        fragment (nor query, unless allowed).
    :raises InsecureTransportError: *url* is plain http to a host that is not loopback.
    """
    if not isinstance(url, str):
        raise TypeError(
            f"{what} must be a string URL such as 'https://api.criteo.com', "
            f"not {type(url).__name__}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{what} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in DEFAULT_PORTS or not host:
        raise ValueError(
            f"{what} must be an absolute https URL such as 'https://api.criteo.com', got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{what} must not contain user info ('user@'); pass credentials "
            "as client_id and client_secret"
        )
    if parts.fragment or (parts.query and not allow_query):
        raise ValueError(f"{what} must not have a query or a fragment, got {url!r}")
    if not allow_path and parts.path not in ("", "/"):
        raise ValueError(
            f"{what} must be an origin (scheme://host[:port]) without a path, got {url!r}"
        )
    if host.endswith("."):
        raise ValueError(f"{what} must not end its host name with a dot, got {url!r}")
    if scheme == "http" and not is_loopback(host):
        raise InsecureTransportError(
            f"{what} {url!r} is plain http: tokens and secrets are only sent over https "
            "(plain http is accepted for localhost, 127.0.0.0/8 and ::1 only)"
        )
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


class Scope:
    """Where a credential's token may go: its API origins, and never its token endpoint.

    The one origin check of the library: the auth asks it before putting a token on a
    request, and the resend asks it again before sending a refreshed one.

    :param token_url: the validated token endpoint; its origin is the default API origin.
    :param api_origins: origins (``scheme://host[:port]``) that may receive the token.
    :param token_url_as_sent: the token URL as the transport writes it on the wire.
    """

    __slots__ = ("origins", "prefixes", "token_urls")

    def __init__(
        self, token_url: str, api_origins: Iterable[str] | None = None, token_url_as_sent: str = ""
    ) -> None:
        token_origin = parse_origin(token_url, what="token_url", allow_path=True)
        if api_origins is None:
            origins = [token_origin]
        else:
            if isinstance(api_origins, str):
                api_origins = [api_origins]
            origins = [
                parse_origin(o, what="api_origins entry", allow_path=False) for o in api_origins
            ]
            if not origins:
                raise ValueError("api_origins is empty: no request could ever be authenticated")
        self.origins: tuple[str, ...] = tuple(str(o) for o in origins)
        self.prefixes = tuple(p for o in origins for p in o.prefixes)
        # The token URL as given and as the transport sends it (host lower-cased, escapes
        # normalised), with and without its default port: it never gets a bearer token.
        as_sent = token_url_as_sent or token_url
        path = urlsplit(as_sent).path or "/"
        self.token_urls = (token_url, as_sent, *(p + path[1:] for p in token_origin.prefixes))

    def covers(self, url: str) -> bool:
        """Whether *url*, as requests prepares it, is on one of the API origins."""
        return url.startswith(self.prefixes)

    def allows(self, url: str, chain: Iterable[str] = ()) -> bool:
        """Whether a request to *url*, redirected through the URLs of *chain*, may carry it."""
        return (
            self.covers(url)
            and not (url.startswith(self.token_urls) and self.is_token_url(url))
            and (not chain or all(self.covers(u) for u in chain))
        )

    def is_token_url(self, url: str) -> bool:
        """Whether *url* is the token endpoint (whatever its query)."""
        return url.split("?", 1)[0] in self.token_urls
