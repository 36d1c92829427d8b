"""pytest fixtures for code that calls Criteo, registered by requests-criteo's entry point.

``pip install "requests-criteo[testing]"`` brings what they need; pytest then loads this
plugin, and any test can ask for

* ``fake_criteo`` — a running :class:`requests_criteo.testing.FakeCriteo` on loopback that
  answers every request the process sends to ``https://api.criteo.com`` (token endpoint and
  API, from any session), with ``CRITEO_CLIENT_ID``, ``CRITEO_CLIENT_SECRET`` and
  ``CRITEO_TOKEN_URL`` set so that ``requests_criteo.session()``, ``CriteoAuth.from_env()``
  and ``install()`` talk to it, whether the code names Criteo's URLs or the fake's;
* ``criteo_responses`` — a ``responses.RequestsMock`` with Criteo's real token endpoint
  already registered (no sockets), and the same credentials in the environment.

Both start and end with an empty process-wide token cache, so tests do not see each
other's tokens. A fixture whose dependency is missing fails, saying what to install. This
module lives outside the ``requests_criteo`` package, and imports it only when a fixture is
used, so that merely having the plugin loaded costs nothing and does not import the library
before a coverage tool starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import responses

    from requests_criteo.testing import FakeCriteo

INSTALL_HINT = 'pip install "requests-criteo[testing]"'
CRITEO_ORIGIN = "https://api.criteo.com"


def _needed(module: str, fixture: str) -> ModuleType:
    """Import *module* for *fixture*, or fail the test saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass  # failed below, so that the report is the hint alone, not a chain of errors
    pytest.fail(
        f"the {fixture} fixture needs the {module!r} package: {INSTALL_HINT}", pytrace=False
    )


def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from requests_criteo.testing import FakeCriteo

    monkeypatch.setenv("CRITEO_CLIENT_ID", FakeCriteo.CLIENT_ID)
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", FakeCriteo.CLIENT_SECRET)


def _forget_tokens() -> None:
    from requests_criteo import shared_cache

    cache = shared_cache()
    cache.clear()
    cache.memory_store.clear()


@pytest.fixture
def fake_criteo(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeCriteo]:
    """A running FakeCriteo that answers for ``https://api.criteo.com``; no URL to change.

    While the test runs, every request the process sends to ``https://api.criteo.com`` is
    answered by the fake (other hosts are untouched), and the environment holds its
    credentials and token URL::

        def test_report(fake_criteo):
            session = requests_criteo.session()          # credentials from the environment
            r = session.get("https://api.criteo.com/2025-10/retail-media/me")
            assert r.status_code == 200
            assert fake_criteo.token_requests == 1

    ``fake_criteo.url + path`` reaches the same fake directly, as before.
    """
    from requests_criteo.testing import CriteoRouting, FakeCriteo  # the library's own needs

    _forget_tokens()
    with FakeCriteo() as fake, CriteoRouting(fake.url):
        _fake_credentials(monkeypatch)
        monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
        # The routing answers https://api.criteo.com from the fake, so auths built from
        # the environment give their token there as well as to the fake's own URL.
        # The fake's first: a subprocess (criteo-auth request PATH) joins paths to it, and
        # is not routed.
        monkeypatch.setenv("CRITEO_API_ORIGINS", f"{fake.url} {CRITEO_ORIGIN}")
        # The command line's token cache of a subprocess goes to a folder of the test's.
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("criteo-cache")))
        for name in ("NO_PROXY", "no_proxy"):  # a proxy from the environment must not
            monkeypatch.setenv(name, "127.0.0.1,localhost")  # stand between the two
        yield fake
    _forget_tokens()


@pytest.fixture
def criteo_responses(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    """A ``responses`` mock with Criteo's token endpoint registered; no sockets.

    Register the API answers your code expects; tokens are issued as Criteo would::

        def test_report(criteo_responses):
            criteo_responses.get("https://api.criteo.com/2025-10/retail-media/me", json={})
            r = requests_criteo.session().get("https://api.criteo.com/2025-10/retail-media/me")
            assert r.request.headers["Authorization"].startswith("Bearer ")
    """
    responses_module = _needed("responses", "criteo_responses")
    from requests_criteo.testing import add_token_endpoint

    _forget_tokens()
    _fake_credentials(monkeypatch)
    monkeypatch.delenv("CRITEO_TOKEN_URL", raising=False)
    with responses_module.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        add_token_endpoint(rsps)
        yield rsps
    _forget_tokens()
