"""A local, in-process stand-in for Criteo's API, for tests.

What lives here:

* :class:`FakeCriteo`, a real HTTP/1.1 server on ``127.0.0.1`` (a free port) that speaks the
  parts of Criteo's API that matter for authentication: the OAuth2 token endpoint
  ``POST /oauth2/token`` (client credentials, single-use authorization codes with optional
  PKCE, rotating refresh tokens), Criteo's ``401`` error envelope for missing, malformed,
  unknown, revoked and expired tokens, the ``/{version}/retail-media/me`` and
  ``/{version}/marketing-solutions/me`` credential checks, and an echo of every other versioned
  API call. It records every request, counts them, and lets a test inject faults on the token
  endpoint (an error answer, a slow answer, a dropped connection) and register canned answers
  (a ``403``, a ``429`` with ``x-ratelimit-*`` headers, a redirect...). Criteo's consent page is
  not served: test helpers (:meth:`FakeCriteo.issue_code`, :meth:`FakeCriteo.consent_redirect`,
  :meth:`FakeCriteo.revoke_consent`) stand in for the user's browser.
* :class:`SeenRequest`, one request as the fake received it, with a ``repr`` that never shows a
  secret or a token.

What does not live here: no real Criteo business logic (campaigns, reports, paging), no
consent web page, no TLS, and no outgoing network traffic: the server binds to the loopback
interface only and never connects anywhere. The module uses the standard library only, so
importing it never pulls a test framework or a server dependency into an application.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import selectors
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .ratelimit import is_reporting

__all__ = ["CRITEO_TOKEN_URL", "FakeCriteo", "RedisServer", "SeenRequest", "add_token_endpoint"]

#: Criteo's real token endpoint, which :func:`add_token_endpoint` mocks by default.
CRITEO_TOKEN_URL: Final = "https://api.criteo.com/oauth2/token"  # noqa: S105 - a URL

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a path, not a password
"""Path of the token endpoint (the same on Criteo: it carries no version)."""
MAX_BODY: Final = 10 * 1024 * 1024
"""Largest request body the fake accepts (10 MiB); a larger one gets ``413``."""

_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_MAX_LINE: Final = 65536
_SECURE: Final = "[secure]"
_SECRET_FIELDS: Final = frozenset(
    {"client_secret", "code", "refresh_token", "code_verifier", "access_token", "password"}
)
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
_VERSION_RE: Final = re.compile(r"(?:[0-9]{4}-(?:0[1-9]|1[0-2])|preview|experimental)")
_ME_RE: Final = re.compile(
    r"/(?:[0-9]{4}-(?:0[1-9]|1[0-2])|preview|experimental)/(?:retail-media|marketing-solutions)/me"
)
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_JSON: Final = "application/json"
_INVALID_CLIENT: Final = (
    "The client authentication failed, the provided client_id doesn't exist "
    "or the client_secret is invalid"
)
_BAD_REFRESH: Final = "The refresh token is invalid or was already used"
_PKCE_METHODS: Final = frozenset({"S256", "plain"})
# RFC 7636: a verifier (and so a "plain" challenge) is 43-128 unreserved characters; an S256
# challenge is the unpadded base64url of a SHA-256 digest, 43 characters.
_PLAIN_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_S256_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_NO_STORE: Final = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _split_path(path: str) -> str:
    return path.partition("?")[0]


def _to_bytes(body: bytes | str | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _guess_content_type(body: bytes) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return _JSON


def _check_status(status: int) -> None:
    if not 200 <= status <= 599:
        raise ValueError(f"status must be between 200 and 599, not {status!r}")


def _check_redirect_uri(redirect_uri: str) -> None:
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


def _verifier_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        computed = _b64url(hashlib.sha256(verifier.encode("utf-8")).digest())
    else:
        computed = verifier
    return secrets.compare_digest(computed.encode("utf-8"), challenge.encode("utf-8"))


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


@dataclass
class _Grant:
    """One user consent, from a code exchange; its refresh tokens and access tokens share it."""

    client_id: str
    revoked: bool = False


@dataclass
class _Issued:
    client_id: str
    expires_at: float
    revoked: bool = False
    grant: _Grant | None = None  # None: a client-credentials token


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    spent: bool = False


@dataclass
class _Refresh:
    grant: _Grant
    rotated: bool = False


class _GrantError(Exception):
    """A refused grant: answered ``400 {"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class _Fault:
    status: int | None
    body: bytes
    headers: tuple[tuple[str, str], ...]
    delay: float
    drop: bool
    remaining: int


@dataclass(frozen=True)
class _Canned:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    authorize: bool


@dataclass
class _Running:
    server: _Server
    thread: threading.Thread
    wake_send: socket.socket
    wake_recv: socket.socket


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    """The HTTP server behind :class:`FakeCriteo`; tracks its connections so stop is prompt."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 drops SYNs under concurrent tests (1 s stalls)

    def __init__(self, fake: FakeCriteo) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed on loopback.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        thread = threading.Thread(
            target=self._run_connection,
            args=(request, client_address),
            name="FakeCriteo-connection",
            daemon=self.daemon_threads,
        )
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections[request] = thread
        thread.start()

    def _run_connection(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            if isinstance(request, socket.socket):
                with self._connections_lock:
                    self._connections.pop(request, None)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Stay silent: a client that hangs up is not worth a traceback on stderr."""

    def close_connections(self, timeout: float) -> None:
        """Wake up every connection thread (EOF on its socket) and wait for them, bounded."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def serve_until_woken(self, wake: socket.socket) -> None:
        """Accept connections until a byte arrives on ``wake`` (no polling delay on stop)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                try:
                    request, client_address = self.get_request()
                except OSError:
                    continue
                self.process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses one HTTP/1.1 request at a time and hands it to :class:`FakeCriteo`."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeCriteo/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent (the base class writes every request to stderr)."""

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
            if len(self.raw_requestline) > _MAX_LINE:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    # -- request parsing -------------------------------------------------------------------

    def _read_body(self) -> bytes:
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            codings = [c.strip().lower() for c in transfer_encoding.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise _BodyError(501, f"Unsupported Transfer-Encoding {transfer_encoding!r}")
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        length_text = length_text.strip()
        if not length_text.isdigit() or not length_text.isascii():
            raise _BodyError(400, f"Invalid Content-Length {length_text!r}")
        length = int(length_text)
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            raise _BodyError(413, f"Request body larger than {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BodyError(400, "Request body shorter than its Content-Length")
        return body

    def _drain(self, length: int) -> None:
        while length > 0:
            data = self.rfile.read(min(length, 1024 * 1024))
            if not data:
                return
            length -= len(data)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line.endswith(b"\n"):
                raise _BodyError(400, "Truncated chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or not _HEX_DIGITS.issuperset(size_text):
                raise _BodyError(400, f"Invalid chunk size {size_text!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > _DRAIN_LIMIT:
                raise _BodyError(413, f"Request body larger than {MAX_BODY} bytes")
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(_MAX_LINE + 1) != b"\r\n":
                raise _BodyError(400, "Truncated or malformed chunk")
            if total <= MAX_BODY:
                chunks.append(data)
        while True:  # trailer section, ended by an empty line
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line:
                raise _BodyError(400, "Truncated chunked body")
            if line in (b"\r\n", b"\n"):
                break
        if total > MAX_BODY:
            raise _BodyError(413, f"Request body larger than {MAX_BODY} bytes")
        return b"".join(chunks)

    def _received_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization")
        if value is None or value[:7].lower() != "bearer ":
            return None
        return value[7:].strip()

    # -- answering -------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        has_content_type = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in ("content-length", "transfer-encoding"):
                continue  # the fake always computes the framing itself
            if lowered == "connection":
                close = close or value.strip().lower() == "close"
                continue
            has_content_type = has_content_type or lowered == "content-type"
            self.send_header(name, value)
        if status in (204, 304):
            body = b""
        elif body and not has_content_type:
            self.send_header("Content-Type", _guess_content_type(body))
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, status: int, value: object, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self._send(status, _dumps(value), [("Content-Type", _JSON), *headers])

    def _send_envelope(
        self,
        status: int,
        error_type: str,
        code: str,
        instance: str,
        title: str,
        headers: Iterable[tuple[str, str]] = (),
        **extra: str,
    ) -> None:
        envelope = _error_envelope(error_type, code, instance, title, **extra)
        self._send_json(status, envelope, headers)

    def _send_oauth_error(self, status: int, error: str, description: str) -> None:
        self._send_json(status, {"error": error, "error_description": description}, _NO_STORE)

    # -- routing ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        fake = self._server.fake
        body_error: _BodyError | None = None
        try:
            body = self._read_body()
        except _BodyError as exc:
            body_error, body = exc, b""
        path_only = _split_path(self.path)
        is_token = path_only == TOKEN_PATH
        form: dict[str, str] = {}
        if is_token:
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(key, value)
        seen = SeenRequest(
            method=self.command,
            path=self.path,
            headers=self._received_headers(),
            body=body,
            form=form,
            bearer=self._bearer(),
        )
        fake._record(seen, token=is_token)
        if body_error is not None:
            self._send(
                body_error.status,
                _dumps({"error": "invalid_request", "error_description": body_error.message}),
                [("Content-Type", _JSON)],
                close=True,
            )
            return
        try:
            if is_token:
                self._token_endpoint(seen)
            else:
                self._api(seen, path_only)
        except OSError:
            raise
        except Exception as exc:  # a bug in the fake: say so instead of dropping the connection
            self._send_envelope(
                500,
                "internal",
                "fake-criteo-internal-error",
                path_only,
                "FakeCriteo failed to answer",
                detail=f"{type(exc).__name__}: {exc}",
            )

    def _token_endpoint(self, seen: SeenRequest) -> None:
        fake = self._server.fake
        fault = fake._next_fault()
        if fault is not None:
            if fault.delay > 0 and self._server.stopping.wait(fault.delay):
                self.close_connection = True
                return
            if fault.drop:
                self.close_connection = True
                return
            if fault.status is not None:
                self._send(fault.status, fault.body, fault.headers)
                return
        if seen.method != "POST":
            self._send(
                405,
                _dumps(
                    {
                        "error": "invalid_request",
                        "error_description": "The token endpoint only accepts POST",
                    }
                ),
                [("Content-Type", _JSON), ("Allow", "POST"), ("Cache-Control", "no-store")],
            )
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            self._send_oauth_error(
                400,
                "invalid_request",
                "The request body must be application/x-www-form-urlencoded",
            )
            return
        fields = parse_qsl(seen.body.decode("utf-8", "replace"), keep_blank_values=True)
        names = [name for name, _ in fields]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            self._send_oauth_error(
                400, "invalid_request", f"Repeated parameter(s): {', '.join(duplicated)}"
            )
            return
        missing = [
            name for name in ("client_id", "client_secret", "grant_type") if not seen.form.get(name)
        ]
        if missing:
            self._send_oauth_error(
                400, "invalid_request", f"Missing parameter(s): {', '.join(missing)}"
            )
            return
        client_id = seen.form["client_id"]
        if not fake._authenticate(client_id, seen.form["client_secret"]):
            self._send_oauth_error(400, "invalid_client", _INVALID_CLIENT)
            return
        grant_type = seen.form["grant_type"]
        if grant_type == "client_credentials":
            token, expires_in = fake._issue(client_id)
            self._send_json(
                200,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": expires_in,
                    "refresh_token": None,
                },
                _NO_STORE,
            )
            return
        if grant_type == "authorization_code":
            required: tuple[str, ...] = ("code", "redirect_uri")
        elif grant_type == "refresh_token":
            required = ("refresh_token",)
        else:
            self._send_oauth_error(
                400, "unsupported_grant_type", f"The grant type {grant_type!r} is not supported"
            )
            return
        missing = [name for name in required if not seen.form.get(name)]
        if missing:
            self._send_oauth_error(
                400, "invalid_request", f"Missing parameter(s): {', '.join(missing)}"
            )
            return
        try:
            if grant_type == "authorization_code":
                answer = fake._exchange_code(
                    client_id,
                    seen.form["code"],
                    seen.form["redirect_uri"],
                    seen.form.get("code_verifier") or None,
                )
            else:
                answer = fake._rotate_refresh_token(client_id, seen.form["refresh_token"])
        except _GrantError as exc:
            self._send_oauth_error(400, exc.error, exc.description)
            return
        self._send_json(200, answer, _NO_STORE)

    def _api(self, seen: SeenRequest, path_only: str) -> None:
        fake = self._server.fake
        canned = fake._canned(path_only, seen.method)
        segments = path_only.split("/")
        is_api = len(segments) > 1 and _VERSION_RE.fullmatch(segments[1]) is not None
        if canned is not None and not canned.authorize:
            self._send(canned.status, canned.body, canned.headers)
            return
        if canned is None and not is_api:
            self._send_envelope(
                404, "not-found", "not-found", path_only, "The requested resource was not found"
            )
            return
        if not seen.bearer or any(c.isspace() for c in seen.bearer):
            self._send_envelope(
                401,
                "authorization",
                "authorization-token-invalid",
                path_only,
                "The authorization header is invalid",
            )
            return
        client_id = fake._client_for(seen.bearer)
        if client_id is None:
            self._send_envelope(
                401,
                "authorization",
                "authorization-token-expired",
                path_only,
                "The authorization token has expired",
            )
            return
        allowed, rate_headers = fake._rate_check(client_id, path_only)
        if not allowed:
            self._send_envelope(
                429,
                "quota",
                "too-many-requests",
                path_only,
                "API rate limit exceeded",
                rate_headers,
            )
            return
        if canned is not None:
            self._send(canned.status, canned.body, [*canned.headers, *rate_headers])
        elif _ME_RE.fullmatch(path_only):
            self._send_json(
                200,
                {
                    "data": {
                        "id": client_id,
                        "type": "Application",
                        "attributes": {"clientId": client_id},
                    }
                },
                rate_headers,
            )
        else:
            self._send_json(
                200,
                {
                    "data": {
                        "type": "Echo",
                        "attributes": {
                            "method": seen.method,
                            "path": seen.path,
                            "bodyLength": len(seen.body),
                            "bodySha256": hashlib.sha256(seen.body).hexdigest(),
                        },
                    }
                },
                rate_headers,
            )


class FakeCriteo:
    """A local fake of Criteo's token endpoint and API, served over real HTTP/1.1.

    The server listens on ``127.0.0.1`` on a free port, answers on daemon threads, keeps
    connections alive and writes nothing to stderr. Everything it receives is kept in
    :attr:`requests` and counted (:attr:`token_requests`, :attr:`tokens_issued`,
    :attr:`api_requests`, and for the consent grants :attr:`codes_issued`,
    :attr:`code_exchanges`, :attr:`refreshes`, :attr:`refresh_token_reuses`).

    * ``POST /oauth2/token`` (form-encoded ``client_id``, ``client_secret``, ``grant_type``)
      first authenticates the client (``invalid_client`` otherwise), then answers a JWT-looking
      bearer token, ``expires_in`` = :attr:`lifetime`, for:

      - ``grant_type=client_credentials``, with ``"refresh_token": null``;
      - ``grant_type=authorization_code`` with ``code`` and ``redirect_uri`` (and
        ``code_verifier`` when the code has a PKCE challenge), for a code from
        :meth:`issue_code` or :meth:`consent_redirect`, with a new refresh token. A code is
        single-use: its client's first attempt spends it, successful or not;
      - ``grant_type=refresh_token`` with ``refresh_token``: the refresh token is rotated, the
        answer carries a new one and the old one is refused from then on (a reuse is counted
        in :attr:`refresh_token_reuses`). :meth:`revoke_consent` ends a consent.

      Errors use the OAuth2 shape ``{"error": ..., "error_description": ...}``: a bad, spent,
      foreign or revoked code or refresh token, a different ``redirect_uri`` or a wrong
      ``code_verifier`` give ``400 invalid_grant``.
    * ``/{version}/...`` (``YYYY-MM``, ``preview``, ``experimental``), any method: ``401`` with
      Criteo's error envelope unless the request carries a valid ``Authorization: Bearer``
      token; then ``/{version}/retail-media/me`` and ``/{version}/marketing-solutions/me``
      describe the client and every other path echoes the request (method, path, body length
      and SHA-256).
    * Any other path: ``404`` with an envelope, unless :meth:`set_response` registered it.

    Token expiry is decided by :attr:`timer` (``time.monotonic`` by default); inject a fake
    clock to expire tokens without sleeping.

    Example::

        import requests
        from requests_criteo.testing import FakeCriteo

        with FakeCriteo() as fake:
            token = requests.post(
                fake.token_url,
                data={
                    "client_id": FakeCriteo.CLIENT_ID,
                    "client_secret": FakeCriteo.CLIENT_SECRET,
                    "grant_type": "client_credentials",
                },
            ).json()["access_token"]
            me = requests.get(
                f"{fake.url}/2025-10/retail-media/me",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert me.json()["data"]["id"] == FakeCriteo.CLIENT_ID

            fake.inject_token_fault(503, body='{"error": "unavailable"}', times=2)
            fake.set_response("/2025-10/retail-media/accounts", status=429,
                              headers={"x-ratelimit-reset": "1628249355"})

    The authorization-code grant, the consent page played by :meth:`consent_redirect`::

        callback = fake.consent_redirect(
            "https://consent.criteo.com/request?response_type=code"
            f"&client_id={FakeCriteo.CLIENT_ID}&redirect_uri=https://app.example/cb"
            f"&state=xyz&code_challenge={challenge}&code_challenge_method=S256"
        )  # "https://app.example/cb?code=...&state=xyz"
        code = parse_qs(urlsplit(callback).query)["code"][0]
        client = {"client_id": FakeCriteo.CLIENT_ID, "client_secret": FakeCriteo.CLIENT_SECRET}
        tokens = requests.post(fake.token_url, data={
            **client, "grant_type": "authorization_code", "code": code,
            "redirect_uri": "https://app.example/cb", "code_verifier": verifier,
        }).json()
        tokens = requests.post(fake.token_url, data={
            **client, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        }).json()  # a new access token and a new refresh token; the old one is dead
        assert fake.refresh_token_reuses == 0
    """

    CLIENT_ID: Final = "fake-client-id"
    """The client id registered when no ``clients`` mapping is given."""
    CLIENT_SECRET: Final = "fake+client/secret=="  # noqa: S105 - a fake, public on purpose
    """Its secret; ``+``, ``/`` and ``=`` must be form-encoded, as in real Criteo secrets."""
    CONSENT_URL: Final = "https://consent.criteo.com/request"
    """Criteo's consent page, the only one :meth:`consent_redirect` accepts (query aside)."""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        lifetime: float = 900,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a stopped fake; ``clients`` maps client ids to secrets.

        ``lifetime`` is the ``expires_in`` (seconds) of the tokens issued; ``timer`` the clock
        against which their expiry is checked.
        """
        self.lifetime: float = lifetime
        """Seconds a token issued from now on lives (its ``expires_in``); settable any time."""
        self.timer: Callable[[], float] = timer
        """The clock that decides token expiry (seconds; only differences matter)."""
        self.requests: list[SeenRequest] = []
        """Every request received, oldest first (see also :meth:`reset_counters`)."""
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._clients: dict[str, str] = dict(
            {self.CLIENT_ID: self.CLIENT_SECRET} if clients is None else clients
        )
        self._tokens: dict[str, _Issued] = {}
        self._faults: deque[_Fault] = deque()
        self._responses: dict[tuple[str, str | None], _Canned] = {}
        self._token_requests = 0
        self._tokens_issued = 0
        self._api_requests = 0
        self.rate_limit: int | None = None
        """Calls a minute each client may make to ordinary API paths; ``None``: no limit.

        Counted in windows of 60 s of :attr:`timer`, like Criteo's per-minute budgets
        (250 for client-credentials apps). Over it, the fake answers 429 with Criteo's
        ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (the Unix
        time, by :attr:`wall_clock`, at which the window ends)."""
        self.reporting_rate_limit: int | None = None
        """The same for reporting paths (``.../report``, ``.../reports/...``; Criteo: 40)."""
        self.wall_clock: Callable[[], float] = time.time
        """The Unix time, for ``x-ratelimit-reset``."""
        self._rate_counts: dict[tuple[str, bool, int], int] = {}
        self._rate_limited = 0
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _Refresh] = {}
        self._grants: list[_Grant] = []
        self._codes_issued = 0
        self._code_exchanges = 0
        self._refreshes = 0
        self._refresh_token_reuses = 0
        self._running: _Running | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeCriteo:
        """Start serving (on a new free port) and return ``self``; no-op if already running."""
        with self._lifecycle:
            if self._running is not None:
                return self
            server = _Server(self)
            wake_recv, wake_send = socket.socketpair()
            thread = threading.Thread(
                target=server.serve_until_woken,
                args=(wake_recv,),
                name=f"FakeCriteo-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._running = _Running(server, thread, wake_send, wake_recv)
            return self

    def stop(self) -> None:
        """Stop serving promptly: close the listening socket and every open connection.

        Requests still waiting on an injected ``delay`` get their connection closed. Calling
        ``stop`` on a stopped fake does nothing.
        """
        with self._lifecycle:
            running, self._running = self._running, None
        if running is None:
            return
        running.server.stopping.set()
        with contextlib.suppress(OSError):
            running.wake_send.send(b"x")
        running.thread.join(5.0)
        running.server.server_close()
        running.server.close_connections(timeout=2.0)
        running.wake_send.close()
        running.wake_recv.close()

    def __enter__(self) -> FakeCriteo:
        """Start the fake (``with FakeCriteo() as fake:``)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the fake."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, ``"http://127.0.0.1:PORT"``; raises ``RuntimeError`` when not running."""
        running = self._running
        if running is None:
            raise RuntimeError("FakeCriteo is not running; call start() or use it in a with")
        return f"http://127.0.0.1:{running.server.server_port}"

    @property
    def token_url(self) -> str:
        """URL of the token endpoint, ``url + "/oauth2/token"``."""
        return self.url + TOKEN_PATH

    # -- clients and tokens ------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register (or replace the secret of) a client id."""
        with self._lock:
            self._clients[client_id] = client_secret

    def revoke(self, token: str | None = None) -> None:
        """Revoke one issued token, or every issued token when ``token`` is None.

        A revoked token gets ``401 authorization-token-expired``. Raises ``KeyError`` for a
        token this fake never issued (most likely a bug in the test).
        """
        with self._lock:
            if token is None:
                for issued in self._tokens.values():
                    issued.revoked = True
            elif token in self._tokens:
                self._tokens[token].revoked = True
            else:
                raise KeyError("FakeCriteo never issued this token")

    def expire_all(self) -> None:
        """Make every token issued so far expired (tokens issued later are unaffected)."""
        with self._lock:
            for issued in self._tokens.values():
                issued.expires_at = float("-inf")

    # -- authorization code and consent ------------------------------------------------------

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
    ) -> str:
        """Return a fresh authorization code, as Criteo's consent page would after a "yes".

        The code is bound to ``client_id``, ``redirect_uri`` (compared as an exact string at
        the exchange) and, when given, the PKCE ``code_challenge`` with
        ``code_challenge_method`` (``"S256"``: the unpadded base64url SHA-256 of the verifier;
        ``"plain"``: the verifier itself). It is single-use: the first exchange attempt by its
        client spends it, successful or not. Raises ``ValueError`` for an unregistered client,
        a method other than ``"S256"`` and ``"plain"``, a challenge not shaped as RFC 7636 says
        (an S256 challenge with ``=`` padding, say), or a ``redirect_uri`` that is not an
        absolute http(s) URL without fragment.
        """
        if code_challenge_method not in _PKCE_METHODS:
            raise ValueError(
                f"code_challenge_method must be 'S256' or 'plain', not {code_challenge_method!r}"
            )
        if code_challenge is not None:
            _check_challenge(code_challenge, code_challenge_method)
        _check_redirect_uri(redirect_uri)
        code = secrets.token_urlsafe(32)
        with self._lock:
            if client_id not in self._clients:
                raise ValueError("unknown client_id: register it with add_client() first")
            self._codes[code] = _Code(
                client_id, redirect_uri, code_challenge, code_challenge_method
            )
            self._codes_issued += 1
        return code

    def consent_redirect(self, consent_url: str) -> str:
        """Play the user consenting on Criteo's page: return where the browser is sent next.

        ``consent_url`` is the URL an app sends its user to,
        ``https://consent.criteo.com/request?response_type=code&client_id=...&redirect_uri=...``
        with optional ``state``, ``code_challenge`` and ``code_challenge_method`` (which, as RFC
        7636 says, defaults to ``plain`` when a challenge comes without it). A code is issued as
        by :meth:`issue_code` and the answer is ``{redirect_uri}?code={code}&state={state}``,
        ``state`` only when the consent URL had one, and any query of the redirect URI kept.
        Raises ``ValueError`` for another scheme, host or path, a fragment, a malformed or
        repeated query parameter, a ``response_type`` other than ``code``, a missing
        ``client_id`` or ``redirect_uri``, an unknown client or a bad challenge.
        """
        try:
            parts = urlsplit(consent_url)
        except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
            raise ValueError(f"consent_url is not a valid URL: {exc}") from None
        expected = urlsplit(self.CONSENT_URL)
        if parts[:3] != expected[:3]:  # scheme, netloc (no port, no user) and path
            raise ValueError(f"consent_url must start with {self.CONSENT_URL}?")
        if parts.fragment or consent_url.endswith("#"):
            raise ValueError("consent_url must not have a fragment")
        try:
            pairs = parse_qsl(
                parts.query, keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"consent_url has a malformed query: {exc}") from None
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"consent_url repeats parameter(s): {', '.join(repeated)}")
        query = dict(pairs)
        if query.get("response_type") != "code":
            raise ValueError("consent_url must have response_type=code")
        missing = [name for name in ("client_id", "redirect_uri") if not query.get(name)]
        if missing:
            raise ValueError(f"consent_url lacks parameter(s): {', '.join(missing)}")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is None and method is not None:
            raise ValueError("consent_url has code_challenge_method without code_challenge")
        redirect_uri = query["redirect_uri"]
        code = self.issue_code(
            query["client_id"],
            redirect_uri,
            code_challenge=challenge,
            code_challenge_method="plain" if method is None else method,
        )
        answer = {"code": code}
        if "state" in query:
            answer["state"] = query["state"]
        target = urlsplit(redirect_uri)
        joined = f"{target.query}&{urlencode(answer)}" if target.query else urlencode(answer)
        return urlunsplit(target._replace(query=joined))

    def revoke_consent(self, client_id: str | None = None) -> None:
        """End the users' consent to ``client_id`` (or to every client when ``None``).

        Every refresh token of that client then gets ``invalid_grant``, every access token
        issued by its code exchanges and refreshes gets ``401`` (as after :meth:`revoke`), and
        its codes not yet exchanged become unknown. Client-credentials tokens are untouched.
        Raises ``ValueError`` for an unregistered client id.
        """
        with self._lock:
            if client_id is not None and client_id not in self._clients:
                raise ValueError("unknown client_id")
            for grant in self._grants:
                if client_id is None or grant.client_id == client_id:
                    grant.revoked = True
            for issued in self._tokens.values():
                if issued.grant is not None and issued.grant.revoked:
                    issued.revoked = True
            for code, pending in list(self._codes.items()):
                if client_id is None or pending.client_id == client_id:
                    del self._codes[code]

    # -- counters and log --------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Requests that reached the token endpoint, faulted and refused ones included."""
        with self._lock:
            return self._token_requests

    @property
    def tokens_issued(self) -> int:
        """Token requests answered with a new token."""
        with self._lock:
            return self._tokens_issued

    @property
    def api_requests(self) -> int:
        """Requests to any path other than the token endpoint."""
        with self._lock:
            return self._api_requests

    @property
    def rate_limited(self) -> int:
        """API requests answered 429 because a :attr:`rate_limit` was exceeded."""
        with self._lock:
            return self._rate_limited

    @property
    def codes_issued(self) -> int:
        """Authorization codes handed out by :meth:`issue_code` and :meth:`consent_redirect`."""
        with self._lock:
            return self._codes_issued

    @property
    def code_exchanges(self) -> int:
        """Successful ``authorization_code`` grants (also counted in :attr:`tokens_issued`)."""
        with self._lock:
            return self._code_exchanges

    @property
    def refreshes(self) -> int:
        """Successful ``refresh_token`` grants (also counted in :attr:`tokens_issued`)."""
        with self._lock:
            return self._refreshes

    @property
    def refresh_token_reuses(self) -> int:
        """Refresh grants presenting a refresh token already rotated away by its client.

        Each one is refused with ``invalid_grant``; an app that persists the newest refresh
        token and never refreshes twice at once keeps this at zero.
        """
        with self._lock:
            return self._refresh_token_reuses

    def reset_counters(self) -> None:
        """Set the counters to zero, forget rate-limit windows, empty :attr:`requests`.

        Tokens, codes, refresh tokens and consents are kept.
        """
        with self._lock:
            self._token_requests = self._tokens_issued = self._api_requests = 0
            self._rate_limited = 0
            self._codes_issued = self._code_exchanges = 0
            self._refreshes = self._refresh_token_reuses = 0
            self._rate_counts.clear()
            self.requests.clear()

    def _rate_check(self, client_id: str, path: str) -> tuple[bool, list[tuple[str, str]]]:
        """Count a call: whether it may proceed, and the x-ratelimit headers to send."""
        reporting = is_reporting(path)
        limit = self.reporting_rate_limit if reporting else self.rate_limit
        if limit is None:
            return True, []
        now = self.timer()
        window = math.floor(now / 60)
        reset = int(self.wall_clock() + (window + 1) * 60 - now) + 1
        with self._lock:
            key = (client_id, reporting, window)
            used = self._rate_counts.get(key, 0) + 1
            self._rate_counts[key] = used
            if used > limit:
                self._rate_limited += 1
        headers = [
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(max(0, limit - used))),
            ("x-ratelimit-reset", str(reset)),
        ]
        return used <= limit, headers

    def token_endpoint_requests(self) -> list[SeenRequest]:
        """The logged requests to the token endpoint, oldest first (a copy)."""
        with self._lock:
            return [r for r in self.requests if _split_path(r.path) == TOKEN_PATH]

    def api_calls(self) -> list[SeenRequest]:
        """The logged requests to any other path, oldest first (a copy)."""
        with self._lock:
            return [r for r in self.requests if _split_path(r.path) != TOKEN_PATH]

    # -- faults and canned answers -----------------------------------------------------------

    def inject_token_fault(
        self,
        status: int | None = None,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` token endpoint requests misbehave.

        Faults queue up first in, first out, each for its own ``times`` requests. A request
        served by a fault is counted in :attr:`token_requests` but issues no token.

        * ``delay``: wait that many seconds before answering (a slow endpoint);
        * ``drop=True``: read the request, then close the connection without an answer;
        * ``status`` (with optional ``body`` and ``headers``): answer that instead of the real
          answer; with ``status=None`` (and no ``drop``) the real answer follows the delay.
        """
        if status is not None:
            _check_status(status)
        elif (body is not None or headers) and not drop:
            raise ValueError("body and headers need a status")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        fault = _Fault(
            status=status,
            body=_to_bytes(body),
            headers=tuple((headers or {}).items()),
            delay=delay,
            drop=drop,
            remaining=times,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_token_faults(self) -> None:
        """Forget every pending token endpoint fault."""
        with self._lock:
            self._faults.clear()

    def set_response(
        self,
        path: str,
        *,
        status: int = 200,
        json: object = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        authorize: bool = True,
    ) -> None:
        """Register a canned answer for ``path`` (exact match, query ignored) and ``method``.

        ``method=None`` matches any method; an answer for the request's own method wins over
        one for any method. ``json`` (serialized, ``Content-Type: application/json``) or
        ``body`` gives the body. With ``authorize=True`` the request still needs a valid bearer
        token (else the usual ``401``); with ``False`` it is answered regardless. Works on any
        path but the token endpoint (use :meth:`inject_token_fault` there), e.g.::

            fake.set_response("/2025-10/retail-media/old", status=307,
                              headers={"Location": other.url + "/2025-10/retail-media/me"})
        """
        _check_status(status)
        path = _split_path(path)
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if path == TOKEN_PATH:
            raise ValueError("use inject_token_fault() for the token endpoint")
        if json is not None and body is not None:
            raise ValueError("give json or body, not both")
        header_items = tuple((headers or {}).items())
        if json is not None:
            data = _dumps(json)
            if not any(name.lower() == "content-type" for name, _ in header_items):
                header_items = (("Content-Type", _JSON), *header_items)
        else:
            data = _to_bytes(body)
        key = (path, None if method is None else method.upper())
        with self._lock:
            self._responses[key] = _Canned(status, data, header_items, authorize)

    def set_error(
        self,
        path: str,
        *,
        status: int = 403,
        code: str = "insufficient-advertisers-permissions",
        title: str = "The application lacks the permissions for this advertiser",
        error_type: str = "authorization",
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
    ) -> None:
        """Answer *path* with Criteo's error envelope (after the token check).

        A shortcut for :meth:`set_response` with a body in Criteo's shape
        (``{"errors": [{"traceId", "type", "code", "instance", "title"...}]}``)::

            fake.set_error("/2025-10/retail-media/accounts")                 # a 403
            fake.set_error("/2025-10/statistics/report", status=400,
                           code="required-field", title="startDate is required",
                           error_type="validation")
        """
        extra = {"detail": detail} if detail is not None else {}
        envelope = _error_envelope(error_type, code, _split_path(path), title, **extra)
        self.set_response(path, status=status, json=envelope, headers=headers, method=method)

    def clear_responses(self) -> None:
        """Forget every canned answer."""
        with self._lock:
            self._responses.clear()

    def __repr__(self) -> str:
        running = self._running
        url = None if running is None else f"http://127.0.0.1:{running.server.server_port}"
        return (
            f"FakeCriteo(url={url!r}, token_requests={self.token_requests}, "
            f"tokens_issued={self.tokens_issued}, api_requests={self.api_requests})"
        )

    # -- used by the request handler ---------------------------------------------------------

    def _record(self, seen: SeenRequest, *, token: bool) -> None:
        with self._lock:
            self.requests.append(seen)
            if token:
                self._token_requests += 1
            else:
                self._api_requests += 1

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.popleft()
            return fault

    def _authenticate(self, client_id: str, client_secret: str) -> bool:
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            return False
        return secrets.compare_digest(expected.encode("utf-8"), client_secret.encode("utf-8"))

    def _issue(self, client_id: str) -> tuple[str, int | float]:
        token, lifetime = self._mint(client_id)
        with self._lock:
            self._tokens[token] = _Issued(client_id, self.timer() + lifetime)
            self._tokens_issued += 1
        return token, _number(lifetime)

    def _mint(self, client_id: str) -> tuple[str, float]:
        """A new access token (not yet valid: the caller registers it) and its lifetime."""
        lifetime = self.lifetime
        issued_at = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        payload = {
            "iss": "https://fake-criteo.invalid",
            "sub": client_id,
            "client_id": client_id,
            "iat": issued_at,
            "exp": issued_at + math.ceil(lifetime),
            "jti": str(uuid.uuid4()),
        }
        token = ".".join(
            (_b64url(_dumps(header)), _b64url(_dumps(payload)), _b64url(secrets.token_bytes(256)))
        )
        return token, lifetime

    def _grant_tokens(self, grant: _Grant, access: str, lifetime: float) -> dict[str, object]:
        """Register ``access`` and a new refresh token for ``grant``; call with the lock held."""
        refresh = secrets.token_urlsafe(48)
        self._tokens[access] = _Issued(grant.client_id, self.timer() + lifetime, grant=grant)
        self._refresh_tokens[refresh] = _Refresh(grant)
        self._tokens_issued += 1
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": _number(lifetime),
            "refresh_token": refresh,
        }

    def _exchange_code(
        self, client_id: str, code: str, redirect_uri: str, verifier: str | None
    ) -> dict[str, object]:
        """The ``authorization_code`` grant of an authenticated client; ``_GrantError`` if bad."""
        access, lifetime = self._mint(client_id)  # outside the lock: 256 random bytes
        with self._lock:
            pending = self._codes.get(code)
            if pending is None or pending.client_id != client_id:
                raise _GrantError("invalid_grant", "The authorization code is invalid")
            if pending.spent:
                raise _GrantError("invalid_grant", "The authorization code was already used")
            pending.spent = True  # single use: a failed attempt spends it too
            if redirect_uri != pending.redirect_uri:
                raise _GrantError(
                    "invalid_grant",
                    "The redirect_uri differs from the one of the authorization request",
                )
            if pending.challenge is None:
                if verifier is not None:
                    raise _GrantError(
                        "invalid_grant", "A code_verifier was given for a code without PKCE"
                    )
            elif verifier is None:
                raise _GrantError("invalid_grant", "The code_verifier is missing")
            elif not _verifier_matches(verifier, pending.challenge, pending.method):
                raise _GrantError(
                    "invalid_grant", "The code_verifier does not match the code_challenge"
                )
            grant = _Grant(client_id)
            self._grants.append(grant)
            self._code_exchanges += 1
            return self._grant_tokens(grant, access, lifetime)

    def _rotate_refresh_token(self, client_id: str, refresh_token: str) -> dict[str, object]:
        """The ``refresh_token`` grant of an authenticated client; ``_GrantError`` if bad."""
        access, lifetime = self._mint(client_id)
        with self._lock:
            current = self._refresh_tokens.get(refresh_token)
            if current is None or current.grant.client_id != client_id:
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            if current.rotated:
                self._refresh_token_reuses += 1
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            if current.grant.revoked:
                raise _GrantError("invalid_grant", _BAD_REFRESH)
            current.rotated = True
            self._refreshes += 1
            return self._grant_tokens(current.grant, access, lifetime)

    def _client_for(self, token: str) -> str | None:
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or issued.revoked or self.timer() >= issued.expires_at:
                return None
            return issued.client_id

    def _canned(self, path: str, method: str) -> _Canned | None:
        with self._lock:
            return self._responses.get((path, method.upper())) or self._responses.get((path, None))


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


def add_token_endpoint(
    rsps: Any,
    *,
    token_url: str = CRITEO_TOKEN_URL,
    expires_in: float = 900,
) -> Any:
    """Register Criteo's token endpoint on a ``responses.RequestsMock``: no sockets.

    Each token request gets a new token (``"fake-token-1"``, ``"fake-token-2"``...) with
    the given ``expires_in``; the registered response is returned, so that a test can
    count the token requests with its ``call_count``::

        with responses.RequestsMock() as rsps:
            token_route = add_token_endpoint(rsps)
            rsps.get("https://api.criteo.com/2025-10/retail-media/me", json={"data": {}})
            requests.get(url, auth=CriteoAuth(client_id, client_secret))
            assert token_route.call_count == 1

    The ``criteo_responses`` pytest fixture does this for you.
    """
    issued = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        with lock:
            n = next(issued)
        body = {
            "access_token": f"fake-token-{n}",
            "token_type": "Bearer",
            "expires_in": _number(expires_in),
            "refresh_token": None,
        }
        return 200, {"Cache-Control": "no-store"}, json.dumps(body)

    return rsps.add_callback("POST", token_url, callback=answer, content_type="application/json")


class RedisServer:
    """A real ``redis-server`` on a free loopback port: no persistence, its own directory.

    For tests of code that uses :class:`~requests_criteo.redis_store.RedisTokenStore`
    (Debian/Ubuntu: ``apt-get install redis-server``)::

        with tempfile.TemporaryDirectory() as directory:
            server = RedisServer(directory).start()
            try:
                store = RedisTokenStore(server.url)
                ...
            finally:
                server.stop()

    :param directory: where the server may write (it is told not to persist anything).
    :param port: a port on 127.0.0.1; a free one when ``None`` (also kept across a
        ``stop()`` and ``start()``, to test an outage).
    :param binary: the server's path; ``redis-server`` from ``PATH`` when ``None``.
    :raises FileNotFoundError: no ``redis-server`` was found.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError(
                "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; "
                "macOS: brew install redis)"
            )
        self.binary = found
        self.directory = str(directory)
        self.port = port if port is not None else _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait (at most 10 s) until it answers ``PING``."""
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)  # waiting for the server to listen
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server (no-op if it is not running)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that ignores SIGTERM
            process.kill()
            process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
