"""The testing kit's helpers, used directly: set_error and add_token_endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

import requests_criteo
from requests_criteo import CriteoAuth, TokenCache
from requests_criteo.testing import CRITEO_TOKEN_URL, FakeCriteo, add_token_endpoint


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
