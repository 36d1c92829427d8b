"""The consent step of authorization-code apps: the consent URL and the redirect back.

What lives here: :func:`consent_url` (built with oauthlib's ``WebApplicationClient``, with
PKCE S256 by default) and :func:`code_from_redirect` (the code out of the URL the browser
was sent back to, after checking its state). What does not: exchanging the code, which is
:meth:`~requests_criteo.CriteoAuth.from_authorization_code`.

Criteo's consent page is ``https://consent.criteo.com/request``; it sends the browser back
to the app's ``redirect_uri`` — https, declared in the app — with ``code`` and ``state``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from oauthlib.oauth2 import WebApplicationClient

from . import _origins
from .exceptions import ConsentRequiredError, InsecureTransportError

__all__ = ["CONSENT_URL", "ConsentRequest", "code_from_redirect", "consent_url"]

#: Criteo's consent page.
CONSENT_URL = "https://consent.criteo.com/request"


@dataclass(frozen=True, repr=False)
class ConsentRequest:
    """A consent URL and what the app must keep until the user comes back.

    :ivar url: where to send the user.
    :ivar state: the anti-forgery value the redirect must carry back.
    :ivar code_verifier: the PKCE secret to pass to the code exchange (``None`` without
        PKCE). Keep it server-side; its ``repr`` is hidden.
    :ivar redirect_uri: the redirect URI the exchange must repeat.
    """

    url: str
    state: str
    code_verifier: str | None
    redirect_uri: str

    def __repr__(self) -> str:
        verifier = "[secure]" if self.code_verifier else None
        return f"ConsentRequest(url={self.url!r}, code_verifier={verifier})"


def _check_redirect_uri(redirect_uri: str) -> None:
    if not isinstance(redirect_uri, str) or not redirect_uri:
        raise TypeError("redirect_uri must be the https URL declared in your Criteo app")
    try:
        _origins.parse_origin(redirect_uri, what="redirect_uri", allow_path=True, allow_query=True)
    except InsecureTransportError:
        raise InsecureTransportError(
            f"redirect_uri {redirect_uri!r} is plain http: Criteo requires https "
            "(plain http is accepted for loopback hosts only)"
        ) from None


def consent_url(
    client_id: str, redirect_uri: str, state: str | None = None, pkce: bool = True
) -> ConsentRequest:
    """The URL that asks a user to let your app act for their Criteo accounts.

    ::

        request = requests_criteo.consent_url(client_id, "https://app.example/criteo/callback")
        session["criteo_state"] = request.state
        session["criteo_verifier"] = request.code_verifier
        return redirect(request.url)

    :param state: the anti-forgery value; a random one is made when ``None``.
    :param pkce: add an S256 code challenge (Criteo's PKCE). Once an app has PKCE switched
        on, only PKCE works; without it, pass ``pkce=False``.
    :raises InsecureTransportError: *redirect_uri* is plain http and not loopback.
    """
    if not isinstance(client_id, str) or not client_id:
        raise TypeError("client_id must be the non-empty client id of your Criteo app")
    _check_redirect_uri(redirect_uri)
    state = state if state is not None else secrets.token_urlsafe(32)
    client = WebApplicationClient(client_id)
    verifier = challenge = None
    if pkce:
        verifier = client.create_code_verifier(64)
        challenge = client.create_code_challenge(verifier, "S256")
    url = client.prepare_request_uri(
        CONSENT_URL,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256" if pkce else None,
    )
    return ConsentRequest(url, state, verifier, redirect_uri)


def code_from_redirect(redirect: str, state: str | None) -> str:
    """The authorization code in *redirect*, the URL the browser was sent back to.

    A bare code (no ``?`` and no ``=``) is returned as it is, for users who copy only
    the code. Otherwise the URL's ``state`` must equal *state*.

    :raises ConsentRequiredError: the redirect carries an ``error`` (the user declined),
        no code, or a state that does not match (a forged or stale redirect).
    """
    redirect = redirect.strip()
    if "?" not in redirect and "=" not in redirect:
        if not redirect:
            raise ConsentRequiredError("no authorization code given")
        return redirect
    query = parse_qs(urlsplit(redirect).query)
    if "error" in query:
        raise ConsentRequiredError(
            f"consent was not given: {query['error'][0][:100]}", error=query["error"][0][:64]
        )
    if state is not None and query.get("state", [None])[0] != state:
        raise ConsentRequiredError(
            "the redirect's state does not match the consent request's: not using its code "
            "(a stale or forged redirect); start the consent again"
        )
    codes = query.get("code")
    if not codes or not codes[0]:
        raise ConsentRequiredError("the redirect URL carries no authorization code")
    return codes[0]
