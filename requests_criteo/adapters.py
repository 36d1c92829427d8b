"""CriteoAdapter: a transport adapter that authenticates what a session sends to Criteo.

What lives here: :class:`CriteoAdapter` and :func:`session`, which builds a
``requests.Session`` with the adapter mounted. What does not: tokens and the 401 resend,
which are :class:`~requests_criteo.CriteoAuth`'s; the adapter hands each request to its
auth just before sending it, and the auth's hook resends through
``response.connection``, which requests sets to this adapter.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import default_user_agent

from .auth import USER_AGENT, CriteoAuth

__all__ = ["CriteoAdapter", "session"]

_REQUESTS_USER_AGENT = default_user_agent()


class CriteoAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that authenticates every request it sends to a Criteo origin.

    Mount it once on a session shared by the whole program, from any number of threads;
    requests to other hosts pass through untouched::

        auth = CriteoAuth(client_id, client_secret)
        session = requests.Session()
        session.mount("https://api.criteo.com/", CriteoAdapter(auth))

    Mount it on a prefix that ends with ``/``: requests matches prefixes as plain
    strings, and ``"https://api.criteo.com"`` would also catch
    ``https://api.criteo.com.evil.example``. (The auth checks the exact origin anyway,
    so such a host would still get no token.)

    A request that already carries a token from a ``CriteoAuth`` (given with ``auth=``)
    keeps it: the two together still fetch once and resend at most once. A request sent
    with requests' default User-Agent gets requests-criteo's name and version added;
    a caller's own User-Agent is kept.

    :param auth: the :class:`~requests_criteo.CriteoAuth` that provides tokens.
    :param kwargs: passed to ``HTTPAdapter`` (``pool_connections``, ``pool_maxsize``,
        ``max_retries``, ``pool_block``).
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "auth"]  # noqa: RUF012 - as in HTTPAdapter

    def __init__(self, auth: CriteoAuth, **kwargs: Any) -> None:
        if not isinstance(auth, CriteoAuth):
            raise TypeError(f"CriteoAdapter needs a CriteoAuth, not {type(auth).__name__}")
        self.auth = auth
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"CriteoAdapter({self.auth!r})"

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        """Authenticate *request* if it is for a Criteo origin, then send it."""
        url = request.url
        if url is not None and url.startswith(self.auth._prefixes):
            if request.headers.get("User-Agent", _REQUESTS_USER_AGENT) == _REQUESTS_USER_AGENT:
                request.headers["User-Agent"] = USER_AGENT
            if getattr(request, "_criteo_state", None) is None:
                self.auth(request)
        return super().send(request, **kwargs)


def session(client_id: str, client_secret: str, **options: Any) -> requests.Session:
    """A ``requests.Session`` that authenticates its requests to Criteo.

    :class:`CriteoAdapter` is mounted on each API origin with its trailing slash;
    every other URL uses requests' ordinary adapters::

        s = requests_criteo.session(client_id, client_secret)
        r = s.get("https://api.criteo.com/2025-10/marketing-solutions/me")

    :param options: keyword arguments of :class:`~requests_criteo.CriteoAuth`
        (``token_url``, ``api_origins``, ``timer``...), plus ``pool_connections``,
        ``pool_maxsize``, ``pool_block`` and ``max_retries`` for the adapter.
    """
    adapter_keys = ("pool_connections", "pool_maxsize", "pool_block", "max_retries")
    adapter_options = {k: options.pop(k) for k in adapter_keys if k in options}
    auth = CriteoAuth(client_id, client_secret, **options)
    adapter = CriteoAdapter(auth, **adapter_options)
    s = requests.Session()
    for origin in auth.api_origins:
        s.mount(origin + "/", adapter)
    return s
