"""What a request to Criteo goes through once a token is put on it, and its one resend.

1. Whoever puts the token on (:meth:`CriteoAuth.apply <requests_criteo.CriteoAuth.apply>`,
   the mounted adapter, ``install()``) marks the request with a :class:`Mark`: whose
   credentials, which token (``None`` for a ``Bearer`` header of the caller's own), where
   its body starts. The mark lives on that request only: a copy or a redirect hop that
   requests makes does not carry it.
2. Sessions that note redirects (:func:`~requests_criteo.mount`,
   :func:`~requests_criteo.session`, :func:`~requests_criteo.install`) call
   :func:`note_redirect` for each hop: it records the URLs the hop came through, so that a
   redirect from another site into Criteo gets no token, and carries the mark over to a
   hop that still carries the token.
3. On a 401, :func:`resend_once` checks the origin and the chain again, drops the token
   from the cache only if it is still the cached one (so a storm of 401s makes one token
   request), rewinds the body or gives up, carries the 401's cookies, and sends a copy
   once through the adapter that got the 401. The resend's mark says it is one: a second
   401 is returned as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from requests.cookies import extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from ._reading import read_capped

if TYPE_CHECKING:
    import requests

    from ._cache import Token
    from ._credentials import Credentials

__all__ = ["MAX_401_BODY", "MAX_401_SECONDS", "Mark", "note_redirect", "resend_once"]

log = logging.getLogger("requests_criteo")

#: The most of a 401's body read before its connection is released for the resend.
MAX_401_BODY = 64 * 1024
#: The longest a 401's body is read before the resend (Criteo's arrive with the headers).
MAX_401_SECONDS = 1.0

# Attributes of our own, set on requests' objects (never one of theirs).
_MARK = "_criteo_mark"
_CHAIN = "_criteo_chain"
_HANDLED = "_criteo_handled"

#: Bodies sent as they are, which can therefore be sent again.
_AS_IS_BODIES = (bytes, bytearray, memoryview, str)


def replay_position(body: object) -> tuple[bool, int | None]:
    """Whether *body* can be sent again, and the position to rewind a stream to.

    ``None``, ``bytes``, ``bytearray``, ``memoryview`` and ``str`` can; so can a stream
    whose ``seekable()`` (when it has one) and ``tell()`` succeed. A generator, an iterator,
    a pipe or a socket cannot: once sent, gone.
    """
    if body is None or isinstance(body, _AS_IS_BODIES):
        return True, None
    seek, tell = getattr(body, "seek", None), getattr(body, "tell", None)
    if seek is None or tell is None:
        return False, None
    try:
        seekable = getattr(body, "seekable", None)
        if seekable is not None and not seekable():
            return False, None
        position = tell()
    except (OSError, ValueError):
        return False, None
    return (True, position) if isinstance(position, int) else (False, None)


@dataclass(slots=True)
class Mark:
    """What one request needs for its resend; set on the request once, and left alone.

    It holds the credentials, not the auth: a request sent again after its auth is gone
    (a retry helper, an adapter's request sent elsewhere) is still resent with them
    (tests/test_hot_path.py: ``test_a_request_whose_auth_is_gone_is_resent_by_the_auth_
    handling_its_401``). It shares nothing with other requests.
    """

    credentials: Credentials
    #: The token put on the request; ``None`` for a ``Bearer`` header of the caller's own.
    token: Token | None
    replayable: bool = True
    body_position: int | None = None
    resent: bool = False

    @classmethod
    def put_on(
        cls, request: requests.PreparedRequest, credentials: Credentials, token: Token | None
    ) -> None:
        """Mark *request*, whose body is where sending it will start."""
        body: object = request.body  # typed bytes | str | None, but any stream may be there
        if body is None or isinstance(body, _AS_IS_BODIES):
            mark = cls(credentials, token)
        else:
            mark = cls(credentials, token, *replay_position(body))
        setattr(request, _MARK, mark)

    def __reduce__(self) -> tuple[Any, ...]:
        # A pickled request (in an exception, say) carries no mark, and so no token.
        return (type(None), ())

    def rewind(self, request: requests.PreparedRequest) -> bool:
        """Put the body back where it started; ``False`` if that cannot be done."""
        body: Any = request.body
        if body is None or isinstance(body, _AS_IS_BODIES):
            # Nothing to rewind (a mock transport may already have read a file into bytes).
            return self.replayable
        if self.body_position is None:
            return self.replayable and _rewound_by_requests(request)
        try:
            body.seek(self.body_position)
        except (OSError, ValueError, AttributeError):
            return False
        return True

    def for_hop(self, hop: requests.PreparedRequest) -> Mark:
        """This mark for a redirect *hop* of its request, which carries the same token.

        A 301, 302 or 303 hop has no body any more (requests drops it): it can be resent,
        whatever its request's body was. A 307 or 308 hop carries the same body.
        """
        body: object = hop.body
        if body is None or isinstance(body, _AS_IS_BODIES):
            return Mark(self.credentials, self.token)
        return Mark(self.credentials, self.token, self.replayable, self.body_position)

    def forget(self, request: requests.PreparedRequest) -> None:
        """After a 401: drop the token if still cached, or remember the caller's as refused."""
        if self.token is not None:
            self.credentials.drop(self.token)
            return
        header = request.headers.get("Authorization")
        if header is not None:
            self.credentials.refuse(header)


def mark_of(request: requests.PreparedRequest) -> Mark | None:
    """The mark of *request*, if a token was put on it by this library."""
    mark: Mark | None = getattr(request, _MARK, None)
    return mark


def chain_of(request: requests.PreparedRequest) -> tuple[str, ...]:
    """The URLs a redirect hop came through, as noted by :func:`note_redirect`."""
    chain: tuple[str, ...] = getattr(request, _CHAIN, ())
    return chain


def note_redirect(hop: requests.PreparedRequest, response: requests.Response) -> None:
    """Record where *hop* came from, and carry the mark to it if it still has the token.

    Called by ``Session.rebuild_auth`` in the sessions that note redirects.
    """
    previous = response.request
    setattr(hop, _CHAIN, (*chain_of(previous), previous.url or ""))
    mark = mark_of(previous)
    token = mark.token if mark is not None else None
    if mark is not None and token is not None and hop.headers.get("Authorization") == token.header:
        setattr(hop, _MARK, mark.for_hop(hop))


def resend_once(
    response: requests.Response, credentials: Credentials, **send_options: Any
) -> requests.Response:
    """On a 401 from Criteo to a request this library authenticated, refresh and resend once.

    :param credentials: those of the auth or adapter handling the 401, for a redirect hop
        that lost its mark; a marked request is resent with its own.
    :param send_options: the options the 401's request was sent with (stream, timeout,
        verify, cert, proxies); the resend uses the same.
    :returns: the resend's response, whose ``history`` holds the 401; or *response* itself
        when nothing is to be done: not a 401, not ours, a resend already, or a body that
        cannot be sent again (a generator, a non-seekable stream).
    """
    mark = _claim(response, credentials)
    if mark is None:
        return response
    request = response.request
    where = (request.url or "").split("?", 1)[0]  # a query may carry ids not worth logging
    if not mark.replayable:
        log.warning(
            "Criteo answered 401 to %s %s, whose body is a stream that cannot be sent "
            "again; returning the 401 (pass bytes or a seekable file to get a resend)",
            request.method,
            where,
        )
        mark.forget(request)
        return response
    _release(response)
    log.debug("401 from %s: refreshing the token and resending once", where)
    mark.forget(request)
    token = mark.credentials.token()
    prep = request.copy()
    if not mark.rewind(prep):
        log.warning("could not rewind the body of %s %s; returning the 401", request.method, where)
        return response
    _carry_cookies(prep, request, response)
    prep.headers["Authorization"] = token.header
    setattr(prep, _MARK, Mark(mark.credentials, token, True, mark.body_position, resent=True))
    resent: requests.Response = response.connection.send(prep, **send_options)
    resent.history.append(response)
    resent.request = prep
    return resent


def _claim(response: requests.Response, credentials: Credentials) -> Mark | None:
    """Claim a 401 that this library is to resend, once: its mark; ``None`` for anything else.

    The first look at a 401 claims it (marks it handled), whatever it finds.
    """
    if response.status_code != 401 or getattr(response, _HANDLED, False):
        return None
    # Once per 401: an adapter that handled it may hand it on to a hook unchanged.
    setattr(response, _HANDLED, True)
    request = response.request
    mark = mark_of(request) or _adopt(request, credentials)
    url = request.url
    if mark is None or mark.resent or url is None:
        return None
    if not mark.credentials.scope.allows(url, chain_of(request)):
        return None
    return mark


def _adopt(request: requests.PreparedRequest, credentials: Credentials) -> Mark | None:
    """A mark for a redirect hop that lost its own but carries the credentials' token.

    requests copies a request for each hop without our mark, and keeps its
    ``Authorization`` on a same-host hop. In a session that does not note redirects, such
    a hop is resent if its body can be: none, bytes or text, or a stream requests itself
    can rewind to where it recorded its start.
    """
    header = request.headers.get("Authorization")
    token = credentials.token_for(header) if header is not None else None
    if token is None:
        return None
    body: object = request.body
    sent_as_is = body is None or isinstance(body, _AS_IS_BODIES)
    return Mark(credentials, token, sent_as_is or hasattr(body, "seek"))


def _rewound_by_requests(request: requests.PreparedRequest) -> bool:
    """Rewind a hop's stream to where requests recorded its start (its own ``rewind_body``)."""
    try:
        rewind_body(request)
    except UnrewindableBodyError:
        return False
    return True


def _release(response: requests.Response) -> None:
    """Read the 401 (at most :data:`MAX_401_BODY`, for at most :data:`MAX_401_SECONDS`) and
    give its connection back.

    Without this, a resend under ``stream=True`` with a blocking pool of one connection
    would wait forever for the connection the 401 still holds. A 401 too large or too slow
    has its connection closed instead; what was read stays in ``history`` for the caller.
    """
    read_capped(response, MAX_401_BODY, within=MAX_401_SECONDS)
    response.close()


def _carry_cookies(
    prep: requests.PreparedRequest, request: requests.PreparedRequest, response: requests.Response
) -> None:
    """Add the cookies the 401 set to the resend's ``Cookie`` header.

    requests has no public way to reach a prepared request's cookie jar; its own
    ``HTTPDigestAuth.handle_401`` uses ``_cookies`` for this very step, and so do we.
    """
    jar = prep._cookies  # type: ignore[attr-defined]
    extract_cookies_to_jar(jar, request, response.raw)  # type: ignore[no-untyped-call]
    prep.prepare_cookies(jar)
