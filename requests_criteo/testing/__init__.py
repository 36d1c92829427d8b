"""A local, in-process stand-in for Criteo's API, and other helpers for tests.

What lives here, by module:

* :mod:`~requests_criteo.testing.fake`: :class:`FakeCriteo`, a real HTTP/1.1 server on
  ``127.0.0.1`` playing Criteo's token endpoint and API, which a test starts, drives (faults,
  canned answers, rate limits, consent) and inspects (counters, the requests it received);
* :mod:`~requests_criteo.testing.seen`: :class:`SeenRequest`, one request as the fake received
  it, with a ``repr`` that never shows a secret or a token;
* :mod:`~requests_criteo.testing.oauth`: the fake's token endpoint, ``POST /oauth2/token``;
* :mod:`~requests_criteo.testing.tokens`: its record of clients, tokens, codes and consents;
* :mod:`~requests_criteo.testing.consent`: its stand-in for Criteo's consent page;
* :mod:`~requests_criteo.testing.api`: every other path (the ``401`` envelope, ``/me``, an echo,
  canned answers);
* :mod:`~requests_criteo.testing.rates`: its per-minute budgets, the speed of its clock, and
  :class:`Arrival`, when each call came;
* :mod:`~requests_criteo.testing.server`: the loopback HTTP/1.1 server under the fake;
* :mod:`~requests_criteo.testing.responses_mock`: :func:`add_token_endpoint`, Criteo's token
  endpoint on a ``responses`` mock, for tests of the real https URLs;
* :mod:`~requests_criteo.testing.routing`: :class:`CriteoRouting`, which sends the process's
  requests for ``https://api.criteo.com`` to the fake, so code with Criteo's URLs runs unchanged;
* :mod:`~requests_criteo.testing.redis_server`: :class:`RedisServer`, a real ``redis-server``.

What does not: no real Criteo business logic (campaigns, reports, paging), no consent web
page, no TLS, and no outgoing network traffic: the fake binds to the loopback interface only
and never connects anywhere. The fake keeps its own copy of Criteo's rules and imports
nothing from the rest of :mod:`requests_criteo`, so that it checks the library rather than
agreeing with it. Only the standard library and ``requests`` (for the routing) are used, so
importing this package never pulls a test framework or a server dependency into an
application.
"""

from __future__ import annotations

from .fake import FakeCriteo
from .oauth import TOKEN_PATH as TOKEN_PATH
from .rates import Arrival
from .redis_server import RedisServer
from .responses_mock import CRITEO_TOKEN_URL, add_token_endpoint
from .routing import CriteoRouting
from .seen import SeenRequest
from .server import MAX_BODY as MAX_BODY

__all__ = [
    "CRITEO_TOKEN_URL",
    "Arrival",
    "CriteoRouting",
    "FakeCriteo",
    "RedisServer",
    "SeenRequest",
    "add_token_endpoint",
]
