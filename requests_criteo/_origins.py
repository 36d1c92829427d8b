"""Origins: which URLs may receive a Criteo token, and which token URLs are acceptable.

Private helpers for :mod:`requests_criteo.auth`. Nothing here does network work.

An origin is ``scheme://host[:port]``. A request is in scope only when its URL, as
requests prepares it (scheme and host lower-cased, a path of at least ``/``), starts
with one of the origin's exact prefixes ending in ``/``. Because the authority of a
URL ends at its first ``/``, that test cannot be fooled by user info
(``https://api.criteo.com@evil.example/``), by a longer host name
(``https://api.criteo.com.evil.example/``), by another port or another scheme.
"""

from __future__ import annotations

import ipaddress
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
