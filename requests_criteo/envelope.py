"""Criteo's error envelope: reading ``errors`` and ``warnings`` and raising on failure.

What lives here: :class:`Problem` (one entry of ``errors`` or ``warnings``),
:class:`Envelope` (both lists), :func:`envelope` (read them from any response, a 200
included) and :func:`raise_for_status` (raise :class:`~requests_criteo.CriteoAPIError`
for a 4xx or 5xx). What does not: authentication.

Criteo answers errors as ``{"errors": [{"traceId", "type", "code", "instance", "title",
"detail", "source"}]}`` (older services say ``traceIdentifier``); Marketing Solutions
adds ``warnings`` of the same shape, and a 200 can carry ``errors`` too. Bodies that are
not JSON, or JSON of another shape, give empty lists: reading them never raises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ._reading import body_unread, read_capped
from ._text import redact, safe_text
from .exceptions import CriteoAPIError

__all__ = ["Envelope", "Problem", "envelope", "raise_for_status"]

#: The most of a body read to look for an envelope (Criteo's are a few KB).
MAX_ENVELOPE_BODY = 1024 * 1024
_FIELD = 500
#: Where a message built from an envelope is cut.
_MESSAGE = 1000


def _text(value: object, secrets: Sequence[str | None] = ()) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return redact(value, secrets)[:_FIELD]
    if isinstance(value, (int, float, bool)):
        return str(value)
    return None


@dataclass(frozen=True)
class Problem:
    """One entry of Criteo's ``errors`` or ``warnings``.

    Every field may be ``None``: Criteo's services do not all fill every field.
    ``source`` says which part of the request was wrong, e.g. ``{"ids": "data/attributes/ids"}``.
    """

    code: str | None = None
    title: str | None = None
    detail: str | None = None
    type: str | None = None
    trace_id: str | None = None
    instance: str | None = None
    source: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, item: object, secrets: Sequence[str | None] = ()) -> Problem | None:
        """The problem described by *item*, or ``None`` if it is not an object.

        *secrets* (the bearer token the request carried: an API may echo it) are replaced
        by ``[secure]`` in every field, before the field is cut.
        """
        if not isinstance(item, dict):
            return None
        source = item.get("source")
        return cls(
            code=_text(item.get("code"), secrets),
            title=_text(item.get("title"), secrets),
            detail=_text(item.get("detail"), secrets),
            type=_text(item.get("type"), secrets),
            trace_id=_text(item.get("traceId"), secrets)
            or _text(item.get("traceIdentifier"), secrets),
            instance=_text(item.get("instance"), secrets),
            source={
                str(k)[:_FIELD]: redact(v, secrets)[:_FIELD]
                for k, v in (source.items() if isinstance(source, dict) else ())
                if isinstance(v, str)
            },
        )

    def __str__(self) -> str:
        parts = [p for p in (self.code, self.title) if p]
        text = ": ".join(parts) if parts else "(no code or title)"
        if self.source:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.source.items()) + ")"
        return safe_text(text, limit=_MESSAGE)


@dataclass(frozen=True)
class Envelope:
    """The ``errors`` and ``warnings`` of a Criteo response (both empty when it had none)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.errors or self.warnings)


def _body(response: requests.Response, *, may_read: bool) -> Any:
    """The JSON of *response*'s body, reading at most MAX_ENVELOPE_BODY of a stream.

    A body not yet read (see :func:`._reading.body_unread`) is read, capped, only when
    *may_read*: :func:`envelope` must not eat a body the caller is streaming,
    :func:`raise_for_status` may (it is an error).
    """
    if not may_read and body_unread(response):
        return None
    return json_of(read_capped(response, MAX_ENVELOPE_BODY), response.encoding)


def json_of(content: bytes, encoding: str | None) -> object:
    """The JSON of a body read within the cap; ``None`` if empty, over it, or not JSON."""
    if not content or len(content) > MAX_ENVELOPE_BODY:
        return None
    try:
        return json.loads(content.decode(encoding or "utf-8", errors="replace"))
    except (ValueError, LookupError):
        return None


def envelope(response: requests.Response) -> Envelope:
    """Read Criteo's ``errors`` and ``warnings`` from *response*, whatever its status.

    A ``stream=True`` response whose body has not been read gives an empty envelope: the
    body is the caller's to stream. A body over 1 MiB is not parsed.

    ::

        r = session.post(url, json=payload)
        for warning in requests_criteo.envelope(r).warnings:
            log.warning("Criteo: %s", warning)
    """
    return read_envelope(_body(response, may_read=False), [_bearer(response)])


def read_envelope(data: object, secrets: Sequence[str | None]) -> Envelope:
    if not isinstance(data, dict):
        return Envelope()

    def problems(key: str) -> list[Problem]:
        items = data.get(key)
        if not isinstance(items, list):
            return []
        return [p for p in (Problem.from_json(i, secrets) for i in items) if p is not None]

    return Envelope(errors=problems("errors"), warnings=problems("warnings"))


def raise_for_status(response: requests.Response) -> requests.Response:
    """Raise :class:`~requests_criteo.CriteoAPIError` for a 4xx or 5xx; return a 2xx/3xx.

    Like ``response.raise_for_status()``, but the exception carries Criteo's parsed
    ``errors`` and ``warnings`` and a one-line message a person can act on::

        try:
            requests_criteo.raise_for_status(session.get(url))
        except requests_criteo.CriteoAPIError as exc:
            print(exc)          # 403 insufficient-advertisers-permissions: ... (trace id ...)

    For an httpx response, :func:`requests_criteo.httpx.raise_for_status`.
    """
    if not isinstance(response, requests.Response):
        raise TypeError(
            f"raise_for_status takes a requests.Response, not {type(response).__name__} "
            "(for httpx: requests_criteo.httpx.raise_for_status)"
        )
    if response.status_code < 400:
        return response
    request, bearer = response.request, _bearer(response)
    found = read_envelope(_body(response, may_read=True), [bearer])
    where = (request.method or "", response.url or "") if request is not None else None
    raise CriteoAPIError(
        summary(f"{response.status_code} {response.reason or ''}", where, found, bearer),
        response=response,
        errors=found.errors,
        warnings=found.warnings,
    )


def summary(status: str, where: tuple[str, str] | None, found: Envelope, bearer: str | None) -> str:
    """One line for the error: the *status*, the ``(method, url)`` of the call if known,
    and Criteo's first error, made safe (see :func:`safe_text`).

    The *bearer* token the request carried counts as a secret: an API may echo it.
    """
    message = f"HTTP {status.strip()}"
    if where is not None:
        message += f" for {where[0]} {where[1].split('?', 1)[0]}"
    if found.errors:
        first = found.errors[0]
        message += f": {first}"
        if first.detail and first.detail != first.title:
            message += f" - {first.detail}"
        if first.trace_id:
            message += f" (trace id {first.trace_id})"
        if len(found.errors) > 1:
            message += f" (+{len(found.errors) - 1} more)"
    return safe_text(message, [bearer], limit=_MESSAGE)


def _bearer(response: requests.Response) -> str | None:
    """The bearer token *response*'s request carried, if any."""
    request = response.request
    return bearer_of(request.headers.get("Authorization") if request is not None else None)


def bearer_of(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` *header*, if it is one."""
    if header is not None and header[:7].lower() == "bearer ":
        return header[7:]
    return None
