"""What the fake remembers of each request: :class:`SeenRequest`, with a ``repr`` that redacts.

What lives here: :class:`SeenRequest` and ``_seen_request``, which builds one from a parsed
request. What does not: deciding the answer (:mod:`~requests_criteo.testing.oauth`,
:mod:`~requests_criteo.testing.api`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from .server import _Handler

_SECURE: Final = "[secure]"
_SECRET_FIELDS: Final = frozenset(
    {"client_secret", "code", "refresh_token", "code_verifier", "access_token", "password"}
)
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True, repr=False)
class SeenRequest:
    """One request as :class:`FakeCriteo` received it.

    ``path`` includes the query string; ``headers`` keeps the header names as the client sent
    them (repeated headers are joined with ``", "``); ``form`` is the parsed form body of a token
    endpoint request (first value of each field) and ``{}`` for any other request; ``bearer`` is
    the credential of an ``Authorization: Bearer ...`` header, or ``None`` when the request had
    no Authorization header or one with another scheme.

    The ``repr`` redacts: the Authorization (and Cookie) header values, the ``client_secret``,
    ``code``, ``refresh_token`` and ``code_verifier`` form values and ``bearer`` show as
    ``[secure]``; the body is never shown, only its length.

    >>> seen = fake.api_calls()[-1]  # doctest: +SKIP
    >>> seen.header("authorization")  # doctest: +SKIP
    'Bearer eyJhbGciOi...'
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]
    bearer: str | None

    def header(self, name: str) -> str | None:
        """Return the value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def __repr__(self) -> str:
        headers = {
            key: (_SECURE if key.lower() in _SECRET_HEADERS else value)
            for key, value in self.headers.items()
        }
        form = {
            key: (_SECURE if key in _SECRET_FIELDS else value) for key, value in self.form.items()
        }
        bearer = None if self.bearer is None else _SECURE
        return (
            f"SeenRequest(method={self.method!r}, path={self.path!r}, headers={headers!r}, "
            f"form={form!r}, bearer={bearer!r}, body=<{len(self.body)} bytes>)"
        )


def _seen_request(handler: _Handler, *, is_token: bool) -> SeenRequest:
    """The request ``handler`` has just read; its form is parsed only for the token endpoint."""
    form: dict[str, str] = {}
    if is_token:
        for key, value in parse_qsl(
            handler.body.decode("utf-8", "replace"), keep_blank_values=True
        ):
            form.setdefault(key, value)
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return SeenRequest(
        method=handler.command,
        path=handler.path,
        headers=headers,
        body=handler.body,
        form=form,
        bearer=_bearer(handler.headers.get("Authorization")),
    )


def _bearer(authorization: str | None) -> str | None:
    if authorization is None or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip()
