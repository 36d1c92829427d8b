"""The pytest plugin, seen from a user's freshly made project (pytester, a subprocess)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import requests
import requests_criteo
from requests_criteo import CriteoAuth


def test_fake_criteo_is_wired_into_the_environment(fake_criteo):
    session = requests_criteo.session()
    r = session.get(fake_criteo.url + "/2025-10/retail-media/me", timeout=5)
    assert r.status_code == 200
    assert CriteoAuth.from_env().token_url == fake_criteo.token_url
    assert fake_criteo.token_requests == 1


def test_fake_criteo_revokes_and_the_library_recovers(fake_criteo):
    session = requests_criteo.session()
    session.get(fake_criteo.url + "/2025-10/retail-media/me", timeout=5)
    fake_criteo.revoke()
    r = session.get(fake_criteo.url + "/2025-10/retail-media/me", timeout=5)
    assert [h.status_code for h in r.history] == [401]
    assert fake_criteo.token_requests == 2


def test_each_test_starts_without_cached_tokens(fake_criteo):
    requests_criteo.session().get(fake_criteo.url + "/2025-10/retail-media/me", timeout=5)
    assert fake_criteo.token_requests == 1


def test_fake_criteo_errors(fake_criteo):
    fake_criteo.set_error("/2025-10/retail-media/accounts")
    r = requests_criteo.session().get(fake_criteo.url + "/2025-10/retail-media/accounts")
    assert r.status_code == 403
    assert requests_criteo.envelope(r).errors[0].code == "insufficient-advertisers-permissions"


def test_criteo_responses_registers_the_token_endpoint(criteo_responses):
    api = criteo_responses.get("https://api.criteo.com/2025-10/retail-media/me", json={"a": 1})
    r = requests_criteo.session().get("https://api.criteo.com/2025-10/retail-media/me")
    assert r.json() == {"a": 1}
    assert r.request.headers["Authorization"] == "Bearer fake-token-1"
    assert api.call_count == 1


def test_criteo_responses_starts_clean_too(criteo_responses):
    criteo_responses.get("https://api.criteo.com/2025-10/retail-media/me", json={})
    r = requests.get("https://api.criteo.com/2025-10/retail-media/me",
                     auth=CriteoAuth.from_env())
    assert r.request.headers["Authorization"] == "Bearer fake-token-1"
    # The test before cached a token for the same client and endpoint: it must be gone.
    token_url = requests_criteo.DEFAULT_TOKEN_URL
    assert [c.request.url for c in criteo_responses.calls].count(token_url) == 1
"""


FIRST_COLLECTED = """
import sys

# Collected (imported) before test_user_code: the plugin alone must not have imported
# the library, so that loading it costs nothing and a coverage tool sees every line.
IMPORTED_BY_THE_PLUGIN = "requests_criteo" in sys.modules


def test_the_plugin_imports_nothing_until_used():
    assert not IMPORTED_BY_THE_PLUGIN
"""


def test_a_users_project_gets_the_fixtures_with_no_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a_first=FIRST_COLLECTED, test_user_code=USER_TESTS)
    assert not (pytester.path / "conftest.py").exists()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=7)


def test_the_fixtures_hold_in_a_hostile_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead proxy and a stray CRITEO_TOKEN_URL in the user's environment change nothing."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRITEO_TOKEN_URL", "https://token.invalid/oauth2/token")
    pytester.makepyfile(test_user_code=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=6)
