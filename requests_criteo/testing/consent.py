"""The fake's stand-in for Criteo's consent page: what a consent request may look like.

What lives here: the checks of an authorization request (its redirect URI and PKCE
challenge), ``_read_consent_url``, which takes apart the URL an app sends its user to, and
``_redirect_with``, the URL the browser is sent back to. What does not: issuing or
exchanging the code (:mod:`~requests_criteo.testing.tokens`), and any web page.

These rules are the fake's own, written from Criteo's documentation as summed up in this
project's CRITEO.md ("Authorization code and consent"), not imported from the library: the
fake exists to check the library, so it must not check it against itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_PKCE_METHODS: Final = frozenset({"S256", "plain"})
# RFC 7636: a verifier (and so a "plain" challenge) is 43-128 unreserved characters; an S256
# challenge is the unpadded base64url of a SHA-256 digest, 43 characters.
_PLAIN_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_S256_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class _ConsentRequest:
    """What a consent URL asks for."""

    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    state: str | None


def _check_code_request(redirect_uri: str, challenge: str | None, method: str) -> None:
    """Raise ``ValueError`` for a PKCE method, challenge or redirect URI Criteo would refuse."""
    if method not in _PKCE_METHODS:
        raise ValueError(f"code_challenge_method must be 'S256' or 'plain', not {method!r}")
    if challenge is not None:
        _check_challenge(challenge, method)
    _check_redirect_uri(redirect_uri)


def _check_redirect_uri(redirect_uri: str) -> None:
    """The fake's redirect URI rules.

    Criteo sends the browser back only to a redirect URI declared in the app (CRITEO.md). The
    fake has no app registry, so it checks the shape alone: an absolute URL with a host, no
    fragment (a fragment never reaches a server) and no whitespace. It takes ``http`` as
    well as ``https``, so that a test can receive the redirect on a loopback callback.
    """
    try:
        parts = urlsplit(redirect_uri)
        has_host = bool(parts.hostname)
    except ValueError as exc:  # e.g. an invalid port or IPv6 literal
        raise ValueError(f"redirect_uri is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not has_host:
        raise ValueError("redirect_uri must be an absolute http(s) URL")
    if parts.fragment or redirect_uri.endswith("#"):
        raise ValueError("redirect_uri must not have a fragment")
    if any(c.isspace() for c in redirect_uri):
        raise ValueError("redirect_uri must not contain whitespace")


def _check_challenge(code_challenge: str, method: str) -> None:
    pattern = _S256_CHALLENGE_RE if method == "S256" else _PLAIN_CHALLENGE_RE
    if not pattern.fullmatch(code_challenge):
        shape = (
            "43 base64url characters without padding"
            if method == "S256"
            else "43 to 128 characters among A-Z a-z 0-9 - . _ ~"
        )
        raise ValueError(f"a {method} code_challenge must be {shape}")


def _read_consent_url(consent_url: str, page: str) -> _ConsentRequest:
    """What ``consent_url``, a URL of Criteo's consent ``page``, asks; ``ValueError`` if bad.

    The PKCE method defaults to ``plain`` when a challenge comes without one (RFC 7636, 4.3).
    """
    query = _consent_query(consent_url, page)
    if query.get("response_type") != "code":
        raise ValueError("consent_url must have response_type=code")
    missing = [name for name in ("client_id", "redirect_uri") if not query.get(name)]
    if missing:
        raise ValueError(f"consent_url lacks parameter(s): {', '.join(missing)}")
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method")
    if challenge is None and method is not None:
        raise ValueError("consent_url has code_challenge_method without code_challenge")
    return _ConsentRequest(
        client_id=query["client_id"],
        redirect_uri=query["redirect_uri"],
        challenge=challenge,
        method="plain" if method is None else method,
        state=query.get("state"),
    )


def _consent_query(consent_url: str, page: str) -> dict[str, str]:
    """The query of a URL of ``page`` (same scheme, host and path), each name at most once."""
    try:
        parts = urlsplit(consent_url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"consent_url is not a valid URL: {exc}") from None
    if parts[:3] != urlsplit(page)[:3]:  # scheme, netloc (no port, no user) and path
        raise ValueError(f"consent_url must start with {page}?")
    if parts.fragment or consent_url.endswith("#"):
        raise ValueError("consent_url must not have a fragment")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"consent_url has a malformed query: {exc}") from None
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"consent_url repeats parameter(s): {', '.join(repeated)}")
    return dict(pairs)


def _redirect_with(redirect_uri: str, code: str, state: str | None) -> str:
    """``redirect_uri`` with ``code`` (and ``state``) added to any query it already has."""
    answer = {"code": code}
    if state is not None:
        answer["state"] = state
    target = urlsplit(redirect_uri)
    joined = f"{target.query}&{urlencode(answer)}" if target.query else urlencode(answer)
    return urlunsplit(target._replace(query=joined))
