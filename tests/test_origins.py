"""Which URLs may receive a token, and which token URLs and origins are refused.

A token URL is recognised however the caller spelled it (case, percent-escapes).
"""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from requests_criteo import (
    CriteoAdapter,
    CriteoAuth,
    InsecureTransportError,
    MemoryTokenStore,
    TokenCache,
)
from requests_criteo._origins import is_loopback, parse_origin
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, FakeClock, V, me, summary


def prepared(url: str) -> str:
    """The URL as requests prepares it, which is what an auth sees."""
    url_ = requests.Request("GET", url).prepare().url
    assert url_ is not None
    return url_


CRITEO = parse_origin("https://api.criteo.com", what="t", allow_path=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.criteo.com/2025-10/retail-media/me",
        "https://api.criteo.com",
        "https://api.criteo.com:443/x",
        "https://API.Criteo.COM/x",  # the same host: requests lower-cases it
        "https://api.criteo.com/x?q=https://evil.example/",
    ],
)
def test_criteo_urls_are_in_scope(url: str) -> None:
    assert prepared(url).startswith(CRITEO.prefixes)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.criteo.com.evil.example/2025-10/retail-media/me",
        "https://api.criteo.com@evil.example/",
        "https://api.criteo.com:443@evil.example/",
        "https://user:pw@api.criteo.com/",
        "https://api.criteo.com:8443/",
        "http://api.criteo.com/",
        "https://api.criteo.com./",
        "https://evil.example/https://api.criteo.com/",
        "https://API.CRITEO.COM.EVIL.EXAMPLE/",
        "https://xapi.criteo.com/",
        "https://criteo.com/",
    ],
)
def test_look_alikes_are_out_of_scope(url: str) -> None:
    assert not prepared(url).startswith(CRITEO.prefixes)


@given(st.text(min_size=1, max_size=30))
def test_nothing_after_the_host_but_a_slash_is_in_scope(suffix: str) -> None:
    # Whatever follows the host name, unless it starts the path, makes another authority.
    url = "https://api.criteo.com" + suffix
    if url.startswith(CRITEO.prefixes):
        assert suffix.startswith(("/", ":443/"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://api.criteo.com/oauth2/token", InsecureTransportError),
        ("http://10.0.0.1/oauth2/token", InsecureTransportError),
        ("ftp://api.criteo.com/oauth2/token", ValueError),
        ("api.criteo.com/oauth2/token", ValueError),
        ("https://user:pw@api.criteo.com/oauth2/token", ValueError),
        ("https://api.criteo.com/oauth2/token?x=1", ValueError),
        ("https://api.criteo.com/oauth2/token#f", ValueError),
        ("https://api.criteo.com:99999/oauth2/token", ValueError),
        ("https://api.criteo.com./oauth2/token", ValueError),
        ("https://", ValueError),
    ],
)
def test_bad_token_urls_are_refused_before_any_socket(url: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        CriteoAuth("id", SECRET, token_url=url, cache=TokenCache())
    assert SECRET not in str(info.value)


def test_token_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="token_url must be a string"):
        CriteoAuth("id", SECRET, token_url=b"https://api.criteo.com/oauth2/token")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "origin",
    ["https://api.criteo.com/2025-10", "http://api.criteo.com", "https://api.criteo.com?x"],
)
def test_bad_api_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValueError, match="api_origins"):
        CriteoAuth("id", SECRET, api_origins=[origin])


def test_empty_api_origins_are_refused() -> None:
    with pytest.raises(ValueError, match="api_origins is empty"):
        CriteoAuth("id", SECRET, api_origins=[])


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("localhost.evil.example", False),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("api.criteo.com", False),
    ],
)
def test_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_loopback_http_is_accepted_and_scoped_to_its_port() -> None:
    auth = CriteoAuth("id", SECRET, token_url="http://127.0.0.1:8080/oauth2/token")
    assert auth.api_origins == ("http://127.0.0.1:8080",)
    assert auth.credentials.scope.covers("http://127.0.0.1:8080/2025-10/x")
    assert not auth.credentials.scope.covers("http://127.0.0.1:8081/2025-10/x")


def test_ipv6_loopback_origin() -> None:
    origin = parse_origin("http://[::1]:8080", what="o", allow_path=False)
    assert str(origin) == "http://[::1]:8080"
    assert prepared("http://[::1]:8080/x").startswith(origin.prefixes)


def test_several_api_origins() -> None:
    auth = CriteoAuth(
        "id", SECRET, api_origins=["https://api.criteo.com", "https://a.example:8443"]
    )
    assert auth.api_origins == ("https://api.criteo.com", "https://a.example:8443")
    assert auth.credentials.scope.covers(prepared("https://a.example:8443/v"))
    assert not auth.credentials.scope.covers(prepared("https://a.example/v"))


# -- the token URL as the caller spelled it --------------------------------------------------


def test_a_non_canonical_token_url_is_recognised_and_never_waits_on_itself(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    port = fake.url.rsplit(":", 1)[1]
    token_url = f"http://LOCALHOST:{port}/oauth2/%74oken"
    with requests.Session() as token_session:
        auth = CriteoAuth(
            CLIENT_ID,
            SECRET,
            token_url=token_url,
            token_session=token_session,
            api_origins=[fake.url, f"http://localhost:{port}"],
            cache=TokenCache(timer=clock),
            store=MemoryTokenStore(),
            deadline=1.0,
        )
        assert auth.is_token_url(token_url)
        assert auth.is_token_url(f"http://localhost:{port}/oauth2/token")
        assert auth.is_token_url(f"http://localhost:{port}/oauth2/token?x=1")
        assert not auth.is_token_url(f"http://localhost:{port}/{V}/retail-media/me")
        adapter = CriteoAdapter(auth)
        for origin in auth.api_origins:
            token_session.mount(origin + "/", adapter)
        start = time.monotonic()
        assert summary(token_session.get(me(fake), timeout=5)) == (200, [])
        assert time.monotonic() - start < 3
    assert fake.token_requests == 1
    assert fake.token_endpoint_requests()[0].header("Authorization") is None
    assert fake.api_calls()[-1].bearer is not None


@pytest.mark.parametrize(
    "token_url",
    [
        "https://API.Criteo.com/oauth2/token",
        "https://api.criteo.com/oauth2/%7etoken",
        "https://api.criteo.com/o auth2/token",
        "https://api.criteo.com/oauth2/tökén",
        "https://api.criteo.com/a/../oauth2/token",
        "https://api.criteo.com:443/oauth2/token",
        "https://api.criteo.com/oauth2/token%2f",
    ],
)
def test_the_token_url_however_spelled_never_gets_a_bearer_token(token_url: str) -> None:
    """Recognised as requests sends it: case, escapes, dot segments, the default port."""
    auth = CriteoAuth("id", SECRET, token_url=token_url)
    sent = prepared(token_url)
    assert auth.is_token_url(sent)
    assert "Authorization" not in auth(requests.Request("POST", sent).prepare()).headers
