"""The testing kit's helpers, used directly: set_error, add_token_endpoint, CriteoRouting
(for requests and for httpx clients)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import requests
import responses
from requests.adapters import HTTPAdapter

import requests_criteo
from requests_criteo import CriteoAuth, TokenCache
from requests_criteo.httpx import CriteoHTTPXAuth
from requests_criteo.testing import CRITEO_TOKEN_URL, CriteoRouting, FakeCriteo, add_token_endpoint


@pytest.fixture
def fake() -> Iterator[FakeCriteo]:
    with FakeCriteo() as server:
        yield server


def test_set_error_answers_criteo_s_envelope_after_the_token_check(fake: FakeCriteo) -> None:
    fake.set_error(
        "/2025-10/statistics/report",
        status=400,
        code="required-field",
        title="startDate is required",
        error_type="validation",
        detail="send startDate",
        method="POST",
    )
    auth = CriteoAuth(
        FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, token_url=fake.token_url, cache=TokenCache()
    )
    assert requests.post(f"{fake.url}/2025-10/statistics/report", timeout=5).status_code == 401
    r = requests.post(f"{fake.url}/2025-10/statistics/report", auth=auth, timeout=5)
    with pytest.raises(requests_criteo.CriteoAPIError) as info:
        requests_criteo.raise_for_status(r)
    problem = info.value.errors[0]
    assert (problem.code, problem.type, problem.detail) == (
        "required-field",
        "validation",
        "send startDate",
    )
    assert problem.instance == "/2025-10/statistics/report"
    assert problem.trace_id
    other = requests.get(f"{fake.url}/2025-10/statistics/report", auth=auth, timeout=5)
    assert other.status_code == 200  # the error was for POST only


def test_set_error_defaults_to_a_403(fake: FakeCriteo) -> None:
    fake.set_error("/2025-10/retail-media/accounts")
    auth = CriteoAuth(
        FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, token_url=fake.token_url, cache=TokenCache()
    )
    r = requests.get(f"{fake.url}/2025-10/retail-media/accounts", auth=auth, timeout=5)
    assert r.status_code == 403
    assert r.history == []  # a 403 is never retried with a new token
    assert fake.token_requests == 1


def test_add_token_endpoint_issues_distinct_tokens_and_counts() -> None:
    with responses.RequestsMock() as rsps:
        token_route = add_token_endpoint(rsps, expires_in=30)
        rsps.get("https://api.criteo.com/2025-10/retail-media/me", json={})
        auth = CriteoAuth("id", "secret", cache=TokenCache())
        r = requests.get("https://api.criteo.com/2025-10/retail-media/me", auth=auth)
        assert r.request.headers["Authorization"] == "Bearer fake-token-1"
        assert auth.token().lifetime == 30
        auth.invalidate()
        assert auth.token().access_token == "fake-token-2"
        assert token_route.call_count == 2
    assert CRITEO_TOKEN_URL == requests_criteo.DEFAULT_TOKEN_URL


ME = "https://api.criteo.com/2025-10/retail-media/me?limit=5"


def test_criteo_routing_answers_criteo_s_urls_from_the_fake(fake: FakeCriteo) -> None:
    auth = CriteoAuth(FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, cache=TokenCache())
    with CriteoRouting(fake.url) as routing, requests.Session() as session:
        r = session.get(ME, auth=auth, timeout=5)
    assert r.status_code == 200 and r.json()["data"]["id"] == FakeCriteo.CLIENT_ID
    assert (r.url, r.request.url) == (ME, ME)
    assert (fake.token_requests, fake.api_requests, routing.routed) == (1, 1, 2)
    [call] = fake.api_calls()
    assert call.path == "/2025-10/retail-media/me?limit=5"
    assert call.header("Host") == "api.criteo.com"


def test_criteo_routing_keeps_redirects_and_cookies_on_criteo_s_url(fake: FakeCriteo) -> None:
    old = "https://api.criteo.com/2025-10/retail-media/old"
    headers = {"Location": "/2025-10/retail-media/me", "Set-Cookie": "seen=1; Path=/"}
    fake.set_response("/2025-10/retail-media/old", status=307, headers=headers)
    auth = CriteoAuth(FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, cache=TokenCache())
    with CriteoRouting(fake.url), requests.Session() as session:
        r = session.get(old, auth=auth, timeout=5)
    assert r.status_code == 200 and r.url == "https://api.criteo.com/2025-10/retail-media/me"
    assert [h.url for h in r.history] == [old]
    assert r.history[0].cookies.list_domains() == ["api.criteo.com"]
    assert session.cookies.list_domains() == ["api.criteo.com"]
    assert [c.header("Cookie") for c in fake.api_calls()] == [None, "seen=1"]


def test_criteo_routing_leaves_other_urls_alone(fake: FakeCriteo) -> None:
    with FakeCriteo() as other, CriteoRouting(fake.url) as routing:
        assert requests.get(other.url + "/2025-10/retail-media/me", timeout=5).status_code == 401
        assert requests.get(fake.url + "/2025-10/retail-media/me", timeout=5).status_code == 401
    assert (other.api_requests, fake.api_requests, routing.routed) == (1, 1, 0)
    assert fake.api_calls()[0].header("Host") == fake.url.removeprefix("http://")


def test_criteo_routing_puts_requests_back_exactly(fake: FakeCriteo) -> None:
    send = HTTPAdapter.send
    with CriteoRouting(fake.url):
        assert HTTPAdapter.send is not send
    assert HTTPAdapter.send is send


def test_a_mock_started_inside_a_routing_keeps_its_place(fake: FakeCriteo) -> None:
    send = HTTPAdapter.send
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    try:
        with CriteoRouting(fake.url) as routing:
            mock.start()
        assert HTTPAdapter.send is not send  # the mock's, left in place
        mock.add_passthru(fake.url)
        with pytest.raises(requests.ConnectionError):  # the mock answers, not the fake
            requests.get(ME, timeout=5)
        mock.stop()
        assert requests.get(fake.url + "/2025-10/retail-media/me", timeout=5).status_code == 401
        assert routing.routed == 0 and fake.api_requests == 1  # the routing passes through
    finally:
        setattr(HTTPAdapter, "send", send)  # noqa: B010 - undo what the mock put back


def test_criteo_routing_refuses_to_nest_or_to_leave_loopback(fake: FakeCriteo) -> None:
    with CriteoRouting(fake.url), pytest.raises(RuntimeError, match="already active"):
        CriteoRouting(fake.url).__enter__()
    for target in ("https://127.0.0.1:1", "http://example.com", "http://10.0.0.1"):
        with pytest.raises(ValueError, match="loopback http"):
            CriteoRouting(target)


# -- httpx clients are routed too ------------------------------------------------------------


def httpx_auth() -> CriteoHTTPXAuth:
    return CriteoHTTPXAuth(FakeCriteo.CLIENT_ID, FakeCriteo.CLIENT_SECRET, cache=TokenCache())


def test_criteo_routing_answers_an_httpx_client_from_the_fake(fake: FakeCriteo) -> None:
    headers = {"Location": "/2025-10/retail-media/me", "Set-Cookie": "seen=1; Path=/"}
    fake.set_response("/2025-10/retail-media/old", status=307, headers=headers)
    with CriteoRouting(fake.url) as routing, httpx.Client(auth=httpx_auth()) as client:
        r = client.get(ME)
        moved = client.get(ME.replace("/me?limit=5", "/old"), follow_redirects=True)
    assert r.status_code == 200 and r.json()["data"]["id"] == FakeCriteo.CLIENT_ID
    assert str(r.url) == ME and str(r.request.url) == ME
    assert moved.status_code == 200 and str(moved.url) == ME.split("?")[0]
    assert [c.header("Cookie") for c in fake.api_calls()][-1] == "seen=1"
    assert (fake.token_requests, routing.routed) == (1, 4)
    assert fake.api_calls()[0].header("Host") == "api.criteo.com"


def test_criteo_routing_answers_an_async_client_and_its_token_request(fake: FakeCriteo) -> None:
    async def calls() -> set[int]:
        async with httpx.AsyncClient(auth=httpx_auth()) as client:
            answers = await asyncio.gather(*(client.get(ME) for _ in range(8)))
        return {a.status_code for a in answers}

    with CriteoRouting(fake.url) as routing:
        assert asyncio.run(calls()) == {200}
    assert (fake.token_requests, fake.api_requests, routing.routed) == (1, 8, 9)


def test_criteo_routing_leaves_other_httpx_urls_alone_and_puts_httpx_back(
    fake: FakeCriteo,
) -> None:
    sync, async_ = httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request
    with FakeCriteo() as other, CriteoRouting(fake.url) as routing:
        assert httpx.get(other.url + "/2025-10/retail-media/me").status_code == 401
    assert (other.api_requests, fake.api_requests, routing.routed) == (1, 0, 0)
    assert httpx.HTTPTransport.handle_request is sync
    assert httpx.AsyncHTTPTransport.handle_async_request is async_


def test_a_patch_made_over_the_httpx_routing_keeps_its_place_and_ours_lets_go(
    fake: FakeCriteo, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def network(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))  # what would have gone to the network
        return httpx.Response(204, request=request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", network)
    with CriteoRouting(fake.url) as routing:
        ours = httpx.HTTPTransport.handle_request

        def mock(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            return ours(transport, request)

        monkeypatch.setattr(httpx.HTTPTransport, "handle_request", mock)
    assert httpx.HTTPTransport.handle_request is mock  # the later patch keeps its place
    assert httpx.get("https://api.criteo.com/2025-10/retail-media/me").status_code == 204
    assert seen == ["https://api.criteo.com/2025-10/retail-media/me"]  # not the fake
    assert (routing.routed, fake.api_requests) == (0, 0)
