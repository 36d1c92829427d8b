"""The fake's API: every path but the token endpoint.

What lives here: ``_respond``, where every request enters (it is logged, then handed to
the token endpoint or answered here); ``_answer_api_call``, which answers a canned answer,
or checks the route, the bearer token and the rate limit in turn and answers Criteo's error
envelope or the call (``/me`` describes the client, any other versioned path is echoed);
``_CannedAnswers`` (what :meth:`FakeCriteo.set_response` registers); ``_is_reporting`` and
``_error_envelope``. What does not: the token endpoint (:mod:`~requests_criteo.testing.oauth`),
the record of tokens (:mod:`~requests_criteo.testing.tokens`) and the per-minute budgets
(:mod:`~requests_criteo.testing.rates`).

The reporting paths, versions and error envelopes are the fake's own, written from
Criteo's documentation as summed up in this project's CRITEO.md ("Using the token",
"Response envelope", "Rate limits"), not imported from the library: the fake exists to
check the library, so it must not check it against itself.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._wire import _JSON, _check_status, _dumps, _split_path, _to_bytes
from .oauth import TOKEN_PATH, _answer_token_request
from .seen import SeenRequest, _seen_request
from .server import _Handler
from .tokens import _Authority

if TYPE_CHECKING:
    from .fake import FakeCriteo
    from .rates import _RateWindows

_VERSION: Final = r"(?:[0-9]{4}-(?:0[1-9]|1[0-2])|preview|experimental)"
_VERSION_RE: Final = re.compile(_VERSION)
_ME_RE: Final = re.compile(f"/{_VERSION}/(?:retail-media|marketing-solutions)/me")
# CRITEO.md, "Rate limits" and "Using the token": reporting endpoints have their own, lower
# budget (40 calls a minute): /{version}/statistics/report, /placements/report,
# /transactions/report, /log-level, and the report paths of the products, .../reports/...
_REPORTING_SEGMENTS: Final = frozenset({"report", "reports", "log-level"})


def _is_reporting(path: str) -> bool:
    """Whether ``path`` (no query) counts against the reporting budget."""
    return not _REPORTING_SEGMENTS.isdisjoint(path.lower().split("/"))


def _error_envelope(
    error_type: str, code: str, instance: str, title: str, **extra: str
) -> dict[str, list[dict[str, str]]]:
    """Criteo's error envelope with one error, under a new trace id."""
    error = {
        "traceId": str(uuid.uuid4()),
        "type": error_type,
        "code": code,
        "instance": instance,
        "title": title,
        **extra,
    }
    return {"errors": [error]}


class _EnvelopeError(Exception):
    """An API call refused with Criteo's error envelope (``extra``: more fields of the error)."""

    def __init__(
        self,
        status: int,
        error_type: str,
        code: str,
        title: str,
        headers: Iterable[tuple[str, str]] = (),
        **extra: str,
    ) -> None:
        super().__init__(title)
        self.status, self.headers = status, tuple(headers)
        self.what = (error_type, code, title)
        self.extra = extra

    def send(self, handler: _Handler, instance: str) -> None:
        error_type, code, title = self.what
        envelope = _error_envelope(error_type, code, instance, title, **self.extra)
        handler.answer_json(self.status, envelope, self.headers)


@dataclass(frozen=True)
class _Canned:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    authorize: bool


