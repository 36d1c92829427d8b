"""What the Redis-backed objects share: the client they build, and how they ride out an outage.

What lives here: :class:`OnRedis` (a client with short socket timeouts, from a URL or the
caller's own; pickled as its URL), :func:`where` (a URL without its password, for reprs),
:data:`UNREACHABLE` and :class:`Outage` (one warning per outage, probes every
``retry_interval``). What does
not: any key or command of the token store (:mod:`.redis_store`) or of the rate limiter
(:mod:`.redis_ratelimit`). Needs the ``redis`` extra.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

try:
    import redis
except ImportError as exc:  # pragma: no cover - the extra is installed in every test env
    raise ImportError(
        'the Redis store and rate limiter need redis-py: pip install "requests-criteo[redis]"'
    ) from exc

__all__ = ["UNREACHABLE", "OnRedis", "Outage", "redis", "where"]

log = logging.getLogger("requests_criteo")

#: What a Redis that is down, slow or frozen raises.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


class OnRedis:
    """An object on Redis: its client, where it is (no password), and pickling by URL.

    A subclass's ``__init__`` takes the URL (or client) first, then the keyword arguments
    named in :attr:`_options`, which are also attributes of the same names.
    """

    _options: ClassVar[tuple[str, ...]] = ()
    client: redis.Redis
    _url: str | None

    def _connect(self, url_or_client: str | redis.Redis, socket_timeout: float) -> None:
        """From a URL, a client whose every operation waits at most *socket_timeout*; a
        ``redis.Redis`` of the caller's own as it is (its timeouts are theirs).
        """
        if isinstance(url_or_client, str):
            self._url = url_or_client
            self.client = redis.Redis.from_url(
                url_or_client, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        elif isinstance(url_or_client, redis.Redis):
            self._url, self.client = None, url_or_client
        else:
            raise TypeError(f"{type(self).__name__} needs a redis:// URL or a redis.Redis client")

    def _place(self) -> str:
        return where(self._url) if self._url else repr(self.client)

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            name = type(self).__name__
            raise TypeError(f"a {name} built from a client is not pickled; use a URL")
        return {"url": self._url, **{option: getattr(self, option) for option in self._options}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        init: Any = type(self).__init__  # the subclass's, which takes the URL and options
        init(self, state.pop("url"), **state)


def where(url: str) -> str:
    """*url* without what may hold a password: user info, and the query (``?password=``)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class Outage:
    """Whether Redis is worth asking: after a failure, not for *retry_interval* seconds.

    Logs one warning when an outage begins (``"<what> unreachable ... <fallback>"``) and one
    when Redis answers again (``"<what> answers again: <recovered>"``), whatever the number
    of calls in between.
    """

    def __init__(self, retry_interval: float, what: str, fallback: str, recovered: str) -> None:
        self.retry_interval = retry_interval
        self.what, self.fallback, self.recovered = what, fallback, recovered
        self._state = threading.Lock()
        self._down_until: float | None = None  # monotonic; None while Redis answers

    def after_fork(self) -> None:
        self._state = threading.Lock()  # another thread of the parent may have held it

    @property
    def available(self) -> bool:
        """Whether Redis answered last time it was asked."""
        with self._state:
            return self._down_until is None

    def usable(self) -> bool:
        """Whether to ask Redis now: it answers, or its outage's ``retry_interval`` is over."""
        with self._state:
            return self._down_until is None or time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        with self._state:
            first = self._down_until is None
            self._down_until = time.monotonic() + self.retry_interval
        if first:
            log.warning("%s unreachable (%s): %s", self.what, type(exc).__name__, self.fallback)

    def answered(self) -> None:
        with self._state:
            was_down = self._down_until is not None
            self._down_until = None
        if was_down:
            log.warning("%s answers again: %s", self.what, self.recovered)
