"""The token endpoint's answer judged: its bytes and status in, a token or an error out.

What lives here: :func:`judge`, which turns an answer that was read into a
:class:`~requests_criteo._cache.Token` or the error to raise, and the checks it makes;
:data:`MAX_TOKEN_BODY` and the errors for an answer longer than that. What does not:
HTTP (sending, retrying, reading the body: :mod:`._token`). This module imports nothing
of requests (its errors come from :mod:`.exceptions`): every check runs on bytes alone.

Errors are returned, not raised: a frame that raises while it handles an answer would
chain that answer to the error (``__context__``), and error trackers print frame locals.
Every piece of server text that reaches a message goes through :func:`safe_text`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from oauthlib.oauth2.rfc6749.parameters import parse_token_response

from ._cache import Token, lifetime_from
from ._text import safe_text, secret_forms
from .exceptions import CriteoAuthError, InvalidTokenResponse, TokenRequestError

#: The largest token answer read; a Criteo token answer is about 1.5 KB.
MAX_TOKEN_BODY = 64 * 1024
#: A token must be visible ASCII without spaces to go in an ``Authorization`` header.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def judge(
    body: bytes, status: int, obtained_at: float, secrets: Sequence[str]
) -> Token | CriteoAuthError:
    """The token in a 2xx answer, or the error for any answer (returned, not raised).

    :param obtained_at: the cache's clock when the request was sent: the token's life
        starts then.
    :param secrets: the values of the form that must never appear in an error, nor be
        taken for a token.
    """
    if 300 <= status < 400:
        return TokenRequestError(
            f"the token endpoint answered a redirect (HTTP {status}); it was not "
            "followed, so the client secret went nowhere else. Check token_url.",
            status_code=status,
        )
    data = _json(body)
    if status >= 400 or (isinstance(data, dict) and "error" in data):
        return _refusal(body, status, secrets)
    if not isinstance(data, dict):
        return _not_an_object(body, data, status)
    problem = _unusable(data, status, secrets)
    if problem is not None:
        return problem
    refresh_token = data.get("refresh_token")
    return Token(
        data["access_token"],
        lifetime=lifetime_from(data.get("expires_in")),
        obtained_at=obtained_at,
        refresh_token=refresh_token or None,
    )


def _refusal(body: bytes, status: int, secrets: Sequence[str]) -> TokenRequestError:
    """The error for a refusal; every piece of server text in it made safe."""
    data = _json(body)
    error = description = trace_id = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):
            error = safe_text(data["error"], secrets, limit=64)
        if isinstance(data.get("error_description"), str):
            description = safe_text(data["error_description"], secrets)
        raw_trace_id = _trace_id(data)
        if raw_trace_id is not None:
            trace_id = safe_text(raw_trace_id, secrets, limit=100)
    message = f"the token endpoint refused the request: HTTP {status}"
    if error:
        message += f" {error}"
    if description:
        message += f": {description}"
    if trace_id:
        message += f" (trace id {trace_id})"
    return TokenRequestError(
        message,
        status_code=status,
        error=error,
        error_description=description,
        trace_id=trace_id,
    )


def length_refusal(content_length: str) -> InvalidTokenResponse | None:
    """The error for a Content-Length no token answer has (then it is not read), or ``None``."""
    try:
        declared = int(content_length)
    except ValueError:
        return InvalidTokenResponse("the token endpoint sent an invalid Content-Length")
    if declared > MAX_TOKEN_BODY:
        return InvalidTokenResponse(
            f"the token endpoint's answer is {declared} bytes, more than the "
            f"{MAX_TOKEN_BODY} a token answer can be; it was not read"
        )
    return None


def size_refusal(body: bytes) -> InvalidTokenResponse | None:
    """The error for a body read past :data:`MAX_TOKEN_BODY`, or ``None``."""
    if len(body) <= MAX_TOKEN_BODY:
        return None
    return InvalidTokenResponse(
        f"the token endpoint's answer is larger than {MAX_TOKEN_BODY} bytes, "
        "more than a token answer can be; reading stopped"
    )


def _json(body: bytes) -> object:
    """The JSON value of *body*, or ``None`` when it is not UTF-8 JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _not_an_object(body: bytes, data: object, status: int) -> InvalidTokenResponse:
    kind = (
        "empty"
        if not body.strip()
        else ("not JSON" if data is None else f"a JSON {type(data).__name__}")
    )
    return InvalidTokenResponse(
        f"the token endpoint answered HTTP {status} with a body that is {kind}, "
        "not a JSON object with an access_token"
    )


def _unusable(
    data: dict[str, Any], status: int, secrets: Sequence[str]
) -> InvalidTokenResponse | None:
    """What makes a 2xx answer's token unusable, or ``None`` when it can be used."""
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        return InvalidTokenResponse(
            f"the token endpoint answered HTTP {status} without a usable access_token"
        )
    if not _HEADER_SAFE.fullmatch(access_token):
        return InvalidTokenResponse(
            "the token endpoint sent an access_token that cannot go in an HTTP header "
            "(spaces, line breaks or non-ASCII characters); it was not used"
        )
    if any(form in access_token for secret in secrets for form in secret_forms(secret)):
        # A server echoing the form must never turn the secret into a bearer token.
        return InvalidTokenResponse(
            "the token endpoint sent an access_token that contains a credential of the "
            "request (the client secret, a code or a refresh token); it was not used"
        )
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        return InvalidTokenResponse(
            "the token endpoint sent a token_type other than Bearer; only bearer "
            "tokens are supported"
        )
    refresh_token = data.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        return InvalidTokenResponse("the token endpoint sent a refresh_token that is not text")
    refused_by = _oauthlib_refusal(data)
    if refused_by is not None:
        return InvalidTokenResponse(
            f"the token endpoint's answer was refused by oauthlib ({refused_by})"
        )
    return None


def _trace_id(data: dict[str, Any]) -> str | None:
    """Criteo's trace id from an answer: top level, or in its first error.

    Returned whole: it is cut only after its secrets are replaced (a secret straddling the
    cut would otherwise leave its first part in the message).
    """
    holders: list[dict[str, Any]] = [data]
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        holders.append(errors[0])
    for holder in holders:
        for key in ("traceId", "traceIdentifier", "trace_id"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _oauthlib_refusal(data: dict[str, Any]) -> str | None:
    """The name of what oauthlib raised checking the answer's shape, or ``None`` if it passed.

    Returned rather than raised: oauthlib's exception and its frames hold the answer, and
    an error raised while handling it would carry them along as its ``__context__``.
    expires_in is ours to judge (oauthlib refuses "900.0" and crashes on NaN), so it is left
    out; token_type is set to what was already checked, so that oauthlib never consults its
    process-wide OAUTHLIB_STRICT_TOKEN_TYPE switch.
    """
    checked = {k: v for k, v in data.items() if k not in ("expires_in", "expires_at")}
    checked["token_type"] = "Bearer"  # noqa: S105 - a token type, not a secret
    try:
        parse_token_response(json.dumps(checked))
    except Exception as exc:  # OAuth2Error, ValueError, Warning, or a crash on odd types
        return type(exc).__name__
    return None
