"""The pytest plugin, seen from a user's freshly made project (pytester, a subprocess)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def this_checkout_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's pytest imports the plugin and library of this checkout, not another install."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))


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


def test_fake_criteo_serves_httpx_clients_on_criteo_s_urls(fake_criteo):
    import asyncio

    import httpx
    from requests_criteo.httpx import CriteoHTTPXAuth

    auth = CriteoHTTPXAuth.from_env()
    url = "https://api.criteo.com/2025-10/retail-media/me"
    with httpx.Client(auth=auth) as client:
        assert client.get(url).status_code == 200

    async def call():
        async with httpx.AsyncClient(auth=auth) as client:
            return (await client.get(url)).status_code

    assert asyncio.run(call()) == 200
    assert (fake_criteo.token_requests, fake_criteo.api_requests) == (1, 2)


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
    result.assert_outcomes(passed=8)


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
    result.assert_outcomes(passed=7)


# -- the fake answers for https://api.criteo.com -------------------------------------------

# The user's project refuses every name lookup but loopback's: a request that would reach
# the real network fails instead of connecting (and the first test proves it does).
LOOPBACK_ONLY = """
import socket

import pytest

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK:
            raise OSError(f"this test may not reach {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
"""

CRITEO_URLS_WRITTEN_IN = """
import pytest
import requests
import requests_criteo
from requests_criteo import CriteoAuth
from requests_criteo.testing import FakeCriteo

ME = "https://api.criteo.com/2025-10/retail-media/me"


def answered_by(fake, r, api_requests=1):
    assert r.status_code == 200
    assert r.json()["data"]["id"] == FakeCriteo.CLIENT_ID
    assert r.url == ME and r.request.url == ME
    assert fake.api_requests == api_requests
    assert fake.api_calls()[-1].header("Host") == "api.criteo.com"


def test_without_the_fixture_nothing_reaches_criteo():
    with pytest.raises(requests.ConnectionError, match="may not reach api.criteo.com"):
        requests.get(ME, timeout=5)


def test_a_session_from_the_environment(fake_criteo):
    r = requests_criteo.session().get(ME, timeout=5)
    answered_by(fake_criteo, r)
    assert fake_criteo.token_requests == 1


def test_install_and_plain_requests_get(fake_criteo):
    with requests_criteo.install():
        r = requests.get(ME, timeout=5)
    answered_by(fake_criteo, r)
    assert fake_criteo.token_requests == 1


def test_an_auth_from_the_environment(fake_criteo):
    r = requests.get(ME, auth=CriteoAuth.from_env(), timeout=5)
    answered_by(fake_criteo, r)
    assert fake_criteo.token_requests == 1


def test_the_real_token_endpoint_too(fake_criteo):
    auth = CriteoAuth(FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET)
    assert auth.token_url == "https://api.criteo.com/oauth2/token"
    answered_by(fake_criteo, requests.get(ME, auth=auth, timeout=5))
    [token_request] = fake_criteo.token_endpoint_requests()
    assert token_request.header("Host") == "api.criteo.com"


def test_a_revoked_token_is_renewed_and_the_call_resent(fake_criteo):
    session = requests_criteo.session()
    session.get(ME, timeout=5)
    fake_criteo.revoke()
    r = session.get(ME, timeout=5)
    assert [h.status_code for h in r.history] == [401]
    answered_by(fake_criteo, r, api_requests=3)
    assert fake_criteo.token_requests == 2


def test_criteo_s_urls_and_the_fake_s_share_one_token(fake_criteo):
    session = requests_criteo.session()
    assert session.get(fake_criteo.url + "/2025-10/retail-media/me", timeout=5).ok
    answered_by(fake_criteo, session.get(ME, timeout=5), api_requests=2)
    assert fake_criteo.api_calls()[0].header("Host") == fake_criteo.url[len("http://"):]
    assert fake_criteo.token_requests == 1


def test_a_script_posting_to_criteo_s_token_endpoint_itself(fake_criteo):
    form = {"client_id": FakeCriteo.CLIENT_ID, "client_secret": FakeCriteo.CLIENT_SECRET,
            "grant_type": "client_credentials"}
    auth = CriteoAuth.from_env(token_url=requests_criteo.DEFAULT_TOKEN_URL)
    with requests_criteo.install(auth):
        token = requests.post(auth.token_url, data=form, timeout=5).json()["access_token"]
        r = requests.get(ME, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    answered_by(fake_criteo, r)
    assert fake_criteo.token_requests == 1
    assert fake_criteo.token_endpoint_requests()[0].header("Authorization") is None


def test_other_hosts_are_left_alone(fake_criteo):
    with FakeCriteo() as other:
        r = requests.get(other.url + "/2025-10/retail-media/me", timeout=5)
        assert r.status_code == 401 and r.url.startswith(other.url)
        assert other.api_requests == 1
    assert fake_criteo.api_requests == 0
    with pytest.raises(requests.ConnectionError, match="may not reach www.criteo.com"):
        requests.get("https://www.criteo.com/", timeout=5)
"""


def test_code_with_criteo_s_urls_written_in_it_is_answered_by_the_fake(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(LOOPBACK_ONLY)
    pytester.makepyfile(test_user_code=CRITEO_URLS_WRITTEN_IN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=9)


def test_criteo_s_urls_are_answered_in_a_hostile_environment_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead proxy and a stray token URL: what is routed goes straight to the fake regardless.

    (Other hosts do go to that proxy: the routing leaves them as they were.)
    """
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRITEO_TOKEN_URL", "https://token.invalid/oauth2/token")
    pytester.makeconftest(LOOPBACK_ONLY)
    pytester.makepyfile(test_user_code=CRITEO_URLS_WRITTEN_IN)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "-k", "not (without_the_fixture or other_hosts)"
    )
    result.assert_outcomes(passed=7, deselected=2)


PUT_BACK = """
import os

from requests.adapters import HTTPAdapter

SEND = HTTPAdapter.send


def test_1_routed_while_the_test_runs(fake_criteo):
    assert HTTPAdapter.send is not SEND
    assert os.environ["CRITEO_API_ORIGINS"].split() == [fake_criteo.url, "https://api.criteo.com"]


def test_2_a_failing_test_with_the_fixture(fake_criteo):
    raise AssertionError("the fixture must still put requests back")


def test_3_requests_and_the_environment_are_as_they_were():
    assert HTTPAdapter.send is SEND
    assert "CRITEO_API_ORIGINS" not in os.environ
"""


def test_after_the_test_requests_is_put_back_exactly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_code=PUT_BACK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2, failed=1)


