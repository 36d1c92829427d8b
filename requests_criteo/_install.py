"""install() and uninstall(): authenticate Criteo calls made by code that never heard of us.

What lives here: the process-wide switch that wraps ``requests.Session.send``, so that every
``requests.get/post/...`` call and every session — new or old, whoever made it — has its
requests to the Criteo origins decorated by a :class:`~requests_criteo.CriteoAuth`.
What does not: the decoration itself (``CriteoAuth.apply``).

It also wraps ``Session.rebuild_auth`` to note where each redirect came from, so that a
redirect from another site into Criteo is not given a token.

Why ``Session.send``: ``requests.get`` and friends build a ``Session`` and call its
``send``; so does every session, including subclasses and sessions made before
``install()``, and including each hop of a redirect. Wrapping that one method reaches all
of them, keeps the user's own adapters in the path, and is undone by putting the
original function back: ``uninstall()`` restores requests exactly.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import requests

from ._request_path import note_redirect
from .auth import CriteoAuth

__all__ = ["Installation", "install", "installed", "uninstall"]

_lock = threading.Lock()
_stack: list[CriteoAuth] = []
# The send that _send wraps. Set at the first install() and never cleared: a thread still
# inside _send when another uninstalls must find it.
_original_send: Any = None


_original_rebuild_auth: Any = None


def _send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
    stack = _stack
    if stack:
        stack[-1].apply(request, keep_authorization=True)
    return _original_send(self, request, **kwargs)


def _rebuild_auth(
    self: requests.Session, prepared_request: requests.PreparedRequest, response: Any
) -> None:
    _original_rebuild_auth(self, prepared_request, response)
    note_redirect(prepared_request, response)


class Installation:
    """What :func:`install` returns; leaving its ``with`` block uninstalls that auth."""

    def __init__(self, auth: CriteoAuth) -> None:
        self.auth = auth

    def __repr__(self) -> str:
        return f"<Installation of {self.auth!r}>"

    def __enter__(self) -> CriteoAuth:
        return self.auth

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _lock:
            for i in range(len(_stack) - 1, -1, -1):
                if _stack[i] is self.auth:
                    del _stack[i]
                    break
            if not _stack:
                _restore()


def install(auth: CriteoAuth | None = None) -> Installation:
    """Authenticate every request this process sends to the Criteo origins.

    After ``install()``, plain ``requests.get(...)``, ``requests.post(...)`` and every
    ``requests.Session`` (made before or after) send a managed bearer token to Criteo —
    and only to Criteo. A call that sets its own ``Authorization`` header keeps it; if
    Criteo answers 401 to it, the call is resent once with a managed token, and later
    calls carrying that dead header get the managed token straight away. A call to the
    token endpoint itself passes through untouched. The two-line upgrade of a legacy
    script::

        import requests_criteo
        requests_criteo.install()          # credentials from CRITEO_CLIENT_ID/SECRET

    Also a context manager: ``with requests_criteo.install(auth): ...`` uninstalls on exit.

    :param auth: the auth to use; ``CriteoAuth.from_env()`` when ``None``.
    :raises MissingCredentialsError: no *auth* and the environment lacks a credential.
    """
    if auth is None:
        auth = CriteoAuth.from_env()
    if not isinstance(auth, CriteoAuth):
        raise TypeError(f"install() needs a CriteoAuth, not {type(auth).__name__}")
    global _original_send, _original_rebuild_auth
    with _lock:
        if requests.Session.send is not _send:
            _original_send = requests.Session.send
            _patch("send", _send)
        if requests.Session.rebuild_auth is not _rebuild_auth:
            _original_rebuild_auth = requests.Session.rebuild_auth
            _patch("rebuild_auth", _rebuild_auth)
        _stack.append(auth)
    return Installation(auth)


def uninstall() -> None:
    """Undo every :func:`install`: ``requests.Session.send`` is the original again.

    If something else has wrapped ``Session.send`` since, its wrapper is left in place (and
    ours passes requests through untouched) rather than removed.
    """
    with _lock:
        _stack.clear()
        _restore()


def installed() -> CriteoAuth | None:
    """The auth in force, or ``None`` when requests-criteo is not installed."""
    stack = _stack
    return stack[-1] if stack else None


def _restore() -> None:
    if requests.Session.send is _send:
        _patch("send", _original_send)
    if requests.Session.rebuild_auth is _rebuild_auth:
        _patch("rebuild_auth", _original_rebuild_auth)


def _patch(name: str, function: Any) -> None:
    """Set ``requests.Session.<name>``: the switch install() and uninstall() turn."""
    setattr(requests.Session, name, function)
