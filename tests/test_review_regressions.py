"""Regression tests for the findings of the independent review (reproducers r01-r20).

Each test holds a promise a user relies on and failed before its fix. Everything runs
against FakeCriteo (or a tiny raw-socket server) on 127.0.0.1; token expiry is driven by
injected clocks, never by sleeping.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient

import requests_criteo
from requests_criteo import (
    CriteoAdapter,
    CriteoAPIError,
    CriteoAuth,
    CriteoRetry,
    MemoryTokenStore,
    TokenCache,
    TokenRequestError,
)
from requests_criteo._cache import MIN_LIFETIME, lifetime_from
from requests_criteo._token import TokenEndpoint
from requests_criteo.envelope import MAX_ENVELOPE_BODY
from requests_criteo.testing import FakeCriteo

from .conftest import (
    CLIENT_ID,
    SECRET,
    WAYS,
    FakeClock,
    Sleeps,
    V,
    assert_no_secret,
    criteo_client,
    echo,
    me,
    summary,
)

ORIGINAL_SEND = requests.Session.send
ORIGINAL_REBUILD_AUTH = requests.Session.rebuild_auth


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback_and_uninstalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing stays installed (conftest keeps proxies out of loopback calls)."""
    yield
    requests_criteo.uninstall()
    assert requests.Session.send is ORIGINAL_SEND
    assert requests.Session.rebuild_auth is ORIGINAL_REBUILD_AUTH


def secret_forms(secret: str = SECRET) -> tuple[str, ...]:
    """The secret as given and as a form or a URL carries it."""
    return (secret, quote_plus(secret), quote(secret, safe=""))


def assert_hidden(text: str, secret: str = SECRET) -> None:
    for form in secret_forms(secret):
        assert form not in text


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # an object whose repr breaks shows nothing
        return f"<repr failed: {type(exc).__name__}>"


def raised(call: Callable[[], object]) -> TokenRequestError:
    """The TokenRequestError *call* raises (this frame holds nothing secret)."""
    try:
        call()
    except TokenRequestError as exc:
        return exc
    pytest.fail("no TokenRequestError raised")


def reachable(exc: BaseException, depth: int = 6) -> Iterator[object]:
    """*exc*, the exceptions of its __context__/__cause__ chain and what they hold."""
    seen: set[int] = set()
    todo: list[tuple[object, int]] = [(exc, 0)]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or level > depth:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (str, bytes, int, float, bool, type, ModuleType)):
            continue
        children: list[object] = []
        if isinstance(obj, BaseException):
            children += [obj.__context__, obj.__cause__, *obj.args]
        if isinstance(obj, (list, tuple, set, frozenset)):
            children += list(obj)
        elif isinstance(obj, dict):
            children += [*obj.keys(), *obj.values()]
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            children += list(attributes.values())
        todo += [(child, level + 1) for child in children if child is not None]


def assert_exception_keeps_the_secret_out(exc: BaseException) -> None:
    for obj in reachable(exc):
        if isinstance(obj, bytes):
            assert_hidden(obj.decode("latin-1"))
        elif isinstance(obj, str):
            assert_hidden(obj)
        else:
            assert_hidden(safe_repr(obj))
            attributes = getattr(obj, "__dict__", None)
            if isinstance(obj, BaseException) and isinstance(attributes, dict):
                assert_hidden(safe_repr(attributes))
    tb = exc.__traceback__
    assert tb is not None
    while tb is not None:
        for name, value in dict(tb.tb_frame.f_locals).items():
            text = safe_repr(value)
            for form in secret_forms():
                assert form not in text, f"{tb.tb_frame.f_code.co_name}() local {name!r}"
        tb = tb.tb_next


# -- 2. a 401 with a body over 64 KiB does not break the resend --------------------------------


def _clearing_on_token(fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry) -> CriteoAuth:
    """An auth whose every new token clears the fake's canned answers.

    A canned 401 is then for the first call only: the new token's arrival takes it away.
    """
    return CriteoAuth(
        CLIENT_ID,
        SECRET,
        token_url=fake.token_url,
        cache=cache,
        retry=retry,
        on_token=lambda stored: fake.clear_responses(),
    )


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("size", [70_000, 2_000_000])
def test_a_large_401_body_never_breaks_the_resend(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry, size: int, stream: bool
) -> None:
    path = f"/{V}/retail-media/x"
    auth = _clearing_on_token(fake, cache, retry)
    auth.token()
    big = b"x" * size
    for _ in range(20):
        fake.set_response(
            path, status=401, body=big, headers={"Content-Type": "text/plain"}, authorize=False
        )
        r = requests.get(fake.url + path, auth=auth, timeout=5, stream=stream)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
            assert r.json()["data"]["attributes"]["path"] == path
    assert fake.api_requests == 40
    assert fake.tokens_issued == 21


