"""The token endpoint: sending the form, retrying, reading and checking the answer.

What lives here: :class:`TokenEndpoint`, which posts an OAuth2 token request through a
private session and returns a :class:`~requests_criteo._cache.Token` or raises one of
:mod:`requests_criteo.exceptions`. What does not: deciding *when* to ask (the cache and
the auth do that) and building the form (oauthlib's clients, in :mod:`.auth`).

Rules it keeps, whatever the user's own requests configuration says:

* its own session, so the user's adapters, hooks and auth never see the secret;
  an explicit no-op auth, so ``~/.netrc`` is never read;
* redirects are never followed: a 3xx is an error and the form, secret included, is
  never posted to another place;
* its own connect/read timeouts and a total deadline across every attempt; a request
  abandoned at the deadline closes its connection and its worker thread ends;
* a capped read of the answer, which is never echoed in an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from oauthlib.oauth2.rfc6749.parameters import parse_token_response
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.response import BaseHTTPResponse

from .__version__ import __version__
from ._cache import Token, lifetime_from
from ._text import Answer, Secret, Secrets, safe_text, secret_forms
from .exceptions import CriteoAuthError, InvalidTokenResponse, TokenRequestError
from .retry import CriteoRetry

log = logging.getLogger("requests_criteo")

#: The largest token answer read; a Criteo token answer is about 1.5 KB.
MAX_TOKEN_BODY = 64 * 1024
#: A token must be visible ASCII without spaces to go in an ``Authorization`` header.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


class _NoAuth(AuthBase):
    """An auth that changes nothing; set so that requests never falls back to .netrc."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r

    def __repr__(self) -> str:
        return "<_NoAuth>"


NO_AUTH = _NoAuth()


class _Attempt:
    """One token request as its caller sees it: abandoned or not, and its socket.

    The caller abandons an attempt at its deadline; the worker then stops reading the
    body, and a socket it is blocked on is shut down so that it wakes up and ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.abandoned = False

    def waiting_on(self, sock: socket.socket | None) -> None:
        """Called by the worker before it waits for an answer on *sock*."""
        with self._lock:
            self._sock = sock
            abandoned = self.abandoned
        if abandoned:
            _shut(sock)

    def abandon(self) -> None:
        # Shut down under the lock: the worker forgets its socket (done_with) before the
        # connection goes back to the pool, so a pooled socket is never shut down here.
        with self._lock:
            self.abandoned = True
            _shut(self._sock)

    def done_with(self) -> None:
        """Called by the worker before its connection goes back to the pool."""
        with self._lock:
            self._sock = None


def _shut(sock: socket.socket | None) -> None:
    """Wake a thread blocked reading *sock*: a close from another thread would not."""
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed or reset
            sock.shutdown(socket.SHUT_RDWR)


#: The attempt a worker thread is making, for the connections it uses to report to.
_current = threading.local()


class _WatchedConnection(HTTPConnection):
    """A connection that reports its socket to its thread's attempt before each answer.

    Why a subclass: a worker blocked in http.client reading trickled headers holds no
    response yet, and neither requests nor urllib3 exposes a request's socket before
    its response exists (``response.raw`` comes after the headers). Connection classes
    and the pool classes that pick them are urllib3's documented extension points.
    """

    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        attempt = getattr(_current, "attempt", None)
        if attempt is not None:
            attempt.waiting_on(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _TokenAdapter(HTTPAdapter):
    """The private session's adapter: its connections can be cut off at the deadline.

    Through a proxy the stock connections are used (a SOCKS proxy brings its own classes):
    an abandoned worker there stops at the next byte of the body, or at its read timeout
    while it waits for headers.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


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


