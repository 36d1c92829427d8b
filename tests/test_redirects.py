"""Redirects: a token follows a redirect only while the whole chain stays on Criteo.

A redirect from another site into Criteo arrives with no token, however the session was
set up and whatever happened to it since (pickled, deep-copied); a redirect within Criteo
keeps working, 401 resend included. The token endpoint's own redirects are in
test_loopback.py.
"""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import requests

import requests_criteo
from requests_criteo import CriteoAuth
from requests_criteo.testing import FakeCriteo, SeenRequest

from .conftest import CLIENT_ID, SECRET, WAYS, V, criteo_client, echo, me, summary

pytestmark = pytest.mark.usefixtures("never_left_installed")


class AppSession(requests.Session):
    """A session class of the caller's own, with an attribute that pickles."""

    __attrs__ = [*requests.Session.__attrs__, "tenant"]  # noqa: RUF012 - as requests does

    def __init__(self) -> None:
        super().__init__()
        self.tenant = "acme"


def picklable_auth(fake: FakeCriteo) -> CriteoAuth:
    """An auth with the process-wide cache and default retries, which pickle."""
    return CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url)


def pickled(s: requests.Session) -> requests.Session:
    copied: requests.Session = pickle.loads(pickle.dumps(s))
    return copied


def deep_copied(s: requests.Session) -> requests.Session:
    return copy.deepcopy(s)


def assert_redirects_into_criteo_carry_no_token(
    s: requests.Session, fake: FakeCriteo, foreign: FakeCriteo
) -> None:
    """302 (GET), 307 and 308 (POST with a body) from *foreign* into *fake*: no token."""
    target = echo(fake, "accounts/123/delete-everything")
    foreign.set_response("/img.png", status=302, headers={"Location": me(fake)}, authorize=False)
    foreign.set_response("/hook", status=307, headers={"Location": target}, authorize=False)
    foreign.set_response("/moved", status=308, headers={"Location": target}, authorize=False)
    assert summary(s.get(f"{foreign.url}/img.png", timeout=5)) == (401, [302])
    for path, status in (("/hook", 307), ("/moved", 308)):
        r = s.post(f"{foreign.url}{path}", json={"user": "data"}, timeout=5)
        assert summary(r) == (401, [status])
    calls = fake.api_calls()
    assert [(c.method, c.path) for c in calls] == [
        ("GET", f"/{V}/retail-media/me"),
        ("POST", f"/{V}/retail-media/accounts/123/delete-everything"),
        ("POST", f"/{V}/retail-media/accounts/123/delete-everything"),
    ]
    assert all(c.header("Authorization") is None for c in calls)
    assert fake.token_requests == 0
    assert all(c.bearer is None for c in foreign.api_calls())


@pytest.mark.parametrize("way", WAYS)
def test_a_redirect_from_another_site_into_criteo_carries_no_token(
    way: str, fake: FakeCriteo, foreign: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    with criteo_client(way, fake, criteo_auth) as s:
        r = s.get(f"{foreign.url}/img.png", timeout=5)
        assert summary(r) == (404, [])  # nothing set up yet: a plain miss
        assert_redirects_into_criteo_carry_no_token(s, fake, foreign)


@pytest.mark.parametrize("revive", [pickled, deep_copied], ids=["pickle", "deepcopy"])
@pytest.mark.parametrize("session_class", [requests.Session, AppSession])
def test_a_mounted_session_keeps_its_redirect_guard_when_pickled_or_copied(
    revive: Callable[[requests.Session], requests.Session],
    session_class: type[requests.Session],
    fake: FakeCriteo,
    foreign: FakeCriteo,
) -> None:
    original = session_class()
    requests_criteo.mount(original, picklable_auth(fake))
    assert isinstance(original, session_class)
    with revive(original) as s:
        assert isinstance(s, session_class)
        if isinstance(s, AppSession):
            assert s.tenant == "acme"
        assert_redirects_into_criteo_carry_no_token(s, fake, foreign)
        # Its own calls to Criteo are still authenticated.
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
    assert fake.api_calls()[-1].bearer is not None


@pytest.mark.parametrize("revive", [pickled, deep_copied], ids=["pickle", "deepcopy"])
def test_a_session_from_session_keeps_its_redirect_guard_when_pickled_or_copied(
    revive: Callable[[requests.Session], requests.Session],
    fake: FakeCriteo,
    foreign: FakeCriteo,
) -> None:
    original = requests_criteo.session(CLIENT_ID, SECRET, token_url=fake.token_url)
    with original, revive(original) as s:
        assert_redirects_into_criteo_carry_no_token(s, fake, foreign)


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_redirect_within_criteo_still_carries_the_token(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    fake.set_response(
        f"/{V}/retail-media/old-me", status=302, headers={"Location": me(fake)}, authorize=False
    )
    with criteo_client(way, fake, criteo_auth) as s:
        r = s.get(f"{fake.url}/{V}/retail-media/old-me", timeout=5)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [302])
            assert r.json()["data"]["id"] == CLIENT_ID
    assert fake.api_calls()[-1].path == f"/{V}/retail-media/me"
    assert fake.api_calls()[-1].bearer is not None


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_401_after_a_same_origin_redirect_is_refreshed_and_resent(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    fake.set_response(f"/{V}/a", status=302, headers={"Location": me(fake)}, authorize=False)
    with criteo_client(way, fake, criteo_auth) as s:
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()
        before = fake.token_requests
        r = s.get(f"{fake.url}/{V}/a", timeout=5)
        with r:
            assert r.status_code == 200
            assert r.json()["data"]["id"] == CLIENT_ID
            assert 302 in [h.status_code for h in r.history]
        assert fake.token_requests == before + 1
        # The new token is cached: the next call goes straight through.
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
    assert fake.api_calls()[-1].bearer is not None


def upload_through_a_redirect_once_revoked(
    way: str, fake: FakeCriteo, auth: CriteoAuth, status: int, target: str, body: Any
) -> tuple[tuple[int, list[int]], SeenRequest, SeenRequest]:
    """POST *body* to a path the fake redirects (*status*) to *target*, its token revoked.

    Returns the answer's status and history, and the last two API calls the fake saw: the
    redirected one, answered 401, and its resend.
    """
    fake.set_response(f"/{V}/moved", status=status, headers={"Location": target}, authorize=False)
    with criteo_client(way, fake, auth) as s:
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()
        answer = summary(s.post(f"{fake.url}/{V}/moved", data=body, timeout=5))
    first, resend = fake.api_calls()[-2:]
    assert first.bearer != resend.bearer  # the resend carries the new token
    return answer, first, resend


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_401_after_a_303_from_a_generator_upload_is_refreshed_and_resent(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    """The 303's GET has no body: the generator the upload had does not stop its resend."""
    generator = (c for c in [b"data"])
    answer, first, resend = upload_through_a_redirect_once_revoked(
        way, fake, criteo_auth, 303, me(fake), generator
    )
    # requests gives the final answer the redirects as its history: the 401 is not there.
    assert answer == (200, [303])
    assert (first.method, resend.method) == ("GET", "GET")


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_401_after_a_307_with_a_file_body_is_resent_with_the_whole_body(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    answer, first, resend = upload_through_a_redirect_once_revoked(
        way, fake, criteo_auth, 307, echo(fake, "upload"), io.BytesIO(b"payload")
    )
    assert answer == (200, [307])
    assert first.body == resend.body == b"payload"