def test_a_large_401_body_never_breaks_the_adapter_resend(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    path = f"/{V}/retail-media/x"
    auth = _clearing_on_token(fake, cache, retry)
    auth.token()
    with criteo_client("mount", fake, auth, pool_maxsize=1) as s:
        for _ in range(20):
            fake.set_response(path, status=401, body=b"y" * 70_000, authorize=False)
            assert summary(s.get(fake.url + path, timeout=5)) == (200, [401])


# -- 3. uninstall() while another thread is inside an installed Session.send -----------------


def test_uninstall_while_another_thread_is_sending_lets_it_finish(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    fake.inject_token_fault(None, delay=0.5)  # the token endpoint takes 0.5 s to answer
    result: dict[str, object] = {}

    def worker() -> None:
        try:
            result["answer"] = summary(requests.get(me(fake), timeout=5))
        except BaseException as exc:
            result["answer"] = exc

    requests_criteo.install(criteo_auth)
    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 5
    while fake.token_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the worker is inside send, fetching its token
    assert fake.token_requests == 1
    requests_criteo.uninstall()
    thread.join(10)
    assert not thread.is_alive()
    assert result["answer"] == (200, [])
    assert requests.Session.send is ORIGINAL_SEND


# -- 4. uninstall() keeps a wrapper another library installed after install() ---------------


def test_uninstall_leaves_a_later_wrapper_of_session_send_in_place(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    pristine = requests.Session.send
    seen: list[str | None] = []
    try:
        requests_criteo.install(criteo_auth)
        inner = requests.Session.send

        @functools.wraps(inner)
        def traced_send(
            self: requests.Session, request: requests.PreparedRequest, **kw: Any
        ) -> requests.Response:
            seen.append(request.url)
            return inner(self, request, **kw)

        requests.Session.send = traced_send  # type: ignore[method-assign]
        requests_criteo.uninstall()
        assert requests.Session.send is traced_send
        # The wrapper still works, and what it wraps no longer adds a token.
        assert summary(requests.get(me(fake), timeout=5)) == (401, [])
        assert seen == [me(fake)]
        assert fake.api_calls()[-1].bearer is None
        assert fake.token_requests == 0
    finally:
        requests.Session.send = pristine  # type: ignore[method-assign]


# -- 5. a TokenRequestError leads to no object or frame holding the secret --------------------


def test_connection_failure_error_holds_no_secret(cache: TokenCache, sleeps: Sleeps) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = CriteoAuth(
        CLIENT_ID,
        SECRET,
        token_url=f"http://127.0.0.1:{port}/oauth2/token",
        cache=cache,
        retry=CriteoRetry(total=1, sleep=sleeps, backoff_jitter=0.0),
    )
    exc = raised(auth.token)
    assert "could not reach the token endpoint" in str(exc)
    assert len(sleeps) == 1  # retried once, then gave up
    assert_exception_keeps_the_secret_out(exc)
    # One level down too: a requests exception left in a frame's locals holds no request
    # (whose body is the form), for reporters that serialise attributes, not just reprs.
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, requests.RequestException):
                assert value.request is None
        tb = tb.tb_next


def test_exhausted_retries_error_holds_no_secret(
    fake: FakeCriteo, cache: TokenCache, sleeps: Sleeps
) -> None:
    fake.inject_token_fault(503, body='{"error": "temporarily_unavailable"}', times=5)
    auth = CriteoAuth(
        CLIENT_ID,
        SECRET,
        token_url=fake.token_url,
        cache=cache,
        retry=CriteoRetry(total=2, sleep=sleeps, backoff_jitter=0.0),
    )
    exc = raised(auth.token)
    assert exc.status_code == 503
    assert "gave up after 3 attempts" in str(exc)
    assert fake.token_requests == 3
    assert_exception_keeps_the_secret_out(exc)


def test_refusal_error_holds_no_secret(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    auth = CriteoAuth("client-unknown", SECRET, token_url=fake.token_url, cache=cache, retry=retry)
    exc = raised(auth.token)
    assert (exc.status_code, exc.error) == (400, "invalid_client")
    assert fake.token_requests == 1
    assert_exception_keeps_the_secret_out(exc)


# -- 6. responses and CriteoAPIError pickle, the error without the token ----------------------


def test_an_authenticated_response_pickles(fake: FakeCriteo) -> None:
    auth = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    with requests.get(me(fake), auth=auth, timeout=5) as r:
        assert r.status_code == 200
        blob = pickle.dumps(r)
    assert_hidden(blob.decode("latin-1"))
    loaded = pickle.loads(blob)
    assert loaded.status_code == 200
    assert loaded.json()["data"]["id"] == CLIENT_ID


def test_a_criteo_api_error_pickles_without_the_token(fake: FakeCriteo) -> None:
    auth = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    errors = [{"code": "insufficient-advertisers-permissions", "title": "no", "traceId": "t-1"}]
    fake.set_response(f"/{V}/retail-media/accounts", status=403, json={"errors": errors})
    r = requests.get(echo(fake, "accounts"), auth=auth, timeout=5)
    with r, pytest.raises(CriteoAPIError) as info:
        requests_criteo.raise_for_status(r)
    exc = info.value
    blob = pickle.dumps(exc)
    token = auth.token().access_token
    assert token.encode() not in blob
    assert_hidden(blob.decode("latin-1"))
    loaded = pickle.loads(blob)
    assert isinstance(loaded, CriteoAPIError)
    assert loaded.status_code == 403
    assert loaded.code == "insufficient-advertisers-permissions"
    assert loaded.errors == exc.errors
    assert loaded.trace_id == "t-1"
    assert str(loaded) == str(exc)


# -- 7. a token endpoint that trickles its headers cannot hold a caller past the deadline -----


@contextlib.contextmanager
def trickling_token_endpoint() -> Iterator[tuple[str, threading.Event]]:
    """A raw socket server on 127.0.0.1 sending its status line and headers a byte per 0.2 s."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    port = srv.getsockname()[1]
    stop, accepted = threading.Event(), threading.Event()
    head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 400 + b"\r\nContent-Length: 2\r\n\r\n{}"

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                accepted.set()
                for i in range(len(head)):
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(head[i : i + 1])
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/oauth2/token", accepted
    finally:
        stop.set()
        thread.join(5)
        srv.close()


def test_a_trickling_token_endpoint_is_cut_off_at_the_deadline(
    cache: TokenCache, sleeps: Sleeps
) -> None:
    with trickling_token_endpoint() as (token_url, accepted):
        auth = CriteoAuth(
            CLIENT_ID,
            SECRET,
            token_url=token_url,
            cache=cache,
            timeout=(1, 1),
            deadline=1.5,
            retry=CriteoRetry(total=0, sleep=sleeps),
        )
        outcome: dict[str, tuple[object, float]] = {}

        def call(name: str) -> None:
            start = time.monotonic()
            try:
                result: object = auth.token()
            except BaseException as exc:
                result = exc
            outcome[name] = (result, time.monotonic() - start)

        t0 = time.monotonic()
        leader = threading.Thread(target=call, args=("leader",))
        leader.start()
        assert accepted.wait(2)
        waiter = threading.Thread(target=call, args=("waiter",))
        waiter.start()
        leader.join(4)
        waiter.join(4)
        total = time.monotonic() - t0
        assert not leader.is_alive()
        assert not waiter.is_alive()
    for name in ("leader", "waiter"):
        error, elapsed = outcome[name]
        assert isinstance(error, TokenRequestError), name
        assert elapsed < 3, name
    assert total < 3


# -- 8. a session's own response hooks see the resend, not the 401 --------------------------


@pytest.mark.parametrize("way", [*WAYS, "auth"])
def test_a_session_hook_sees_the_resend_not_the_401(
    way: str, fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    seen: list[tuple[int, list[int]]] = []

    def assert_status(r: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((r.status_code, [h.status_code for h in r.history]))
        r.raise_for_status()

    with criteo_client(way, fake, criteo_auth) as s:
        s.hooks = {"response": [assert_status]}
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()  # Criteo revokes the cached token
        assert summary(s.get(me(fake), timeout=5)) == (200, [401])
    assert seen == [(200, []), (200, [401])]
    assert fake.token_requests == 2


# -- 10. a tiny expires_in does not mean a token request per call ----------------------------


def test_a_tiny_expires_in_is_raised_to_the_minimum_lifetime() -> None:
    assert MIN_LIFETIME == 1.0
    assert lifetime_from(0.001) == 1.0
    assert lifetime_from(1e-9) == 1.0
    assert lifetime_from("0.5") == 1.0


def test_a_tiny_expires_in_does_not_cost_a_token_request_per_call(
    clock: FakeClock, retry: CriteoRetry
) -> None:
    # The fake answers expires_in 0.001, but its own clock stands still: its tokens stay
    # valid. The client's clock moves 10 ms per call, well past 0.001 s.
    with FakeCriteo(clients={CLIENT_ID: SECRET}, lifetime=0.001, timer=lambda: 0.0) as fake:
        auth = CriteoAuth(
            CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache(timer=clock), retry=retry
        )
        for _ in range(20):
            assert summary(requests.get(me(fake), auth=auth, timeout=5)) == (200, [])
            clock.advance(0.01)
        assert fake.token_requests == 1
        assert auth.token().lifetime == MIN_LIFETIME


# -- 11. a pipe body that gets a 429 through the adapter --------------------------------------


def test_a_pipe_body_answered_429_is_returned_not_retried(
    fake: FakeCriteo, criteo_auth: CriteoAuth, sleeps: Sleeps
) -> None:
    path = f"/{V}/retail-media/upload"
    fake.set_response(path, status=429, headers={"Retry-After": "0"})
    options = {"max_retries": CriteoRetry(sleep=sleeps, backoff_jitter=0.0)}
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"a": 1}')
    os.close(write_end)
    with (
        os.fdopen(read_end, "rb") as body,
        criteo_client("session", fake, criteo_auth, **options) as s,
    ):
        assert not body.seekable()
        assert summary(s.post(fake.url + path, data=body, timeout=5)) == (429, [])
    assert [c.path for c in fake.api_calls()] == [path]
    assert sleeps == []


# -- 12. bytearray and memoryview bodies are resent whole after a 401 -------------------------


@pytest.mark.parametrize("way", ["auth", "session"])
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytearray_and_memoryview_bodies_are_resent_whole(
    way: str, kind: Callable[[bytes], Any], fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    payload = json.dumps({"rows": list(range(3000))}).encode()
    with criteo_client(way, fake, criteo_auth) as s:
        assert summary(s.get(me(fake), timeout=5)) == (200, [])
        fake.revoke()
        r = s.post(echo(fake, "things"), data=kind(payload), timeout=5)
        with r:
            assert (r.status_code, [h.status_code for h in r.history]) == (200, [401])
            attributes = r.json()["data"]["attributes"]
    assert attributes["bodyLength"] == len(payload)
    assert attributes["bodySha256"] == hashlib.sha256(payload).hexdigest()
    posted = [c for c in fake.api_calls() if c.method == "POST"]
    assert [c.body for c in posted] == [payload, payload]
    assert posted[0].bearer != posted[1].bearer


# -- 13. a retry wait that lands past the deadline raises TokenRequestError -------------------


def test_a_retry_wait_ending_past_the_deadline_raises_token_request_error(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    monotonic = FakeClock(start=0.0)
    waits: list[float] = []

    def oversleep(seconds: float) -> None:  # a sleep always oversleeps a little
        waits.append(seconds)
        monotonic.advance(seconds + 0.0005)

    fake.inject_token_fault(503, body="{}", headers={"Retry-After": "9.9999"})
    endpoint = TokenEndpoint(
        fake.token_url,
        timeout=(5.0, 15.0),
        deadline=10.0,
        retry=CriteoRetry(sleep=oversleep, backoff_jitter=0.0),
        user_agent="requests-criteo-tests",
        clock=monotonic,
    )
    body = BackendApplicationClient(CLIENT_ID).prepare_request_body(
        include_client_id=True, client_secret=SECRET
    )
    try:
        with pytest.raises(TokenRequestError, match="deadline"):
            endpoint.fetch(body, secrets=[SECRET], timer=clock)
    finally:
        endpoint.session.close()
    assert waits == [pytest.approx(9.9999)]
    assert fake.token_requests == 1


# -- 14. a URL-encoded echo of the secret is redacted -----------------------------------------


@pytest.mark.parametrize("encode", [quote_plus, functools.partial(quote, safe="")])
def test_an_error_description_echoing_the_encoded_secret_is_redacted(
    encode: Callable[[str], str], cache: TokenCache, retry: CriteoRetry
) -> None:
    secret = "s3cr3t SENTINEL+/x=="  # a space: quote_plus and quote differ
    assert quote_plus(secret) != quote(secret, safe="")
    with FakeCriteo(clients={CLIENT_ID: secret}) as fake:
        fake.inject_token_fault(
            400,
            body=json.dumps(
                {
                    "error": "invalid_request",
                    "error_description": f"bad client_secret={encode(secret)}&grant_type=x",
                }
            ),
        )
        auth = CriteoAuth(CLIENT_ID, secret, token_url=fake.token_url, cache=cache, retry=retry)
        exc = raised(auth.token)
    assert exc.error_description is not None
    assert "client_secret=[secure]" in exc.error_description
    assert "[secure]" in str(exc)
    for text in (str(exc), repr(exc), exc.error_description, repr(exc.args)):
        assert_hidden(text, secret)
        assert_no_secret(text)


# -- 15. a non-canonical token URL is still recognised (no self-wait) -------------------------


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


# -- 16. envelope() reads nothing of a stream; raise_for_status at most 1 MiB + 1 -------------


def test_envelope_on_an_unread_stream_reads_nothing(fake: FakeCriteo) -> None:
    body = json.dumps({"errors": [{"code": "x", "title": "t"}], "pad": "p" * 5000}).encode()
    fake.set_response("/doc", status=400, body=body, authorize=False)
    with requests.get(f"{fake.url}/doc", stream=True, timeout=5) as r:
        found = requests_criteo.envelope(r)
        assert not found
        assert r.raw.tell() == 0
        assert r.raw.read() == body


def test_envelope_on_an_unread_stream_leaves_content_to_the_caller(fake: FakeCriteo) -> None:
    body = b'{"warnings": [{"code": "w"}]}'
    fake.set_response("/doc", status=200, body=body, authorize=False)
    with requests.get(f"{fake.url}/doc", stream=True, timeout=5) as r:
        assert not requests_criteo.envelope(r)
        assert r.content == body
        # Once the body is read, the envelope is there.
        assert [w.code for w in requests_criteo.envelope(r).warnings] == ["w"]


def test_raise_for_status_on_a_4xx_stream_reads_at_most_1_mib(fake: FakeCriteo) -> None:
    fake.set_response("/big", status=400, body=b"x" * (3 * 1024 * 1024), authorize=False)
    with requests.get(f"{fake.url}/big", stream=True, timeout=10) as r:
        with pytest.raises(CriteoAPIError) as info:
            requests_criteo.raise_for_status(r)
        assert r.raw.tell() <= MAX_ENVELOPE_BODY + 1
        assert len(r.content) <= MAX_ENVELOPE_BODY + 1
    assert info.value.status_code == 400
    assert info.value.errors == []


# -- 17. CriteoAdapter.send with positional arguments ----------------------------------------


def test_criteo_adapter_send_takes_positional_arguments(
    fake: FakeCriteo, criteo_auth: CriteoAuth
) -> None:
    prepared = requests.Request("GET", me(fake)).prepare()
    adapter = CriteoAdapter(criteo_auth)
    try:
        assert summary(adapter.send(prepared, False, 5, True, None, None)) == (200, [])
    finally:
        adapter.close()
    assert fake.api_calls()[-1].bearer is not None


# -- 18. a TokenCache of its own isolates an auth; clear() forces a new token ----------------


def test_auths_with_their_own_token_cache_share_no_token(fake: FakeCriteo) -> None:
    a = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    b = CriteoAuth(CLIENT_ID, SECRET, token_url=fake.token_url, cache=TokenCache())
    assert summary(requests.get(me(fake), auth=a, timeout=5)) == (200, [])
    assert summary(requests.get(me(fake), auth=b, timeout=5)) == (200, [])
    assert fake.token_requests == 2
    first_a, first_b = (c.bearer for c in fake.api_calls())
    assert first_a != first_b

    a.cache.clear()
    assert summary(requests.get(me(fake), auth=a, timeout=5)) == (200, [])
    assert fake.token_requests == 3
    assert fake.api_calls()[-1].bearer not in (first_a, first_b)
    assert a.token().access_token != b.token().access_token
