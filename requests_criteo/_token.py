"""The token endpoint on requests: sending the form and reading the answer.

What lives here: :class:`TokenEndpoint`, which carries the attempts of a token request
(:class:`~requests_criteo._token_request.TokenRequest`) through a private session and
returns a :class:`~requests_criteo._cache.Token` or raises one of
:mod:`requests_criteo.exceptions` (:mod:`._transport` builds one for a credential). What does
not: deciding *when* to ask (the cache, the auth), building the form (:mod:`._source`),
when to retry and how long to wait (:mod:`._token_request`), judging the answer
(:mod:`._answer`), the capped read (:mod:`._reading`).

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
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ProxyError, SSLError
from requests.utils import default_user_agent
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.response import BaseHTTPResponse

from .__version__ import __version__
from ._answer import MAX_TOKEN_BODY, length_refusal, size_refusal
from ._cache import Token
from ._reading import read_capped
from ._text import Answer
from ._token_request import (
    FORM_HEADERS,
    Failed,
    Reply,
    Send,
    TokenRequest,
    cut_off,
    drive,
    no_answer,
    not_connected,
    past_deadline,
)
from .exceptions import CriteoAuthError, TokenRequestError

log = logging.getLogger("requests_criteo")

#: The User-Agent of every request the library sends: requests' own, then ours.
USER_AGENT = f"{default_user_agent()} requests-criteo/{__version__}"


def _no_auth(r: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth that changes nothing; set so that requests never falls back to .netrc."""
    return r


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
        # Under the lock, so never after the worker forgot its socket. (A body read to its
        # end goes back to the pool within urllib3's last read, just before done_with; a
        # socket shut down there is found dropped when next taken, and replaced.)
        with self._lock:
            self.abandoned = True
            _shut(self._sock)

    def done_with(self) -> None:
        """Called by the worker once it has read the answer, or given up on it."""
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
    an abandoned worker there stops after its next read of the body, or at its read timeout
    while it waits for headers.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


def _never_sent(exc: Exception) -> bool:
    """Whether the request surely never reached the server (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _failed(exc: Exception, timeout: tuple[float, float]) -> Failed:
    """What failed, and whether a connection was made: a network or a server to blame."""
    if isinstance(exc, requests.ConnectTimeout):
        return not_connected(f"within {timeout[0]:g} s")
    name = type(exc).__name__
    if _never_sent(exc):
        return not_connected(f"({name})")
    if isinstance(exc, (ProxyError, SSLError)):
        return not_connected(f"({name})", never_sent=False)  # (the form may have left)
    if isinstance(exc, requests.ReadTimeout):
        return no_answer(timeout[1])
    return cut_off(name)


#: What one attempt brings back: the answer and its body, read within the cap, or a failure.
_Outcome = tuple[requests.Response, Answer] | Exception


class TokenEndpoint:
    """Carries the attempts of a :class:`~._token_request.TokenRequest` through requests.

    :param request: what the token requests are: URL, timeouts, deadline, retries.
    :param user_agent: the User-Agent they are sent with.
    :param session: the session to send through; a private one when ``None``. A request
        abandoned at the deadline is cut off at once through the private session; through
        an injected one, its worker stops after its next read of the body, but while it
        waits for headers only its read timeout ends it (nothing public reaches that socket).
    """

    def __init__(
        self,
        request: TokenRequest,
        *,
        user_agent: str,
        session: requests.Session | None = None,
    ) -> None:
        self.request = request
        self.user_agent = user_agent
        self.session = session if session is not None else self._new_session()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        session.auth = _no_auth
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

        See :meth:`TokenRequest.plan <requests_criteo._token_request.TokenRequest.plan>`.
        """
        return drive(self.request.plan(body, secrets=secrets, timer=timer, retry=retry), self.send)

    def send(self, step: Send) -> Reply | Failed | CriteoAuthError:
        """One attempt: the answer, why there is none, or the error to raise."""
        outcome = self._attempt(step.body, step.timeout, step.remaining)
        if isinstance(outcome, CriteoAuthError):
            return outcome
        if isinstance(outcome, Exception):
            if not isinstance(outcome, (requests.ConnectionError, requests.Timeout)):
                name = type(outcome).__name__
                return TokenRequestError(f"the token request failed ({name})")
            return _failed(outcome, step.timeout)
        response, answer = outcome
        return Reply(response.status_code, response.headers, answer)

    def _attempt(self, body: str, timeout: tuple[float, float], remaining: float) -> _Outcome:
        """One request and its capped answer, in a worker thread bounded by *remaining*.

        The read timeout restarts with every byte, so only a deadline bounds an endpoint
        that trickles: there the attempt is abandoned (see :class:`TokenEndpoint`) and the
        threads waiting for this token go on. A failure is returned, not raised.
        """
        attempt = _Attempt()
        outcome: list[_Outcome] = []

        def run() -> None:
            _current.attempt = attempt
            try:
                outcome.append(self._read(self._send(body, timeout), attempt))
            except Exception as exc:  # handed to the caller's thread
                if isinstance(exc, requests.RequestException):
                    exc.request = None  # its body is the form, client secret included
                    exc.response = None
                outcome.append(exc)

        worker = threading.Thread(target=run, name="requests-criteo-token", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            attempt.abandon()
            return past_deadline(self.request.deadline)
        return outcome[0]

    def _send(self, body: str, timeout: tuple[float, float]) -> requests.Response:
        """One POST, straight to the transport adapter.

        Going around ``Session.send`` means no redirect machinery (which would read a
        3xx body of any size), no response hooks and no cookies; the session still
        supplies its adapters and the environment's proxies and CA bundle.
        """
        url, headers = self.request.url, {**FORM_HEADERS, "User-Agent": self.user_agent}
        request = requests.Request("POST", url, data=body, headers=headers, auth=_no_auth)
        prepared = self.session.prepare_request(request)
        settings = self.session.merge_environment_settings(
            url, {}, stream=True, verify=None, cert=None
        )
        verify = settings["verify"] if settings["verify"] is not None else True
        cert, proxies = settings["cert"], settings["proxies"]
        return self.session.get_adapter(url).send(
            prepared, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

    @staticmethod
    def _read(response: requests.Response, attempt: _Attempt) -> _Outcome:
        """*response* and its body (capped; not read when too long), or the error (returned).

        Reading stops when *attempt* is abandoned.
        """
        body, refused = b"", length_refusal(response.headers.get("Content-Length", "0"))
        try:
            if refused is None:
                body = read_capped(
                    response, MAX_TOKEN_BODY, stop=lambda: attempt.abandoned, strict=True
                )
        except Exception as exc:  # returned, not raised: nothing chains to the answer
            return TokenRequestError(
                f"reading the token endpoint's answer failed ({type(exc).__name__})"
            )
        finally:
            attempt.done_with()
            response.close()  # closes the connection of a body left unread
        refused = refused or size_refusal(body)
        return refused if refused is not None else (response, Answer(body))