WITHOUT_RESPONSES = """
import sys

sys.modules["responses"] = None  # as if it were not installed


def test_uses_criteo_responses(criteo_responses):
    pass
"""


def test_a_fixture_missing_its_dependency_says_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user_code=WITHOUT_RESPONSES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    message = (
        "the criteo_responses fixture needs the 'responses' package: "
        'pip install "requests-criteo[testing]"'
    )
    assert message in result.stdout.lines


A_SUBPROCESS = """
import os
import pathlib
import subprocess
import sys


def test_criteo_auth_in_a_subprocess(fake_criteo):
    me = "/2025-10/retail-media/me"
    command = [sys.executable, "-m", "requests_criteo", "request", "GET", me]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (fake_criteo.token_requests, fake_criteo.api_requests) == (1, 1)
    cached = pathlib.Path(os.environ["XDG_CACHE_HOME"]) / "requests-criteo" / "tokens.json"
    assert cached.exists()
"""


def test_a_criteo_auth_subprocess_reaches_the_fake_and_caches_in_a_folder_of_the_test(
    pytester: pytest.Pytester,
) -> None:
    """Subprocesses are not routed: the environment leads them to the fake, and their
    token cache to a folder of the test's, never the user's own."""
    pytester.makeconftest(LOOPBACK_ONLY)
    pytester.makepyfile(test_user_code=A_SUBPROCESS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=1)