def _never_sent(exc: Exception) -> bool:
    """Whether the request surely never reached the server (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class TokenEndpoint:
    """Posts token requests to one URL and turns the answers into tokens.

    :param url: the validated token URL.
    :param timeout: ``(connect, read)`` seconds for one attempt.
    :param deadline: seconds for the whole fetch, retries and waits included.
    :param retry: the policy for 429, 5xx and connection errors.
    :param session: the session to send through; a private one when ``None``. A request
        abandoned at the deadline is cut off at once through the private session; through
        an injected one, its worker stops at the next byte of the body, but while it waits
        for headers only its read timeout ends it (nothing public reaches that socket).
    :param clock: a monotonic clock for the deadline.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: tuple[float, float],
        deadline: float,
        retry: CriteoRetry,
        user_agent: str,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry
        self.user_agent = user_agent
        self.session = session if session is not None else self._new_session()
        self.clock = clock

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        session.auth = NO_AUTH
        adapter = _TokenAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def fetch(
        self,
        body: str,
        *,
        secrets: Sequence[str],
        timer: Callable[[], float],
        retry: bool = True,
    ) -> Token:
        """Send the urlencoded form *body* and return the token of the answer.

        :param secrets: the values in *body* that must never appear in an error.
        :param timer: the cache's clock, read before sending so that the token's schedule
            errs on the early side.
        :param retry: ``False`` for requests that must not be sent twice (a single-use
            authorization code, a rotating refresh token): only a 429, which Criteo did
            not execute, and a connection that could not be made are retried.
        """
        # Wrapped so that a traceback's frame locals show "[secure]", not the secret.
        body, hidden = Secret(body), Secrets(secrets)
        start = self.clock()
        # A token request changes nothing on the server: any method may be retried.
        # 500 too: a token endpoint that fails once is worth a second try.
        forcelist = frozenset(self.retry.status_forcelist or ()) | {500}
        policy = self.retry.new(allowed_methods=None, status_forcelist=forcelist)
        attempt = 0
        while True:
            attempt += 1
            remaining = self.deadline - (self.clock() - start)
            if remaining <= 0:
                raise TokenRequestError(
                    f"no token after {attempt - 1} attempts within the {self.deadline:g} s deadline"
                )
            obtained_at = timer()
            outcome = self._attempt(body, remaining)
            if isinstance(outcome, Exception):
                # Raised here, outside any except block, so that the exception carries no
                # __context__ leading back to the request and its form.
                failure = f"could not reach the token endpoint ({type(outcome).__name__})"
                if isinstance(outcome, CriteoAuthError):
                    raise outcome
                if not retry and not _never_sent(outcome):
                    raise TokenRequestError(failure)
                response, error = None, outcome
            else:
                response, answer = outcome
                error = None
                status = response.status_code
                if status < 300:
                    # Judged in a frame that is gone by the time anything is raised here: a
                    # traceback's frames hold nothing of the answer but the hidden Answer.
                    token = self._judge(answer, status, obtained_at, hidden)
                    if isinstance(token, Token):
                        return token
                    raise token
                if 300 <= status < 400:
                    raise TokenRequestError(
                        f"the token endpoint answered a redirect (HTTP {status}); it was not "
                        "followed, so the client secret went nowhere else. Check token_url.",
                        status_code=status,
                    )
                if not (policy.is_retry("POST", status) and (retry or status == 429)):
                    raise self._refusal(answer, status, hidden)
                failure = f"the token endpoint answered HTTP {status}"
            wait = self._next_wait(policy, response, error)
            status_code = response.status_code if response is not None else None
            try:
                policy = policy.increment(
                    method="POST",
                    url=self.url,
                    response=response.raw if response is not None else None,
                    error=error,
                )
            except MaxRetryError:
                exhausted = True
            else:
                exhausted = False
            if exhausted:
                raise TokenRequestError(
                    f"{failure}; gave up after {attempt} attempts", status_code=status_code
                )
            wait = policy.get_backoff_time() if wait is None else wait
            remaining = self.deadline - (self.clock() - start)
            if wait >= remaining:
                raise TokenRequestError(
                    f"{failure}; gave up after {attempt} attempts: the next one would pass "
                    f"the {self.deadline:g} s deadline",
                    status_code=status_code,
                )
            log.info("token request failed (%s); attempt %d in %.2f s", failure, attempt + 1, wait)
            if wait > 0:
                policy.sleep_func(wait)

    def _attempt(self, body: str, remaining: float) -> tuple[requests.Response, Answer] | Exception:
        """One request and its capped answer, in a worker thread bounded by *remaining*.

        The read timeout restarts with every byte, so an endpoint that trickles its answer
        could hold a caller far past the deadline; at the deadline the attempt is abandoned
        instead, and the threads waiting for this token are released. The worker then
        stops reading, closes the connection and ends: through the private session at
        once, even while it waits for headers (its socket is shut down); through a session
        the user injected, at the next byte of the body, or at its read timeout while it
        waits for headers. Returns the exception (not raised) on failure.
        """
        timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
        done = threading.Event()
        attempt = _Attempt()
        outcome: list[tuple[requests.Response, Answer] | Exception] = []

        def run() -> None:
            _current.attempt = attempt
            try:
                response = self._send(body, timeout)
                outcome.append((response, self._read(response, attempt)))
            except Exception as exc:  # handed to the caller's thread
                if isinstance(exc, requests.RequestException):
                    exc.request = None  # its body is the form, client secret included
                    exc.response = None
                outcome.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=run, name="requests-criteo-token", daemon=True)
        worker.start()
        if not done.wait(remaining):
            attempt.abandon()
            return TokenRequestError(
                f"the token endpoint did not answer within the {self.deadline:g} s deadline"
            )
        result = outcome[0]
        if isinstance(result, (requests.ConnectionError, requests.Timeout, CriteoAuthError)):
            return result
        if isinstance(result, Exception):  # anything else reading the answer
            return TokenRequestError(
                f"reading the token endpoint's answer failed ({type(result).__name__})"
            )
        return result

    def _send(self, body: str, timeout: tuple[float, float]) -> requests.Response:
        """One POST, straight to the transport adapter.

        Going around ``Session.send`` means no redirect machinery (which would read a
        3xx body of any size), no response hooks and no cookies; the session still
        supplies its adapters and the environment's proxies and CA bundle.
        """
        request = requests.Request(
            "POST",
            self.url,
            data=body,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": self.user_agent,
            },
            auth=NO_AUTH,
        )
        prepared = self.session.prepare_request(request)
        settings = self.session.merge_environment_settings(
            self.url, {}, stream=True, verify=None, cert=None
        )
        verify = settings["verify"] if settings["verify"] is not None else True
        adapter = self.session.get_adapter(self.url)
        return adapter.send(
            prepared,
            stream=True,
            timeout=timeout,
            verify=verify,
            cert=settings["cert"],
            proxies=settings["proxies"],
        )

    @staticmethod
    def _next_wait(
        policy: CriteoRetry, response: requests.Response | None, error: Exception | None
    ) -> float | None:
        if response is None or error is not None:
            return None
        return policy.get_retry_after(response.raw)

    @staticmethod
    def _read(response: requests.Response, attempt: _Attempt) -> Answer:
        """The body of *response*, refusing more than :data:`MAX_TOKEN_BODY`.

        Reading stops when *attempt* is abandoned. A body not read to its end has its
        connection closed, never handed back to the pool half-read.
        """
        chunks: list[bytes] = []
        size = 0
        finished = False
        try:
            try:
                declared = int(response.headers.get("Content-Length", "0"))
            except ValueError:
                raise InvalidTokenResponse(
                    "the token endpoint sent an invalid Content-Length"
                ) from None
            if declared > MAX_TOKEN_BODY:
                raise InvalidTokenResponse(
                    f"the token endpoint's answer is {declared} bytes, more than the "
                    f"{MAX_TOKEN_BODY} a token answer can be; it was not read"
                )
            while not attempt.abandoned:
                chunk = response.raw.read1(8192, decode_content=True)
                if not chunk:
                    finished = True
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_TOKEN_BODY:
                    raise InvalidTokenResponse(
                        f"the token endpoint's answer is larger than {MAX_TOKEN_BODY} bytes, "
                        "more than a token answer can be; reading stopped"
                    )
        finally:
            attempt.done_with()
            if not finished:
                response.raw.close()
            response.close()
        return Answer(b"".join(chunks))

    @staticmethod
    def _json(body: bytes) -> object:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def _refusal(self, body: bytes, status: int, secrets: Sequence[str]) -> TokenRequestError:
        """The error for a refusal; every piece of server text in it made safe."""
        data = self._json(body)
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

    def _judge(
        self, body: bytes, status: int, obtained_at: float, secrets: Sequence[str]
    ) -> Token | CriteoAuthError:
        """The token in a 2xx answer, or the error to raise (returned, not raised)."""
        data = self._json(body)
        if not isinstance(data, dict):
            kind = (
                "empty"
                if not body.strip()
                else ("not JSON" if data is None else f"a JSON {type(data).__name__}")
            )
            return InvalidTokenResponse(
                f"the token endpoint answered HTTP {status} with a body that is {kind}, "
                "not a JSON object with an access_token"
            )
        if "error" in data:
            return self._refusal(body, status, secrets)
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
        lifetime = lifetime_from(data.get("expires_in"))
        log.debug("token obtained from %s, lifetime %g s", self.url, lifetime)
        return Token(
            access_token,
            lifetime=lifetime,
            obtained_at=obtained_at,
            refresh_token=refresh_token or None,
        )


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


#: requests' own User-Agent followed by ours, so Criteo's support can tell the traffic apart.
USER_AGENT = f"{requests.utils.default_user_agent()} requests-criteo/{__version__}"


class RequestsTransport:
    """Builds a credential's TokenEndpoint on requests; pickles without its session."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session

    def __call__(
        self, url: str, *, timeout: tuple[float, float], deadline: float, retry: CriteoRetry
    ) -> TokenEndpoint:
        return TokenEndpoint(
            url,
            timeout=timeout,
            deadline=deadline,
            retry=retry,
            user_agent=USER_AGENT,
            session=self.session,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (RequestsTransport, ())
