"""The fake's token endpoint, ``POST /oauth2/token``: its answers and its injected faults.

What lives here: ``_answer_token_request``, which plays an injected fault or checks the
request step by step (method, form encoding, fields, client) and answers a grant or
Criteo's OAuth2 error shape, and ``_TokenFaults``, the queue of faults a test injects. What
does not: the record of clients, tokens, codes and consents
(:mod:`~requests_criteo.testing.tokens`), and every other path
(:mod:`~requests_criteo.testing.api`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from ._wire import _check_status, _to_bytes
from .seen import SeenRequest
from .server import _Handler
from .tokens import _Authority, _GrantError

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a path, not a password
"""Path of the token endpoint (the same on Criteo: it carries no version)."""

_INVALID_CLIENT: Final = (
    "The client authentication failed, the provided client_id doesn't exist "
    "or the client_secret is invalid"
)
_NO_STORE: Final = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
_FORM: Final = "application/x-www-form-urlencoded"


@dataclass
class _Fault:
    status: int | None
    body: bytes
    headers: tuple[tuple[str, str], ...]
    delay: float
    drop: bool
    remaining: int


class _TokenFaults:
    """Faults waiting for the next token requests, first in, first out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[_Fault] = deque()

    def add(
        self,
        status: int | None,
        body: bytes | str | None,
        headers: Mapping[str, str] | None,
        delay: float,
        drop: bool,
        times: int,
    ) -> None:
        """Queue a fault for ``times`` requests; ``ValueError`` for one that makes no sense."""
        if status is not None:
            _check_status(status)
        elif (body is not None or headers) and not drop:
            raise ValueError("body and headers need a status")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        headers_items = tuple((headers or {}).items())
        fault = _Fault(status, _to_bytes(body), headers_items, delay, drop, remaining=times)
        with self._lock:
            self._queue.append(fault)

    def next(self) -> _Fault | None:
        """The fault for this request, if any, counted against its ``times``."""
        with self._lock:
            if not self._queue:
                return None
            fault = self._queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._queue.popleft()
            return fault

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


def _answer_token_request(
    handler: _Handler, seen: SeenRequest, faults: _TokenFaults, authority: _Authority
) -> None:
    """Answer one request to the token endpoint."""
    fault = faults.next()
    if fault is not None and _play_fault(handler, fault):
        return
    if seen.method != "POST":
        handler.answer_json(
            405,
            _oauth_error("invalid_request", "The token endpoint only accepts POST"),
            [("Allow", "POST"), ("Cache-Control", "no-store")],
        )
        return
    try:
        answer = _grant(handler, seen, authority)
    except _GrantError as exc:
        handler.answer_json(400, _oauth_error(exc.error, exc.description), _NO_STORE)
        return
    handler.answer_json(200, answer, _NO_STORE)


def _play_fault(handler: _Handler, fault: _Fault) -> bool:
    """Delay, drop or answer as ``fault`` says; ``False`` when the real answer follows."""
    if fault.delay > 0 and handler.stopping.wait(fault.delay):
        handler.close_connection = True  # the fake is stopping: give up waiting
        return True
    if fault.drop:
        handler.close_connection = True
        return True
    if fault.status is not None:
        handler.answer(fault.status, fault.body, fault.headers)
        return True
    return False


def _grant(handler: _Handler, seen: SeenRequest, authority: _Authority) -> dict[str, object]:
    """The grant a well-formed request of a known client asks for; ``_GrantError`` if not."""
    _check_form(handler, seen)
    client_id = seen.form["client_id"]
    if not authority.authenticate(client_id, seen.form["client_secret"]):
        raise _GrantError("invalid_client", _INVALID_CLIENT)
    grant_type = seen.form["grant_type"]
    if grant_type == "client_credentials":
        token, expires_in = authority.issue(client_id)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": None,
        }
    if grant_type == "authorization_code":
        _require(seen.form, ("code", "redirect_uri"))
        verifier = seen.form.get("code_verifier") or None
        code, redirect_uri = seen.form["code"], seen.form["redirect_uri"]
        return authority.exchange_code(client_id, code, redirect_uri, verifier)
    if grant_type == "refresh_token":
        _require(seen.form, ("refresh_token",))
        return authority.rotate_refresh_token(client_id, seen.form["refresh_token"])
    raise _GrantError("unsupported_grant_type", f"The grant type {grant_type!r} is not supported")


def _check_form(handler: _Handler, seen: SeenRequest) -> None:
    """A form body, each field at most once, with the fields every grant needs."""
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise _GrantError("invalid_request", f"The request body must be {_FORM}")
    fields = parse_qsl(seen.body.decode("utf-8", "replace"), keep_blank_values=True)
    names = [name for name, _ in fields]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise _GrantError("invalid_request", f"Repeated parameter(s): {', '.join(duplicated)}")
    _require(seen.form, ("client_id", "client_secret", "grant_type"))


def _require(form: Mapping[str, str], names: tuple[str, ...]) -> None:
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise _GrantError("invalid_request", f"Missing parameter(s): {', '.join(missing)}")


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}
