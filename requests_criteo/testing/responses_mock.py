"""Criteo's token endpoint on a ``responses`` mock: tests of real https URLs, no sockets.

What lives here: :data:`CRITEO_TOKEN_URL` and :func:`add_token_endpoint`. What does not:
``responses`` itself, which this module never imports (a test passes its own mock), nor any
check of the token request: for that, use :class:`~requests_criteo.testing.FakeCriteo`.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Final

from ._wire import _number

#: Criteo's real token endpoint, which :func:`add_token_endpoint` mocks by default.
CRITEO_TOKEN_URL: Final = "https://api.criteo.com/oauth2/token"  # noqa: S105 - a URL


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
