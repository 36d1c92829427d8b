"""What the per-request path promises, now that it is made cheap (issue 6).

The shortcuts taken for speed must not change behaviour: requests whose bodies can be
sent again share one piece of 401 bookkeeping per token; a mounted adapter resends its
own 401s instead of registering a response hook; header lookups skip requests' ``get``.
Each test here pins what a user relies on through those shortcuts.
"""

from __future__ import annotations

import gc
import io
import logging
import os
import pickle
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPResponse

import requests_criteo
from requests_criteo import CriteoAdapter, CriteoAuth, TokenCache
from requests_criteo.adapters import CriteoSession, SessionAuth, mount
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, ME, SECRET, TOKEN_URL, me, token_json

EXPIRED = {"errors": [{"code": "authorization-token-expired"}]}


def one_expiry(mocked: responses.RequestsMock) -> None:
    """Tokens tok-1 then tok-2; the API answers 401 once, then 200."""
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={"data": "ok"})


def calls_to(mocked: responses.RequestsMock, url: str) -> int:
    """How many requests *mocked* answered for *url*."""
    return sum(1 for c in mocked.calls if c.request.url == url)


def prepared(method: str = "GET", url: str = ME, **kwargs: object) -> requests.PreparedRequest:
    return requests.Request(method, url, **kwargs).prepare()


# -- where a stream body starts -----------------------------------------------------------