class _CannedAnswers:
    """Answers registered by path and method (``None``: any method)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str | None], _Canned] = {}

    def set(self, path: str, method: str | None, answer: _Canned) -> None:
        """Register ``answer`` for ``path`` (its query ignored); not on the token endpoint."""
        path = _split_path(path)
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if path == TOKEN_PATH:
            raise ValueError("use inject_token_fault() for the token endpoint")
        with self._lock:
            self._answers[(path, None if method is None else method.upper())] = answer

    def find(self, path: str, method: str) -> _Canned | None:
        """The answer for ``method`` on ``path``, else the one for any method, else ``None``."""
        with self._lock:
            return self._answers.get((path, method.upper())) or self._answers.get((path, None))

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


def _canned(
    status: int,
    json: object,
    body: bytes | str | None,
    headers: Mapping[str, str] | None,
    authorize: bool,
) -> _Canned:
    """A canned answer; a ``json`` value is sent as JSON unless a Content-Type is given."""
    _check_status(status)
    if json is not None and body is not None:
        raise ValueError("give json or body, not both")
    header_items = tuple((headers or {}).items())
    if json is None:
        return _Canned(status, _to_bytes(body), header_items, authorize)
    if not any(name.lower() == "content-type" for name, _ in header_items):
        header_items = (("Content-Type", _JSON), *header_items)
    return _Canned(status, _dumps(json), header_items, authorize)


def _answer_api_call(
    handler: _Handler,
    seen: SeenRequest,
    path: str,
    authority: _Authority,
    answers: _CannedAnswers,
    rates: _RateWindows,
) -> None:
    """Answer one request to a path other than the token endpoint (``path``: no query)."""
    canned = answers.find(path, seen.method)
    if canned is not None and not canned.authorize:
        handler.answer(canned.status, canned.body, canned.headers)
        return
    try:
        if canned is None:
            _check_route(path)
        client_id = _caller(seen, authority)
        rate_headers = rates.admit(client_id, path)
    except _EnvelopeError as refusal:
        refusal.send(handler, path)
        return
    if canned is not None:
        handler.answer(canned.status, canned.body, [*canned.headers, *rate_headers])
    else:
        handler.answer_json(200, _call_answer(client_id, seen, path), rate_headers)


def _check_route(path: str) -> None:
    """Only versioned paths, ``/{YYYY-MM|preview|experimental}/...``, are Criteo's API."""
    segments = path.split("/")
    if len(segments) < 2 or _VERSION_RE.fullmatch(segments[1]) is None:
        raise _EnvelopeError(404, "not-found", "not-found", "The requested resource was not found")


def _caller(seen: SeenRequest, authority: _Authority) -> str:
    """The client whose valid bearer token the request carries; ``_EnvelopeError`` (401) if none."""
    if not seen.bearer or any(c.isspace() for c in seen.bearer):
        raise _EnvelopeError(
            401,
            "authorization",
            "authorization-token-invalid",
            "The authorization header is invalid",
        )
    client_id = authority.client_for(seen.bearer)
    if client_id is None:
        raise _EnvelopeError(
            401,
            "authorization",
            "authorization-token-expired",
            "The authorization token has expired",
        )
    return client_id


def _call_answer(client_id: str, seen: SeenRequest, path: str) -> dict[str, object]:
    """``/me`` describes the calling application; any other call is echoed."""
    if _ME_RE.fullmatch(path):
        return {
            "data": {"id": client_id, "type": "Application", "attributes": {"clientId": client_id}}
        }
    echo = {
        "method": seen.method,
        "path": seen.path,
        "bodyLength": len(seen.body),
        "bodySha256": hashlib.sha256(seen.body).hexdigest(),
    }
    return {"data": {"type": "Echo", "attributes": echo}}


def _respond(fake: FakeCriteo, handler: _Handler) -> None:
    """Every request enters here: it is logged, then answered by the token endpoint or the API."""
    path = _split_path(handler.path)
    is_token = path == TOKEN_PATH
    seen = _seen_request(handler, is_token=is_token)
    fake._record(seen, token=is_token)
    body_error = handler.body_error
    if body_error is not None:
        error = {"error": "invalid_request", "error_description": body_error.message}
        handler.answer_json(body_error.status, error, [("Connection", "close")])
        return
    try:
        if is_token:
            _answer_token_request(handler, seen, fake._token_faults, fake._authority)
        else:
            _answer_api_call(handler, seen, path, fake._authority, fake._answers, fake._rates)
    except OSError:
        raise
    except Exception as exc:  # a bug in the fake: say so instead of dropping the connection
        detail = f"{type(exc).__name__}: {exc}"
        title = "FakeCriteo failed to answer"
        _EnvelopeError(500, "internal", "fake-criteo-internal-error", title, detail=detail).send(
            handler, path
        )
