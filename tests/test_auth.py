"""CriteoAuth and CriteoAdapter against the real https URLs (responses): the request path."""

from __future__ import annotations

import copy
import gc
import io
import logging
import pickle
import threading

import pytest
import requests
import responses

import requests_criteo
from requests_criteo import (
    USER_AGENT,
    CriteoAdapter,
    CriteoAuth,
    CriteoAuthError,
    TokenCache,
    TokenRequestError,
)

from .conftest import ME, SECRET, TOKEN, TOKEN_URL, FakeClock, assert_no_secret, token_json

EXPIRED = {
    "errors": [
        {
            "traceId": "t-1",
            "type": "authorization",
            "code": "authorization-token-expired",
            "title": "The authorization token has expired",
        }
    ]
}


def bearer(call: responses.Call) -> str | None:
    return call.request.headers.get("Authorization")


def test_drop_in_fetches_once_and_reuses(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(ME, json={"data": {}})
    for _ in range(3):
        assert requests.get(ME, auth=auth).status_code == 200
    assert token_route.call_count == 1
    assert api.call_count == 3
    assert all(bearer(c) == f"Bearer {TOKEN}" for c in mocked.calls if c.request.url == ME)


def test_a_new_auth_per_call_still_fetches_once(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    for _ in range(5):
        requests.get(ME, auth=CriteoAuth("client-1", SECRET, cache=cache))
    assert token_route.call_count == 1


def test_a_new_auth_per_call_with_the_same_timer_shares_the_cache(
    mocked: responses.RequestsMock,
) -> None:
    clock = FakeClock()
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    for _ in range(3):
        requests.get(ME, auth=CriteoAuth("client-timer", SECRET, timer=clock))
    assert token_route.call_count == 1


def test_two_clients_never_share_a_token(mocked: responses.RequestsMock, cache: TokenCache) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-a"))
    mocked.post(TOKEN_URL, json=token_json("tok-b"))
    mocked.post(TOKEN_URL, json=token_json("tok-c"))
    mocked.get(ME, json={})
    a = requests.get(ME, auth=CriteoAuth("client-a", SECRET, cache=cache))
    b = requests.get(ME, auth=CriteoAuth("client-b", SECRET, cache=cache))
    c = requests.get(ME, auth=CriteoAuth("client-a", SECRET + "x", cache=cache))
    assert [r.request.headers["Authorization"] for r in (a, b, c)] == [
        "Bearer tok-a",
        "Bearer tok-b",
        "Bearer tok-c",
    ]


def test_the_cache_key_holds_no_secret(auth: CriteoAuth) -> None:
    assert SECRET not in repr(auth.credentials.key)
    assert auth.fingerprint in auth.credentials.key


def test_proactive_refresh_before_expiry(
    mocked: responses.RequestsMock, auth: CriteoAuth, clock: FakeClock
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.get(ME, json={})
    requests.get(ME, auth=auth)
    clock.advance(839)
    requests.get(ME, auth=auth)
    assert token_route.call_count == 1
    mocked.replace(responses.POST, TOKEN_URL, json=token_json("tok-2"))
    clock.advance(1)  # 60 s before expiry: replaced
    r = requests.get(ME, auth=auth)
    assert r.request.headers["Authorization"] == "Bearer tok-2"
    assert sum(1 for c in mocked.calls if c.request.url == TOKEN_URL) == 2


def test_a_short_lifetime_is_not_refetched_on_every_request(
    mocked: responses.RequestsMock, auth: CriteoAuth, clock: FakeClock
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json(expires_in=30))
    mocked.get(ME, json={})
    for _ in range(10):
        requests.get(ME, auth=auth)
        clock.advance(1)
    assert token_route.call_count == 1  # margin 15 s: still fresh after 10 s
    clock.advance(5)
    requests.get(ME, auth=auth)
    assert token_route.call_count == 2


def test_401_refreshes_and_resends_once(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={"data": "ok"})
    r = requests.get(ME, auth=auth)
    assert r.status_code == 200
    assert r.json() == {"data": "ok"}
    assert [h.status_code for h in r.history] == [401]
    assert r.history[0].json() == EXPIRED
    assert r.request.headers["Authorization"] == "Bearer tok-2"
    assert [bearer(c) for c in mocked.calls if c.request.url == ME] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_a_second_401_is_returned_not_looped(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(ME, status=401, json=EXPIRED)
    r = requests.get(ME, auth=auth)
    assert r.status_code == 401
    assert len(r.history) == 1
    assert api.call_count == 2
    assert token_route.call_count == 2


def test_403_is_never_retried(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(
        ME, status=403, json={"errors": [{"code": "insufficient-advertisers-permissions"}]}
    )
    r = requests.get(ME, auth=auth)
    assert r.status_code == 403
    assert (token_route.call_count, api.call_count) == (1, 1)
    assert r.history == []


def test_refresh_failure_during_401_raises_a_typed_error(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.post(TOKEN_URL, status=400, json={"error": "invalid_client"})
    mocked.get(ME, status=401, json=EXPIRED)
    with pytest.raises(TokenRequestError) as info:
        requests.get(ME, auth=auth)
    assert info.value.error == "invalid_client"
    assert isinstance(info.value, requests.RequestException)


def test_the_resend_rewinds_a_file_body(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    seen: list[bytes] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body
        data = body if isinstance(body, (bytes, str)) or body is None else body.read()
        seen.append(data if isinstance(data, bytes) else str(data).encode())
        return (401, {}, "{}") if len(seen) == 1 else (200, {}, "{}")

    mocked.add_callback(responses.POST, f"{ME}/upload", callback=record)
    body = io.BytesIO(b"header-to-skip|payload")
    body.seek(15)
    r = requests.post(f"{ME}/upload", data=body, auth=auth)
    assert r.status_code == 200
    assert seen == [b"payload", b"payload"]


def test_a_generator_body_is_not_resent(
    mocked: responses.RequestsMock, auth: CriteoAuth, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    api = mocked.post(ME, status=401, json=EXPIRED)
    r = requests.post(ME, data=(chunk for chunk in [b"a", b"b"]), auth=auth)
    assert r.status_code == 401
    assert api.call_count == 1
    assert "cannot be sent again" in caplog.text


def test_cookies_from_the_401_are_carried(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, status=401, headers={"Set-Cookie": "sid=abc; Path=/"})
    mocked.get(ME, json={})
    r = requests.get(ME, auth=auth)
    assert r.status_code == 200
    assert "sid=abc" in r.request.headers.get("Cookie", "")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.criteo.com.evil.example/2025-10/retail-media/me",
        "https://evil.example/2025-10/retail-media/me",
        "https://api.criteo.com:8443/2025-10/retail-media/me",
        "http://api.criteo.com/2025-10/retail-media/me",
    ],
)
def test_no_token_outside_the_origins(
    mocked: responses.RequestsMock, auth: CriteoAuth, url: str
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(url, status=401)
    r = requests.get(url, auth=auth)
    assert "Authorization" not in r.request.headers
    assert token_route.call_count == 0
    assert api.call_count == 1  # a 401 from another origin: no refresh, no resend


def test_session_auth_leaves_other_hosts_alone(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    mocked.get("https://example.org/", body="hi")
    s = requests.Session()
    s.auth = auth
    assert "Authorization" in s.get(ME).request.headers
    assert "Authorization" not in s.get("https://example.org/").request.headers


def test_a_hand_call_to_the_token_endpoint_gets_no_bearer(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    r = requests.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=auth)
    assert "Authorization" not in r.request.headers
    assert len(mocked.calls) == 1


def test_a_redirect_to_another_host_gets_no_token_and_no_resend(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, status=302, headers={"Location": "https://evil.example/catch"})
    evil = mocked.get("https://evil.example/catch", status=401)
    r = requests.get(ME, auth=auth)
    assert r.status_code == 401
    assert evil.call_count == 1
    assert "Authorization" not in mocked.calls[-1].request.headers
    assert token_route.call_count == 1


def test_adapter_authenticates_the_session(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    mocked.get("https://example.org/", body="hi")
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME)
    assert r.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert r.request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith(requests.utils.default_user_agent() + " requests-criteo/")
    other = s.get("https://example.org/")
    assert "Authorization" not in other.request.headers
    assert "requests-criteo" not in other.request.headers["User-Agent"]
    assert token_route.call_count == 1


@pytest.mark.parametrize("name", ["User-Agent", "user-agent"])
def test_adapter_keeps_a_callers_user_agent(
    mocked: responses.RequestsMock, auth: CriteoAuth, name: str
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME, headers={name: "nightly-report/2.0"})
    assert r.request.headers["User-Agent"] == "nightly-report/2.0"


def test_adapter_on_a_careless_prefix_still_gives_no_token_to_a_look_alike(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    url = "https://api.criteo.com.evil.example/x"
    mocked.get(url, body="")
    s = requests.Session()
    s.mount("https://api.criteo.com", CriteoAdapter(auth))  # no trailing slash
    assert "Authorization" not in s.get(url).request.headers


def test_adapter_and_auth_together_fetch_once_and_resend_once(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(ME, status=401, json=EXPIRED)
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME, auth=auth)
    assert r.status_code == 401
    assert api.call_count == 2
    assert token_route.call_count == 2  # the first token, and one refresh


def test_session_helper(mocked: responses.RequestsMock, cache: TokenCache) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    s = requests_criteo.session("client-1", SECRET, cache=cache, pool_maxsize=4)
    adapter = s.get_adapter(ME)
    assert isinstance(adapter, CriteoAdapter)
    assert adapter._pool_maxsize == 4  # type: ignore[attr-defined]
    assert "https://api.criteo.com/" in s.adapters
    assert not isinstance(s.get_adapter("https://api.criteo.com.evil.example/"), CriteoAdapter)
    assert s.get(ME).request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_adapter_needs_a_criteo_auth() -> None:
    with pytest.raises(TypeError, match="CriteoAdapter needs a CriteoAuth"):
        CriteoAdapter(("user", "pass"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client_id", "client_secret", "error", "match"),
    [
        (None, SECRET, TypeError, "client_id must be a str"),
        ("id", b"secret", TypeError, "client_secret must be a str"),
        ("", SECRET, ValueError, "client_id is empty"),
        ("id", "", ValueError, "client_secret is empty"),
        ("id", SECRET + "\n", ValueError, "whitespace"),
    ],
)
def test_bad_credentials(
    client_id: object, client_secret: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        CriteoAuth(client_id, client_secret)  # type: ignore[arg-type]
    assert_no_secret(str(info.value))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": 5}, "timeout"),
        ({"timeout": (5, 0)}, "timeout"),
        ({"deadline": 0}, "deadline"),
        ({"timer": FakeClock(), "cache": TokenCache()}, "either timer= or cache="),
    ],
)
def test_bad_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CriteoAuth("id", SECRET, **kwargs)  # type: ignore[arg-type]


def test_nothing_secret_in_reprs(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    token = auth.token()
    adapter = CriteoAdapter(auth)
    for text in (
        repr(auth),
        str(auth),
        repr(adapter),
        repr(token),
        repr(auth.cache),
        repr(vars(adapter)),
        repr(vars(auth)),
        repr(auth.credentials.__getstate__()),
    ):
        assert_no_secret(text)
    assert "client-1" in repr(auth)


def test_pickle_and_copies_work_and_carry_no_secret(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    s = requests_criteo.session("client-pickle", SECRET)
    s.get(ME)
    blob = pickle.dumps(s)
    assert SECRET.encode() not in blob
    assert TOKEN.encode() not in blob
    for other in (pickle.loads(blob), copy.deepcopy(s), copy.copy(s)):
        r = other.get(ME)
        assert r.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert token_route.call_count == 1  # the copies share the process-wide token
    auth = CriteoAuth("client-pickle", SECRET)
    assert pickle.loads(pickle.dumps(auth)) == auth


def test_unpickling_without_the_secret_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # Once no auth with the secret is left, the process no longer keeps it.
    blob = pickle.dumps(CriteoAuth("client-lost", SECRET))
    gc.collect()
    monkeypatch.delenv("CRITEO_CLIENT_SECRET", raising=False)
    with pytest.raises(CriteoAuthError, match="CRITEO_CLIENT_SECRET") as info:
        pickle.loads(blob)
    assert_no_secret(str(info.value))
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    assert pickle.loads(blob).client_id == "client-lost"


def test_a_live_auth_pickles_and_copies_again_after_its_copies_and_twins_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the process keeps is the secret of every live auth, not of the latest built."""
    monkeypatch.delenv("CRITEO_CLIENT_SECRET", raising=False)
    auth = CriteoAuth("client-alive", SECRET)
    for _ in range(3):
        assert pickle.loads(pickle.dumps(auth)) == auth  # each copy dropped at once
    requests_criteo.session("client-alive", SECRET)  # a twin, built per call and dropped
    gc.collect()
    assert copy.deepcopy(auth) == auth
    assert pickle.loads(pickle.dumps(requests_criteo.mount(requests.Session(), auth))).auth == auth


def test_invalidate_forgets_the_token(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    auth.token()
    auth.invalidate()
    auth.token()
    assert token_route.call_count == 2


def test_64_threads_one_token_request_and_one_refresh_on_a_401_storm(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json("tok-1"))
    state = {"revoked": "tok-1"}
    lock = threading.Lock()

    def api(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            revoked = request.headers["Authorization"] == f"Bearer {state['revoked']}"
        return (401, {}, "{}") if revoked else (200, {}, "{}")

    mocked.add_callback(responses.GET, ME, callback=api)
    auth.token()
    mocked.replace(responses.POST, TOKEN_URL, json=token_json("tok-2"))
    barrier = threading.Barrier(64)
    statuses: list[int] = []

    def worker() -> None:
        barrier.wait()
        statuses.append(requests.get(ME, auth=auth).status_code)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses == [200] * 64
    assert token_route.call_count == 1  # the replaced route counts the refreshes only
    assert sum(1 for c in mocked.calls if c.request.url == TOKEN_URL) == 2


def test_logs_at_debug_hold_no_secret_through_a_401(
    mocked: responses.RequestsMock, auth: CriteoAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={})
    requests.get(ME, auth=auth)
    assert "401" in caplog.text
    assert_no_secret(caplog.text)


@pytest.mark.parametrize("name", ["cache", "store", "retry", "api_origins", "client_id"])
def test_an_auths_settings_are_read_only(name: str, auth: CriteoAuth) -> None:
    """Set once at build time: a later assignment is refused, never silently ignored."""
    before = getattr(auth, name)
    with pytest.raises(AttributeError):
        setattr(auth, name, TokenCache())
    assert getattr(auth, name) is before


def test_handle_401_takes_the_send_options_by_position_too(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={"data": "ok"})
    prep = auth(requests.Request("GET", ME).prepare())
    r = requests.adapters.HTTPAdapter().send(prep, False, 5.0)
    assert r.status_code == 401
    resent = auth.handle_401(r, False, 5.0, True, None, {})
    assert (resent.status_code, resent.request.headers["Authorization"]) == (200, "Bearer tok-2")