def test_a_stream_body_is_resent_from_where_it_started(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    sent: list[bytes] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body: Any = request.body
        sent.append(body.read() if hasattr(body, "read") else body)
        return (401 if len(sent) == 1 else 200), {}, "{}"

    mocked.add_callback(responses.POST, ME, callback=record)
    body = io.BytesIO(b"skip|data")
    body.seek(5)
    r = requests.post(ME, data=body, auth=auth)
    assert r.status_code == 200
    assert sent == [b"data", b"data"]


def test_a_request_sent_with_an_old_token_is_resent_with_the_new_one(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    """A request prepared before a refresh, answered 401 after it: one resend, no extra fetch."""
    one_expiry(mocked)
    s = requests.Session()
    old = s.prepare_request(requests.Request("GET", ME, auth=auth))
    assert old.headers["Authorization"] == "Bearer tok-1"
    auth.invalidate()
    fresh = s.prepare_request(requests.Request("GET", ME, auth=auth))
    assert fresh.headers["Authorization"] == "Bearer tok-2"
    r = s.send(old)
    assert r.status_code == 200
    assert r.request.headers["Authorization"] == "Bearer tok-2"
    # tok-2 was already current: the 401 to tok-1 fetched nothing more.
    assert calls_to(mocked, TOKEN_URL) == 2


# -- the adapter resends its own 401s ---------------------------------------------------


def test_the_adapter_resends_a_401_without_a_response_hook(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    seen: list[int] = []
    s = requests.Session()
    s.hooks["response"].append(lambda r, **kwargs: seen.append(r.status_code))
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert r.request.headers["Authorization"] == "Bearer tok-2"
    assert auth.handle_401 not in r.request.hooks["response"]
    assert seen == [200]  # the session's hook saw the answer the caller gets, once


def test_the_adapter_with_auth_given_too_resends_once_and_fetches_once(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME, auth=auth)  # the hook is registered; the adapter resends first
    assert r.status_code == 200
    assert len(r.history) == 1
    assert calls_to(mocked, ME) == 2
    assert calls_to(mocked, TOKEN_URL) == 2


def test_the_adapter_returns_a_second_401(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(ME, status=401, json=EXPIRED)
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    r = s.get(ME)
    assert r.status_code == 401
    assert len(r.history) == 1
    assert (api.call_count, token_route.call_count) == (2, 2)


def test_the_adapter_leaves_a_401_from_another_host_alone(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    token_route = mocked.post(TOKEN_URL, json=token_json())
    other = mocked.get("https://example.org/x", status=401)
    s = requests.Session()
    adapter = CriteoAdapter(auth)
    s.mount("https://", adapter)  # careless: every https URL goes through it
    r = s.get("https://example.org/x")
    assert r.status_code == 401
    assert r.history == []
    assert other.call_count == 1
    assert token_route.call_count == 0
    assert "Authorization" not in r.request.headers


def test_an_unpickled_adapter_sends_unreplayable_bodies_without_retries(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """responses honours the adapter's retry policy: a 429 is retried only for bytes."""
    mocked.post(TOKEN_URL, json=token_json())
    first = mocked.post(ME, status=429, json={})
    second = mocked.post(ME, status=429, json={})
    ok = mocked.post(ME, json={})
    auth = CriteoAuth("client-1", SECRET, cache=cache)
    adapter = pickle.loads(pickle.dumps(CriteoAdapter(auth)))
    s = requests.Session()
    s.mount("https://api.criteo.com/", adapter)
    assert s.post(ME, data=(c for c in [b"a"])).status_code == 429  # gone once sent
    assert (first.call_count, second.call_count, ok.call_count) == (1, 0, 0)
    assert s.post(ME, data=b"a").status_code == 200  # the adapter's policy again
    assert (first.call_count, second.call_count, ok.call_count) == (1, 1, 1)


class _Recording(HTTPAdapter):
    """Answers in memory, 401 to the first API call, and records each call's options."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[tuple[str | None, object, object, object, object, object]] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        header = request.headers.get("Authorization")
        self.sent.append((header, stream, timeout, verify, cert, proxies))
        status = 401 if len(self.sent) == 1 else 200
        raw = HTTPResponse(
            body=io.BytesIO(b"{}"),
            headers={"Content-Type": "application/json", "Content-Length": "2"},
            status=status,
            preload_content=False,
        )
        return self.build_response(request, raw)


class _RecordingCriteo(CriteoAdapter, _Recording):
    pass


@pytest.mark.parametrize("path", ["auth", "adapter"])
def test_the_resend_goes_with_the_callers_send_options(
    mocked: responses.RequestsMock, auth: CriteoAuth, path: str
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    s = requests.Session()
    transport = _RecordingCriteo(auth) if path == "adapter" else _Recording()
    s.mount("https://api.criteo.com/", transport)
    options = {
        "stream": True,
        "timeout": (3.0, 7.0),
        "verify": "/etc/ssl/custom-ca.pem",
        "cert": ("client.pem", "client.key"),
        "proxies": {"https": "http://proxy.internal:3128"},
    }
    r = s.get(ME, auth=auth if path == "auth" else None, **options)  # type: ignore[arg-type]
    assert r.status_code == 200
    assert [call[0] for call in transport.sent] == ["Bearer tok-1", "Bearer tok-2"]
    first, second = (call[1:] for call in transport.sent)
    assert first == second
    assert first[:4] == (True, (3.0, 7.0), "/etc/ssl/custom-ca.pem", ("client.pem", "client.key"))
    proxies = first[4]  # with the environment's NO_PROXY merged in by requests
    assert isinstance(proxies, Mapping)
    assert proxies["https"] == "http://proxy.internal:3128"


# -- a request decorated before it reaches the adapter keeps its hook ------------------
#
# The adapter resends the 401s of what it sends itself, so the hook of a request decorated
# by auth= looks idle there, and taking it off would spare requests a hook call per
# response. It must stay: the hooks list is shared by the request's redirect hops and
# copies, which other adapters may send, and the hook is what keeps an auth given inline
# alive. Each test below failed when the adapter took it off.


def criteo_session(auth: CriteoAuth) -> requests.Session:
    """What requests_criteo.session() builds, around the test's auth."""
    s = CriteoSession()
    mount(s, auth)
    s.auth = SessionAuth(auth)
    return s


def auth_hooks(request: requests.PreparedRequest) -> list[object]:
    return [
        h
        for h in request.hooks["response"]
        if getattr(h, "__func__", None) is CriteoAuth.handle_401
    ]


def adapter_session(auth: CriteoAuth) -> requests.Session:
    s = requests.Session()
    s.mount("https://api.criteo.com/", CriteoAdapter(auth))
    return s


def test_a_request_decorated_before_the_adapter_is_resent_once_and_keeps_its_hook(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    s = adapter_session(auth)
    seen: list[int] = []
    s.hooks["response"].append(lambda r, **kwargs: seen.append(r.status_code))
    prep = s.prepare_request(requests.Request("GET", ME, auth=auth))
    r = s.send(prep)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert len(auth_hooks(prep)) == 1
    assert seen == [200]
    assert calls_to(mocked, TOKEN_URL) == 2
    assert calls_to(mocked, ME) == 2


def test_an_auth_given_inline_lives_through_the_adapters_resend(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """Nothing but the request's hook holds the auth (its state holds it weakly)."""
    one_expiry(mocked)
    s = adapter_session(CriteoAuth("client-2", SECRET, cache=cache))
    prep = requests.Request("GET", ME, auth=CriteoAuth("client-1", SECRET, cache=cache)).prepare()
    r = s.send(prep)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]


def test_a_redirect_hop_sent_by_another_adapter_is_still_resent(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    """The hop shares the first request's hooks list; the first went through the adapter."""
    legacy = "https://api.criteo.com/legacy/me"
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(legacy, status=301, headers={"Location": ME})
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={"data": "ok"})
    s = adapter_session(auth)
    s.mount("https://api.criteo.com/2025-10/", HTTPAdapter())  # the user's own, for /2025-10/
    r = s.get(legacy, auth=auth)
    assert r.status_code == 200
    assert r.request.headers["Authorization"] == "Bearer tok-2"


def test_a_request_sent_through_the_adapter_is_resent_when_sent_again_elsewhere(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    """A retry helper with a session of its own sends the same prepared request again."""
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, json={"data": "first"})
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={"data": "ok"})
    s = adapter_session(auth)
    prep = s.prepare_request(requests.Request("GET", ME, auth=auth))
    assert s.send(prep).status_code == 200
    r = requests.Session().send(prep)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]


def test_the_adapter_leaves_a_request_decorated_before_as_it_is(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """It does not decorate again what auth= decorated (and apply() sees it once)."""
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.get(ME, json={})
    applied: list[dict[str, object]] = []

    class Counting(CriteoAuth):
        def apply(self, r: requests.PreparedRequest, **options: Any) -> requests.PreparedRequest:
            applied.append(options)
            return super().apply(r, **options)

    auth = Counting("client-1", SECRET, cache=cache)
    r = adapter_session(auth).get(ME, auth=auth)
    assert r.request.headers["Authorization"] == "Bearer tok-1"
    assert applied == [{}]


def test_a_hook_put_before_the_auths_leaves_it_in_place_and_the_401_handled_once(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    s = adapter_session(auth)
    seen: list[int] = []
    prep = s.prepare_request(requests.Request("GET", ME, auth=auth))
    prep.hooks["response"].insert(0, lambda r, **kwargs: seen.append(r.status_code))
    r = s.send(prep)
    assert r.status_code == 200
    assert len(r.history) == 1
    assert seen == [200]
    assert len(auth_hooks(prep)) == 1
    assert calls_to(mocked, TOKEN_URL) == 2
    assert calls_to(mocked, ME) == 2


# -- session(): the token goes on in the adapter, as it sends ---------------------------


def test_a_session_request_is_decorated_by_the_adapter_and_resent_without_a_hook(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    s = criteo_session(auth)
    seen: list[int] = []
    s.hooks["response"].append(lambda r, **kwargs: seen.append(r.status_code))
    prep = s.prepare_request(requests.Request("GET", ME))
    assert "Authorization" not in prep.headers
    r = s.send(prep)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert r.request.headers["Authorization"] == "Bearer tok-2"
    assert auth_hooks(prep) == []
    assert seen == [200]
    assert calls_to(mocked, TOKEN_URL) == 2


def test_a_prepared_session_request_pointed_at_another_host_carries_no_token(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    """The token is put on as the adapter sends to Criteo, not when requests prepares."""
    token_route = mocked.post(TOKEN_URL, json=token_json())
    other = mocked.get("https://example.org/me", json={})
    s = criteo_session(auth)
    prep = s.prepare_request(requests.Request("GET", ME))
    prep.url = "https://example.org/me"
    assert s.send(prep).status_code == 200
    assert "Authorization" not in other.calls[0].request.headers
    assert token_route.call_count == 0


@pytest.mark.parametrize("detour", ["a longer mount", "a patched get_adapter"])
def test_a_session_request_another_adapter_sends_carries_no_token(
    mocked: responses.RequestsMock, auth: CriteoAuth, detour: str
) -> None:
    """A user's own adapter, or a mocking library's: only a CriteoAdapter puts a token on."""
    token_route = mocked.post(TOKEN_URL, json=token_json())
    api = mocked.get(ME, json={})
    s = criteo_session(auth)
    other = HTTPAdapter()
    if detour == "a longer mount":
        s.mount("https://api.criteo.com/2025-10/", other)  # preferred: the longer prefix
    else:
        s.get_adapter = lambda url: other  # type: ignore[method-assign]  # as requests-mock
    r = s.get(ME)
    assert r.connection is other
    assert "Authorization" not in api.calls[0].request.headers
    assert token_route.call_count == 0


def test_headers_replaced_by_a_plain_dict_still_get_the_token_and_the_agent(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.get(ME, json={})
    prep = prepared()
    prep.headers = {"User-Agent": requests.utils.default_user_agent()}  # type: ignore[assignment]
    assert CriteoAdapter(auth).send(prep).status_code == 200
    assert prep.headers == {
        "User-Agent": requests_criteo.USER_AGENT,
        "Authorization": "Bearer tok-1",
    }


def test_requests_own_headers_get_the_token_and_the_agent_in_their_usual_case(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.get(ME, json={})
    s = adapter_session(auth)
    headers = s.get(ME, headers={"AUTHORIZATION": "Basic dXNlcjpwYXNz"}).request.headers
    assert isinstance(headers, CaseInsensitiveDict)
    assert headers["authorization"] == "Bearer tok-1"
    assert headers["user-agent"] == requests_criteo.USER_AGENT
    names = list(headers)
    assert names.count("Authorization") == names.count("User-Agent") == 1
    assert "AUTHORIZATION" not in names


# -- what the cheaper path must not cost (from review) ----------------------------------


def test_a_401_that_cannot_be_resent_is_handled_once_on_the_session_path(
    mocked: responses.RequestsMock, auth: CriteoAuth, caplog: pytest.LogCaptureFixture
) -> None:
    """The adapter handles it, and the session's hook must not handle it again."""
    token_route = mocked.post(TOKEN_URL, json=token_json())
    mocked.post(ME, status=401, json=EXPIRED)
    s = CriteoSession()
    mount(s, auth)
    s.auth = SessionAuth(auth)  # what requests_criteo.session() builds
    with caplog.at_level(logging.WARNING, logger="requests_criteo"):
        r = s.post(ME, data=(c for c in [b"a"]))
    assert r.status_code == 401
    assert caplog.text.count("cannot be sent again") == 1
    assert token_route.call_count == 1


def test_a_subclass_apply_serves_auth_given_with_auth_too(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    mocked.post(TOKEN_URL, json=token_json())

    class Tagged(CriteoAuth):
        def apply(self, r: requests.PreparedRequest, **options: Any) -> requests.PreparedRequest:
            r.headers["X-Tag"] = "1"
            return super().apply(r, **options)

    tagged = Tagged("client-1", SECRET, cache=cache)
    assert prepared(auth=tagged).headers["X-Tag"] == "1"


def test_an_auth_is_freed_with_its_last_reference(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """No cycle through its bookkeeping: an auth (and its token session) goes at once."""
    mocked.post(TOKEN_URL, json=token_json())
    auth = CriteoAuth("client-1", SECRET, cache=cache)
    request = prepared(auth=auth)
    assert request.headers["Authorization"].startswith("Bearer ")
    del request
    gone = weakref.ref(auth)
    gc.disable()
    try:
        del auth
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_only_the_thread_sending_a_generator_goes_without_retries_even_in_a_forked_child(
    fake: FakeCriteo, cache: TokenCache
) -> None:
    """Another thread, a pickled adapter, and a child forked mid-send keep their retries."""
    auth = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=cache)
    adapters = [CriteoAdapter(auth), pickle.loads(pickle.dumps(CriteoAdapter(auth)))]
    sending, release = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        sending.set()
        release.wait(5)
        yield b"a"

    def send() -> None:
        with requests.Session() as s:
            s.mount(f"{fake.url}/", adapters[0])
            s.post(me(fake), data=body(), timeout=5)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert sending.wait(5)
        assert [a.max_retries.total for a in adapters] == [4, 4]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.write(write, b",".join(b"%d" % a.max_retries.total for a in adapters))
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as pipe:
            assert pipe.read() == b"4,4"
    finally:
        release.set()
        sender.join(5)


def test_a_request_sent_by_the_adapter_keeps_its_401_handling_when_sent_again(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, json={})
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={})
    through_adapter = requests.Session()
    through_adapter.mount("https://api.criteo.com/", CriteoAdapter(auth))
    prep = through_adapter.prepare_request(requests.Request("GET", ME))
    assert through_adapter.send(prep).status_code == 200
    with requests_criteo.install(auth):
        r = requests.Session().send(prep)  # the same request, without the adapter
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]


# -- from the review of the whole change -------------------------------------------------


def test_a_401_whose_body_an_earlier_hook_streamed_away_is_still_resent(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    one_expiry(mocked)
    s = requests.Session()
    prep = s.prepare_request(requests.Request("GET", ME, auth=auth))
    prep.hooks["response"].insert(0, lambda r, **kwargs: list(r.iter_content(10)) and None)
    r = s.send(prep, stream=True)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]


def test_a_request_whose_auth_is_gone_is_resent_by_the_auth_handling_its_401(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """Decorated by an adapter's auth that is freed since; sent again under install()."""
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    mocked.get(ME, json={})
    mocked.get(ME, status=401, json=EXPIRED)
    mocked.get(ME, json={})
    s = adapter_session(CriteoAuth("client-1", SECRET, cache=cache))
    prep = s.prepare_request(requests.Request("GET", ME))
    assert s.send(prep).status_code == 200
    del s
    mocked.calls.reset()  # its records hold the response, and so the adapter
    gc.collect()
    with requests_criteo.install(CriteoAuth("client-1", SECRET, cache=cache)):
        r = requests.Session().send(prep)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert r.request.headers["Authorization"] == "Bearer tok-2"


def test_an_auth_applied_after_another_takes_the_request_over(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    first = CriteoAuth("client-1", SECRET, cache=cache)
    second = CriteoAuth("client-2", SECRET, cache=cache)
    prep = prepared(auth=first)
    second(prep)
    assert prep.headers["Authorization"] == "Bearer tok-2"
    assert len(auth_hooks(prep)) == 1  # the first's hook serves: it resends with the mark's


def test_an_auth_taking_over_an_adapters_request_registers_the_hook(
    mocked: responses.RequestsMock, cache: TokenCache
) -> None:
    """The adapter decorated it without a hook (it handles its own 401s); auth= needs one."""
    mocked.post(TOKEN_URL, json=token_json("tok-1"))
    mocked.post(TOKEN_URL, json=token_json("tok-2"))
    prep = prepared()
    CriteoAuth("client-1", SECRET, cache=cache).apply(prep, keep_authorization=True, hook=False)
    assert auth_hooks(prep) == []
    second = CriteoAuth("client-2", SECRET, cache=cache)
    second(prep)
    assert prep.headers["Authorization"] == "Bearer tok-2"
    assert len(auth_hooks(prep)) == 1


def test_a_request_without_a_user_agent_gets_the_librarys(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, json={})
    prep = prepared()
    assert "User-Agent" not in prep.headers
    CriteoAdapter(auth).send(prep)
    assert prep.headers["User-Agent"] == requests_criteo.USER_AGENT
