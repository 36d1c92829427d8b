"""CriteoAdapter as a transport adapter: it takes what requests passes to any adapter.

It is called as requests calls an ``HTTPAdapter`` (``send(request, stream, timeout,
verify, cert, proxies)``, by position or by name) and adds the token on its way out.
Against FakeCriteo on 127.0.0.1.
"""

from __future__ import annotations

import requests

from requests_criteo import CriteoAdapter, CriteoAuth
from requests_criteo.testing import FakeCriteo

from .conftest import me, summary


def test_criteo_adapter_send_takes_positional_arguments(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    prepared = requests.Request("GET", me(fake)).prepare()
    adapter = CriteoAdapter(criteo_auth)
    try:
        assert summary(adapter.send(prepared, False, 5, True, None, None)) == (200, [])
    finally:
        adapter.close()
    assert fake.api_calls()[-1].bearer is not None
