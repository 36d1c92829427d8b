"""requests_criteo.session()'s SessionAuth adds nothing: the adapter puts the token on."""

from __future__ import annotations

import pickle

import requests

import requests_criteo
from requests_criteo import CriteoSession, SessionAuth
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, FakeClock


def make(fake: FakeCriteo, clock: FakeClock) -> requests.Session:
    return requests_criteo.session(CLIENT_ID, SECRET, token_url=fake.token_url, timer=clock)


def test_session_has_a_session_auth(fake: FakeCriteo, clock: FakeClock) -> None:
    with make(fake, clock) as s:
        assert isinstance(s, CriteoSession)
        assert isinstance(s.auth, SessionAuth)
        assert "CriteoAuth(client_id='client-loopback'" in repr(s.auth)
        assert s.get(f"{fake.url}/2025-10/retail-media/me", timeout=5).status_code == 200
    assert fake.tokens_issued == 1


def test_a_callers_bearer_is_kept_until_refused(fake: FakeCriteo, clock: FakeClock) -> None:
    with make(fake, clock) as s:
        r = s.get(
            f"{fake.url}/2025-10/retail-media/me",
            timeout=5,
            headers={"Authorization": "Bearer hand-rolled"},
        )
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [401]
        assert fake.api_calls()[0].bearer == "hand-rolled"
        assert fake.api_calls()[1].bearer != "hand-rolled"


def test_other_hosts_get_nothing(fake: FakeCriteo, foreign: FakeCriteo, clock: FakeClock) -> None:
    with make(fake, clock) as s:
        r = s.get(f"{foreign.url}/2025-10/retail-media/me", timeout=5)
    assert r.status_code == 401
    assert foreign.api_calls()[0].header("Authorization") is None
    assert fake.token_requests == 0


def test_a_basic_auth_from_the_caller_is_replaced_by_the_token(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    with make(fake, clock) as s:
        r = s.get(f"{fake.url}/2025-10/retail-media/me", timeout=5, auth=("user", "pw"))
    assert r.status_code == 200  # Basic from the caller is replaced by the adapter
    assert fake.api_calls()[0].bearer is not None


def test_the_session_pickles(fake: FakeCriteo, clock: FakeClock) -> None:
    with make(fake, clock) as s:
        s.get(f"{fake.url}/2025-10/retail-media/me", timeout=5)
        copy = pickle.loads(pickle.dumps(s))
    assert isinstance(copy.auth, SessionAuth)
    assert copy.get(f"{fake.url}/2025-10/retail-media/me", timeout=5).status_code == 200
    copy.close()
