"""Criteo's real URLs answered by a local fake: :class:`CriteoRouting`, for tests only.

What lives here: the switch that, while it is on, sends every request this process makes to
``https://api.criteo.com`` (token endpoint and API, from any ``requests`` session,
``requests.get``, an installed auth, and, when httpx is installed, any ``httpx.Client`` or
``httpx.AsyncClient``: :mod:`.httpx_routing`) to a loopback URL instead, so that code with
Criteo's URLs written in it is tested unchanged. What does not: the fake that answers
(:class:`~requests_criteo.testing.FakeCriteo`), nor anything that decides which requests
carry a token: that stays the library's, unchanged, and this module imports nothing of it.

Why ``HTTPAdapter.send``: every ``requests`` call ends there, whichever session, adapter
subclass or auth made it (``responses`` patches the same method for the same reason), and
the user's own adapters, with their retries and rate limits, still run above it. The
forwarded request goes over plain http to the loopback port, so no TLS and no proxy is
involved, and nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar

try:  # httpx clients are routed too when httpx is installed (the httpx extra)
    from .httpx_routing import HTTPXRouting
except ImportError:  # pragma: no cover - httpx is installed in every test env
    _WITH_HTTPX = False
else:
    _WITH_HTTPX = True

CRITEO_HOST: Final = "api.criteo.com"
"""The host whose https requests are routed: Criteo's token endpoint and API."""

_lock = threading.Lock()
_active: list[CriteoRouting] = []  # the routing in force, if any (they do not nest)


def _is_criteo(url: str | None) -> bool:
    """Whether *url* is https to Criteo's API host, on its default port."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:  # not a URL requests would send anyway; leave it to requests
        return False
    return parts.scheme == "https" and parts.hostname == CRITEO_HOST and port in (None, 443)


class CriteoRouting:
    """While entered, requests to ``https://api.criteo.com`` are answered by *target*.

    *target* is the loopback origin of a fake, such as :attr:`FakeCriteo.url
    <requests_criteo.testing.FakeCriteo.url>`. Each request to ``https://api.criteo.com``
    (port 443) is sent to ``target`` + its path and query, with ``Host: api.criteo.com``
    and without a proxy; the answer comes back with ``url`` and ``request`` as the caller
    sent them, so redirects, cookies and a 401's resend behave as they would against
    Criteo. Every other URL, the fake's own included, goes through untouched. Leaving the
    block puts ``requests.adapters.HTTPAdapter.send`` back as it was::

        with FakeCriteo() as fake, CriteoRouting(fake.url):
            r = requests.get("https://api.criteo.com/2025-10/retail-media/me", auth=auth)
            assert fake.api_requests == 1

    The ``fake_criteo`` pytest fixture does this for you. Routings do not nest: entering
    a second one while one is active raises ``RuntimeError``.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"target must be a loopback http URL, not {target!r}")
        self.target = target.rstrip("/")
        self.routed = 0
        """Requests sent to the target on Criteo's behalf so far."""
        self._original: Callable[..., Response] = HTTPAdapter.send
        self._patch: object = None
        self._live = False
        self._httpx = HTTPXRouting(target, _is_criteo, self._count) if _WITH_HTTPX else None

    def __repr__(self) -> str:
        return f"CriteoRouting({self.target!r}, routed={self.routed})"

    def __enter__(self) -> CriteoRouting:
        with _lock:
            if _active:
                raise RuntimeError(f"{_active[0]!r} is already active")
            self._original = HTTPAdapter.send
            self._patch = self._make_send()
            self._live = True
            _active.append(self)
            setattr(HTTPAdapter, "send", self._patch)  # noqa: B010 - a plain function, bound by the class
            if self._httpx is not None:
                self._httpx.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with _lock:
            if HTTPAdapter.send is self._patch:
                setattr(HTTPAdapter, "send", self._original)  # noqa: B010 - see __enter__
            # Else something patched over us since (a mock): it keeps its place, and ours,
            # which it calls, passes everything through from now on.
            self._live = False
            _active.clear()
            if self._httpx is not None:
                self._httpx.stop()

    def _count(self) -> None:
        with _lock:
            self.routed += 1

    def _make_send(self) -> Callable[..., Response]:
        """The ``HTTPAdapter.send`` of this routing: Criteo's requests go to the target."""
        original = self._original

        def send(
            adapter: HTTPAdapter,
            request: PreparedRequest,
            stream: bool = False,
            timeout: Any = None,
            verify: bool | str = True,
            cert: Any = None,
            proxies: Mapping[str, str] | None = None,
        ) -> Response:
            if not (self._live and _is_criteo(request.url)):
                return original(adapter, request, stream, timeout, verify, cert, proxies)
            return self._forward(adapter, request, stream, timeout, verify, cert)

        return send

    def _forward(
        self,
        adapter: HTTPAdapter,
        request: PreparedRequest,
        stream: bool,
        timeout: Any,
        verify: bool | str,
        cert: Any,
    ) -> Response:
        forwarded = request.copy()
        forwarded.url = self.target + request.path_url
        forwarded.headers["Host"] = CRITEO_HOST
        self._count()
        # No proxy: the environment's, chosen for api.criteo.com, must not see loopback.
        response = self._original(adapter, forwarded, stream, timeout, verify, cert, {})
        response.request = request
        response.url = request.url or ""
        response.cookies = RequestsCookieJar()
        extract_cookies_to_jar(response.cookies, request, response.raw)  # type: ignore[no-untyped-call]
        return response
