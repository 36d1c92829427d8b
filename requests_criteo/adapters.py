"""CriteoAdapter: a transport adapter that authenticates what a session sends to Criteo.

What lives here: :class:`CriteoAdapter`, :func:`mount` and :func:`session`, which builds a
``requests.Session`` with the adapter mounted, and the session classes that note where
redirects came from. What does not: tokens (the auth's credentials) and the 401 resend
(:mod:`._request_path`); the adapter puts the token on each request just before sending
it, and resends its own 401s through itself.

Besides authentication, the adapter brings Criteo's rate limits: a
:class:`~requests_criteo.CriteoRetry` policy by default (429 retried for any method after
the wait Criteo asks for; 502/503/504 for idempotent methods), and an opt-in client-side
limiter that paces calls under the documented budgets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.utils import default_user_agent
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from ._request_path import Mark, mark_of, note_redirect, replay_position, resend_once
from ._token import USER_AGENT
from .auth import CriteoAuth
from .ratelimit import RateLimiter, budget_of, is_reporting
from .retry import CriteoRetry

__all__ = ["CriteoAdapter", "CriteoSession", "SessionAuth", "mount", "session"]

_REQUESTS_USER_AGENT = default_user_agent()
# For bodies that cannot be sent twice: urllib3 would resend an exhausted generator empty.
_NO_RETRIES = Retry(0, read=False, redirect=False)


class _Sending(threading.local):
    """What the adapter sending in this thread has to tell its retry policy.

    ``once``: the adapter sending a body that cannot be sent twice, or ``None``.
    ``paced``: the adapter sending a call it paced, and the limiter that paced it, or
    ``None``. Thread-local: a forked child, where the parent's other threads do not
    exist, starts with neither.
    """

    once: CriteoAdapter | None = None
    paced: tuple[CriteoAdapter, RateLimiter] | None = None


_SENDING = _Sending()


class CriteoAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that authenticates every request it sends to a Criteo origin.

    Mount it once on a session shared by the whole program, from any number of threads;
    requests to other hosts pass through untouched::

        auth = CriteoAuth(client_id, client_secret)
        session = requests.Session()
        session.mount("https://api.criteo.com/", CriteoAdapter(auth, rate_limit=250))

    Mount it on a prefix that ends with ``/``: requests matches prefixes as plain
    strings, and ``"https://api.criteo.com"`` would also catch
    ``https://api.criteo.com.evil.example``. (The auth checks the exact origin anyway,
    so such a host would still get no token.)

    A request that already carries a token from a ``CriteoAuth`` (given with ``auth=``)
    keeps it, and so does one carrying a caller's own ``Bearer`` header until Criteo
    answers 401 to it: the call is then resent once with a managed token. A request sent
    with requests' default User-Agent gets requests-criteo's name and version added;
    a caller's own User-Agent is kept.

    :param auth: the :class:`~requests_criteo.CriteoAuth` that provides tokens.
    :param max_retries: the retry policy; :class:`~requests_criteo.CriteoRetry` by default.
        A body that cannot be sent twice (a generator) is never retried.
    :param rate_limit: pace calls to at most this many per minute (Criteo allows
        client-credentials apps 250), shared by every thread using this adapter; or a
        :class:`~requests_criteo.RateLimiter`, shared by every adapter given it (a
        ``RedisRateLimiter`` shares one budget with a whole fleet; one made with
        ``per_account=True`` gives each account of an authorization-code app its own).
        Off by default. :attr:`limiter` is the limiter that paces this adapter's calls.
    :param reporting_rate_limit: a separate budget for reporting endpoints (Criteo: 40 a
        minute); when unset, reporting calls count against ``rate_limit``.
    :param kwargs: passed to ``HTTPAdapter`` (``pool_connections``, ``pool_maxsize``,
        ``pool_block``).
    """

    __attrs__ = [  # noqa: RUF012 - a list, as in HTTPAdapter
        *HTTPAdapter.__attrs__,
        "auth",
        "limiter",
        "reporting_limiter",
    ]

    def __init__(
        self,
        auth: CriteoAuth,
        *,
        max_retries: Retry | int | None = None,
        rate_limit: float | RateLimiter | None = None,
        reporting_rate_limit: float | RateLimiter | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(auth, CriteoAuth):
            raise TypeError(f"CriteoAdapter needs a CriteoAuth, not {type(auth).__name__}")
        self.auth = auth
        app = (auth.token_url, auth.client_id, auth.account)
        self.limiter = budget_of(rate_limit, "rate_limit", *app)
        self.reporting_limiter = budget_of(reporting_rate_limit, "reporting_rate_limit", *app)
        super().__init__(
            max_retries=CriteoRetry() if max_retries is None else max_retries, **kwargs
        )

    def __repr__(self) -> str:
        return f"CriteoAdapter({self.auth!r})"

    @property
    def max_retries(self) -> Retry:
        """The retry policy (for the current request: none if its body cannot be resent).

        For a paced call the policy, if a :class:`~requests_criteo.CriteoRetry`, reports
        each 429 to the limiter before it waits to retry (:meth:`_rate_limited`): the
        other threads then pause at once, not after this call's retries are spent. The
        policy's own ``on_429``, if any, is told after the limiter.
        """
        if _SENDING.once is self:
            return _NO_RETRIES
        retry = self._max_retries
        paced = _SENDING.paced
        if paced is not None and paced[0] is self and isinstance(retry, CriteoRetry):
            return retry.new(on_429=partial(self._retrying_429, paced[1], retry.on_429))
        return retry

    @max_retries.setter
    def max_retries(self, value: Retry) -> None:
        self._max_retries = value

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Authenticate *request* if it is for a Criteo origin, pace it, then send it.

        A 401 is resent here once, with a refreshed token, rather than through a response
        hook: the response returned is the resend's, with the 401 in its ``history``.
        """
        url = request.url
        mark, limiter = mark_of(request), None
        if url is not None and self.auth.credentials.scope.covers(url):
            mark, limiter = self._prepare(request, url, mark)
        replayable = mark.replayable if mark is not None else replay_position(request.body)[0]
        if replayable and limiter is None:  # the common case: nothing to tell max_retries
            response = super().send(request, stream, timeout, verify, cert, proxies)
        else:
            previous = _SENDING.once, _SENDING.paced
            _SENDING.once = _SENDING.once if replayable else self
            _SENDING.paced = None if limiter is None else (self, limiter)
            try:  # max_retries, read inside HTTPAdapter.send, sees both
                response = super().send(request, stream, timeout, verify, cert, proxies)
            finally:
                _SENDING.once, _SENDING.paced = previous
        if limiter is not None and response.status_code == 429:
            # A 429 the retry policy did not retry (retries spent, or no CriteoRetry):
            # the retried ones were reported before their waits (see max_retries).
            self._rate_limited(limiter, response.raw)
        if response.status_code != 401:
            return response
        return resend_once(
            response,
            self.auth.credentials,
            stream=stream,
            timeout=timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )

    def _prepare(
        self, request: requests.PreparedRequest, url: str, mark: Mark | None
    ) -> tuple[Mark | None, RateLimiter | None]:
        """Name the library in the User-Agent, put the token on, and wait for the limiter.

        A request decorated already (*mark*: by ``auth=``, or by this adapter on an earlier
        send) keeps its token. Returns the request's mark and the limiter that paced it.
        """
        agent = request.headers.get("User-Agent")
        if agent is None or agent == _REQUESTS_USER_AGENT:
            request.headers["User-Agent"] = USER_AGENT
        if mark is None:
            self.auth.apply(request, keep_authorization=True, hook=False)
            mark = mark_of(request)
        limiter = self.limiter
        if self.reporting_limiter is not None and is_reporting(urlsplit(url).path):
            limiter = self.reporting_limiter
        if limiter is not None:
            limiter.acquire()
        return mark, limiter

    def _retrying_429(
        self,
        limiter: RateLimiter,
        on_429: Callable[[BaseHTTPResponse], None] | None,
        response: BaseHTTPResponse,
    ) -> None:
        """A 429 the policy is about to retry: the limiter pauses, then *on_429* is told."""
        self._rate_limited(limiter, response)
        if on_429 is not None:
            on_429(response)

    def _rate_limited(self, limiter: RateLimiter, response: BaseHTTPResponse) -> None:
        """Tell *limiter* of a 429 to a call it paced, and until when Criteo asked to wait.

        The headers are read as the retry policy reads them (the adapter's own policy if it
        is a :class:`~requests_criteo.CriteoRetry`, else a default one).
        """
        retry = self._max_retries
        reader = retry if isinstance(retry, CriteoRetry) else CriteoRetry()
        limiter.rate_limited(reader.reset_at(response))


def mount(session: requests.Session, auth: CriteoAuth, **adapter_options: Any) -> CriteoAdapter:
    """Mount a :class:`CriteoAdapter` on *session* for each of *auth*'s origins, safely.

    Better than ``session.mount(...)`` by hand: the prefixes end with ``/``, and the
    session is taught to note where each redirect came from, so that a redirect from
    another site into Criteo is not given a token (a bare mounted adapter cannot tell a
    redirect hop from a request of your own)::

        requests_criteo.mount(session, CriteoAuth(client_id, client_secret), rate_limit=250)

    :param adapter_options: keyword arguments of :class:`CriteoAdapter`.
    :returns: the adapter.
    """
    adapter = CriteoAdapter(auth, **adapter_options)
    for origin in auth.api_origins:
        session.mount(origin + "/", adapter)
    if not isinstance(session, _NotesRedirects):
        session.__class__ = _noting_class(type(session))
    return adapter


class _NotesRedirects(requests.Session):
    """Sessions that record where each redirect hop came from (see :func:`note_redirect`).

    The guard is the session's class, not an attribute patched onto the instance: a
    session's pickle (``Session.__getstate__``) and its deep copy keep its class, and
    would drop such an attribute while the mounted adapter survived.
    """

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        note_redirect(prepared_request, response)


_NOTING: dict[type[requests.Session], type[_NotesRedirects]] = {}
_NOTING_LOCK = threading.Lock()


def _noting_class(base: type[requests.Session]) -> type[_NotesRedirects]:
    """*base* with :class:`_NotesRedirects` mixed in; :class:`CriteoSession` for a plain one.

    A session class of the caller's own gets a subclass made here, once per class, that
    pickles as *base* plus the guard (see :func:`_unpickle_noting`), so that it unpickles
    anywhere *base* can be imported.
    """
    if base is requests.Session:
        return CriteoSession
    with _NOTING_LOCK:
        made = _NOTING.get(base)
        if made is None:
            made = _NOTING[base] = type(
                base.__name__,
                (_NotesRedirects, base),
                {
                    "__module__": base.__module__,
                    "__qualname__": base.__qualname__,
                    "__reduce_ex__": _reduce_noting,
                },
            )
        return made


def _reduce_noting(session: requests.Session, protocol: Any) -> tuple[Any, ...]:
    base = next(c for c in type(session).__mro__[1:] if c is not _NotesRedirects)
    # Session.__getstate__ and __setstate__ exist at run time; the stubs lack them.
    return (_unpickle_noting, (base, cast(Any, session).__getstate__()))


def _unpickle_noting(base: type[requests.Session], state: dict[str, Any]) -> requests.Session:
    """A session of class *base* rebuilt from *state*, with its redirect guard again."""
    session = base.__new__(base)
    cast(Any, session).__setstate__(state)
    session.__class__ = _noting_class(base)
    return session


class SessionAuth(AuthBase):
    """The ``auth`` of the sessions :func:`session` makes: it leaves requests as they are.

    A session with an ``auth`` spares requests two lookups it makes on every call that has
    none: for credentials in the URL, and in ``~/.netrc``, which it reads from disk each
    time. (So the session's requests to other hosts do not use ``.netrc`` either.) The
    token is not put on here, when the request is prepared, but by the mounted
    :class:`CriteoAdapter` as it sends the request to a Criteo origin: a prepared request
    whose URL is changed afterwards, or that some other adapter sends, carries no token.

    :param auth: the adapter's auth, kept for ``repr()`` and for finding it again.
    """

    def __init__(self, auth: CriteoAuth) -> None:
        self.auth = auth

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r

    def __repr__(self) -> str:
        return f"SessionAuth({self.auth!r})"


class CriteoSession(_NotesRedirects):
    """The ``requests.Session`` that :func:`session` returns: it notes redirect chains.

    Exactly a ``requests.Session`` but for ``rebuild_auth``, which also records where each
    redirect hop came from, so that a redirect from another site into Criteo gets no token.
    Being a class (not a patched instance), it keeps that through pickling and copying.
    :func:`mount` turns a plain ``requests.Session`` into one. The sessions that
    :func:`session` makes have a :class:`SessionAuth` as their ``auth``.
    """


def session(
    client_id: str | None = None, client_secret: str | None = None, **options: Any
) -> requests.Session:
    """A ``requests.Session`` that authenticates its requests to Criteo.

    :class:`CriteoAdapter` is mounted on each API origin with its trailing slash;
    every other URL uses requests' ordinary adapters::

        s = requests_criteo.session(client_id, client_secret)
        s = requests_criteo.session()      # from CRITEO_CLIENT_ID / CRITEO_CLIENT_SECRET
        r = s.get("https://api.criteo.com/2025-10/marketing-solutions/me")

    :param options: keyword arguments of :class:`~requests_criteo.CriteoAuth`
        (``token_url``, ``api_origins``, ``timer``...), plus the adapter's
        ``rate_limit``, ``reporting_rate_limit``, ``max_retries``, ``pool_connections``,
        ``pool_maxsize`` and ``pool_block``.
    :raises MissingCredentialsError: no credentials given and the environment lacks one.
    """
    adapter_keys = (
        "pool_connections",
        "pool_maxsize",
        "pool_block",
        "max_retries",
        "rate_limit",
        "reporting_rate_limit",
    )
    adapter_options = {k: options.pop(k) for k in adapter_keys if k in options}
    if client_id is None and client_secret is None:
        auth = CriteoAuth.from_env(**options)
    elif client_id is None or client_secret is None:
        raise TypeError("pass both client_id and client_secret, or neither (environment)")
    else:
        auth = CriteoAuth(client_id, client_secret, **options)
    s = CriteoSession()
    mount(s, auth, **adapter_options)
    s.auth = SessionAuth(auth)
    return s
