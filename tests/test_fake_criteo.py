"""Tests of requests_criteo.testing.FakeCriteo itself, with plain requests over loopback."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from requests_criteo.testing import FakeCriteo, SeenRequest

V = "2025-10"
GOOD_FORM = {
    "client_id": FakeCriteo.CLIENT_ID,
    "client_secret": FakeCriteo.CLIENT_SECRET,
    "grant_type": "client_credentials",
}


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock) as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    client = requests.Session()
    client.trust_env = False  # no proxy or .netrc from the environment: loopback only
    with client:
        yield client


def get_token(session: requests.Session, fake: FakeCriteo, **form: str) -> str:
    response = session.post(fake.token_url, data={**GOOD_FORM, **form}, timeout=5)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url_json(segment: str) -> object:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def assert_401(response: requests.Response, code: str, title: str, instance: str) -> None:
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert len(errors) == 1
    error = errors[0]
    assert set(error) == {"traceId", "type", "code", "instance", "title"}
    assert uuid.UUID(error["traceId"]).version == 4
    assert error["type"] == "authorization"
    assert error["code"] == code
    assert error["title"] == title
    assert error["instance"] == instance


def assert_expired(response: requests.Response, instance: str) -> None:
    assert_401(
        response, "authorization-token-expired", "The authorization token has expired", instance
    )


def assert_invalid(response: requests.Response, instance: str) -> None:
    assert_401(
        response, "authorization-token-invalid", "The authorization header is invalid", instance
    )


# -- token endpoint ----------------------------------------------------------------------------


def test_token_issue_and_json_shape(fake: FakeCriteo, session: requests.Session) -> None:
    response = session.post(fake.token_url, data=GOOD_FORM, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Content-Length"]) == len(response.content)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert type(body["expires_in"]) is int
    assert body["refresh_token"] is None
    assert '"refresh_token":null' in response.text

    header, payload, signature = body["access_token"].split(".")
    assert b64url_json(header) == {"alg": "RS256", "typ": "JWT"}
    claims = b64url_json(payload)
    assert isinstance(claims, dict)
    assert claims["client_id"] == FakeCriteo.CLIENT_ID
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]
    assert len(base64.urlsafe_b64decode(signature + "==")) == 256

    second = get_token(session, fake)
    assert second != body["access_token"]
    assert fake.tokens_issued == 2
    assert fake.token_requests == 2


def test_lifetime_is_settable_and_integral_values_are_ints(
    fake: FakeCriteo, session: requests.Session
) -> None:
    fake.lifetime = 12.5
    assert session.post(fake.token_url, data=GOOD_FORM, timeout=5).json()["expires_in"] == 12.5
    fake.lifetime = 60.0
    expires_in = session.post(fake.token_url, data=GOOD_FORM, timeout=5).json()["expires_in"]
    assert expires_in == 60
    assert type(expires_in) is int


def test_secret_with_plus_must_be_form_encoded(fake: FakeCriteo, session: requests.Session) -> None:
    assert "+" in FakeCriteo.CLIENT_SECRET
    ok = session.post(fake.token_url, data=GOOD_FORM, timeout=5)
    assert ok.status_code == 200
    assert fake.token_endpoint_requests()[-1].form["client_secret"] == FakeCriteo.CLIENT_SECRET

    raw = (
        f"client_id={FakeCriteo.CLIENT_ID}&client_secret={FakeCriteo.CLIENT_SECRET}"
        "&grant_type=client_credentials"
    )
    refused = session.post(
        fake.token_url,
        data=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client"
    assert fake.token_endpoint_requests()[-1].form["client_secret"] == "fake client/secret=="
    assert fake.tokens_issued == 1


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": "nobody"},
        {"client_secret": "wrong"},
        {"client_secret": FakeCriteo.CLIENT_SECRET + "x"},
    ],
)
def test_invalid_client(fake: FakeCriteo, session: requests.Session, form: dict[str, str]) -> None:
    response = session.post(fake.token_url, data={**GOOD_FORM, **form}, timeout=5)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "The client authentication failed, the provided client_id "
        "doesn't exist or the client_secret is invalid",
    }
    assert fake.tokens_issued == 0
    assert fake.token_requests == 1


def test_unsupported_grant_missing_fields_and_wrong_method(
    fake: FakeCriteo, session: requests.Session
) -> None:
    response = session.post(fake.token_url, data={**GOOD_FORM, "grant_type": "password"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"

    for missing in ("client_id", "client_secret", "grant_type"):
        form = {k: v for k, v in GOOD_FORM.items() if k != missing}
        response = session.post(fake.token_url, data=form, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert missing in response.json()["error_description"]

    as_json = session.post(fake.token_url, json=GOOD_FORM, timeout=5)
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"

    wrong_method = session.get(fake.token_url, timeout=5)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"

    assert fake.token_requests == 6
    assert fake.tokens_issued == 0
    assert fake.api_requests == 0


def test_custom_clients_and_add_client(clock: FakeClock, session: requests.Session) -> None:
    with FakeCriteo(clients={"app-1": "s3cret+1"}, timer=clock) as fake:
        assert session.post(fake.token_url, data=GOOD_FORM, timeout=5).status_code == 400
        token = get_token(session, fake, client_id="app-1", client_secret="s3cret+1")
        me = session.get(f"{fake.url}/{V}/retail-media/me", headers=bearer(token), timeout=5)
        assert me.json()["data"]["id"] == "app-1"

        fake.add_client("app-2", "other/secret=")
        get_token(session, fake, client_id="app-2", client_secret="other/secret=")
        assert fake.tokens_issued == 2


def test_concurrent_token_requests_are_counted_and_distinct(fake: FakeCriteo) -> None:
    def fetch(_: int) -> str:
        with requests.Session() as session:
            session.trust_env = False
            return get_token(session, fake)

    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(fetch, range(24)))

    assert len(set(tokens)) == 24
    assert fake.tokens_issued == 24
    assert fake.token_requests == 24
    assert len(fake.token_endpoint_requests()) == 24


# -- API authorization -------------------------------------------------------------------------


def test_missing_and_malformed_authorization_headers(
    fake: FakeCriteo, session: requests.Session
) -> None:
    path = f"/{V}/retail-media/accounts"
    assert_invalid(session.get(fake.url + path, timeout=5), path)
    for header in ("Basic Zm9vOmJhcg==", "Bearer", "Bearer ", "Token abc", "Bearer a b"):
        response = session.get(fake.url + path, headers={"Authorization": header}, timeout=5)
        assert_invalid(response, path)
    assert fake.api_requests == 6


def test_unknown_token_is_expired(fake: FakeCriteo, session: requests.Session) -> None:
    path = f"/{V}/marketing-solutions/me"
    response = session.get(fake.url + path, headers=bearer("not-a-token-we-issued"), timeout=5)
    assert_expired(response, path)


def test_revoked_tokens(fake: FakeCriteo, session: requests.Session) -> None:
    path = f"/{V}/retail-media/me"
    first, second, third = (get_token(session, fake) for _ in range(3))

    fake.revoke(first)
    assert_expired(session.get(fake.url + path, headers=bearer(first), timeout=5), path)
    assert session.get(fake.url + path, headers=bearer(second), timeout=5).status_code == 200

    fake.revoke()
    for token in (second, third):
        assert_expired(session.get(fake.url + path, headers=bearer(token), timeout=5), path)
    assert session.get(fake.url + path, headers=bearer(get_token(session, fake)), timeout=5).ok

    with pytest.raises(KeyError):
        fake.revoke("never-issued")


def test_expiry_follows_the_injected_clock(
    fake: FakeCriteo, clock: FakeClock, session: requests.Session
) -> None:
    path = f"/{V}/retail-media/me"
    token = get_token(session, fake)
    clock.advance(899.5)
    assert session.get(fake.url + path, headers=bearer(token), timeout=5).status_code == 200
    clock.advance(0.5)
    assert_expired(session.get(fake.url + path, headers=bearer(token), timeout=5), path)

    fake.lifetime = 10
    short = get_token(session, fake)
    clock.advance(9.9)
    assert session.get(fake.url + path, headers=bearer(short), timeout=5).status_code == 200
    clock.advance(0.1)
    assert_expired(session.get(fake.url + path, headers=bearer(short), timeout=5), path)


def test_expire_all(fake: FakeCriteo, session: requests.Session) -> None:
    path = f"/{V}/retail-media/me"
    old = get_token(session, fake)
    fake.expire_all()
    assert_expired(session.get(fake.url + path, headers=bearer(old), timeout=5), path)
    new = get_token(session, fake)
    assert session.get(fake.url + path, headers=bearer(new), timeout=5).status_code == 200


@pytest.mark.parametrize("version", ["2025-01", "preview", "experimental"])
@pytest.mark.parametrize("product", ["retail-media", "marketing-solutions"])
def test_me_endpoints(
    fake: FakeCriteo, session: requests.Session, version: str, product: str
) -> None:
    token = get_token(session, fake)
    response = session.get(f"{fake.url}/{version}/{product}/me", headers=bearer(token), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "data": {
            "id": FakeCriteo.CLIENT_ID,
            "type": "Application",
            "attributes": {"clientId": FakeCriteo.CLIENT_ID},
        }
    }
    seen = fake.api_calls()[-1]
    assert seen.bearer == token
    assert seen.header("authorization") == f"Bearer {token}"


def test_unversioned_paths_are_404(fake: FakeCriteo, session: requests.Session) -> None:
    for path in ("/", "/retail-media/me", "/2025-13/retail-media/me", "/v1/x"):
        response = session.get(fake.url + path, timeout=5)
        assert response.status_code == 404
        error = response.json()["errors"][0]
        assert error["code"] == "not-found"
        assert error["instance"] == path
    assert fake.api_requests == 4


# -- bodies ------------------------------------------------------------------------------------


def test_echo_of_a_chunked_generator_body(fake: FakeCriteo, session: requests.Session) -> None:
    token = get_token(session, fake)
    parts = [b"hello ", b"x" * 70_000, "caf\u00e9".encode(), b"\r\n0\r\n"]
    expected = b"".join(parts)

    response = session.post(
        f"{fake.url}/{V}/retail-media/catalogs?page=2",
        data=iter(parts),
        headers=bearer(token),
        timeout=5,
    )

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "type": "Echo",
            "attributes": {
                "method": "POST",
                "path": f"/{V}/retail-media/catalogs?page=2",
                "bodyLength": len(expected),
                "bodySha256": hashlib.sha256(expected).hexdigest(),
            },
        }
    }
    seen = fake.api_calls()[-1]
    assert seen.header("Transfer-Encoding") == "chunked"
    assert seen.body == expected
    assert seen.form == {}

    again = session.put(f"{fake.url}/{V}/x", data=b"plain", headers=bearer(token), timeout=5)
    assert again.json()["data"]["attributes"]["bodyLength"] == 5


def test_chunked_token_request_is_parsed(fake: FakeCriteo, session: requests.Session) -> None:
    body = urlencode(GOOD_FORM)
    response = session.post(
        fake.token_url,
        data=iter([body[:10].encode(), body[10:].encode()]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert response.status_code == 200
    assert fake.token_endpoint_requests()[-1].form == GOOD_FORM


def test_body_over_10_mib_is_413(fake: FakeCriteo, session: requests.Session) -> None:
    response = session.post(f"{fake.url}/{V}/x", data=b"\0" * (10 * 1024 * 1024 + 1), timeout=5)
    assert response.status_code == 413
    assert fake.api_requests == 1
    # the fake closed that connection; the session opens a new one
    assert session.get(f"{fake.url}/{V}/x", timeout=5).status_code == 401


def test_keep_alive_and_head(fake: FakeCriteo) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]), timeout=5)
    try:
        connection.request("GET", f"/{V}/a")
        first = connection.getresponse()
        first_body = first.read()
        sock = connection.sock
        connection.request("HEAD", f"/{V}/a")
        head = connection.getresponse()
        assert head.read() == b""
        assert head.status == first.status == 401
        assert head.getheader("Content-Length") == str(len(first_body))
        assert connection.sock is sock is not None  # the same connection served both
    finally:
        connection.close()


def raw_exchange(fake: FakeCriteo, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes, then read everything the fake answers until it closes the connection."""
    port = int(fake.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def get_token_raw(fake: FakeCriteo) -> str:
    with requests.Session() as client:
        client.trust_env = False
        return get_token(client, fake)


HEAD = b"POST /2025-10/x HTTP/1.1\r\nHost: fake\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "half_close", "status_line"),
    [
        (CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", False, b"HTTP/1.1 400 "),
        (CHUNKED + b"3\r\nabcX\r\n0\r\n\r\n", False, b"HTTP/1.1 400 "),
        (CHUNKED + b"3\r\nabc\r\n", True, b"HTTP/1.1 400 "),
        (CHUNKED + b"3\r\nabc\r\n0\r\n", True, b"HTTP/1.1 400 "),
        (HEAD + b"Content-Length: -3\r\n\r\n", False, b"HTTP/1.1 400 "),
        (HEAD + b"Content-Length: 10\r\n\r\nabc", True, b"HTTP/1.1 400 "),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", False, b"HTTP/1.1 501 "),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", False, b"HTTP/1.1 414 "),
    ],
)
def test_malformed_framing_is_refused(
    fake: FakeCriteo, request_bytes: bytes, half_close: bool, status_line: bytes
) -> None:
    answer = raw_exchange(fake, request_bytes, half_close=half_close)
    assert answer.startswith(status_line)
    assert b"\r\nConnection: close\r\n" in answer


def test_chunk_extensions_trailers_and_pipelining(fake: FakeCriteo) -> None:
    token = get_token_raw(fake)
    auth = f"Authorization: Bearer {token}\r\n".encode()
    first = CHUNKED.replace(b"\r\n\r\n", b"\r\n" + auth + b"\r\n")
    first += b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n"
    second = b"GET /2025-10/y HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(fake, first + second)
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b'"bodyLength":5' in answer
    assert hashlib.sha256(b"abcde").hexdigest().encode() in answer
    assert [r.body for r in fake.api_calls()] == [b"abcde", b""]


def test_chunked_body_over_10_mib_is_413(fake: FakeCriteo, session: requests.Session) -> None:
    chunks = (b"\0" * (1024 * 1024) for _ in range(11))
    response = session.post(f"{fake.url}/{V}/x", data=chunks, timeout=5)
    assert response.status_code == 413
    assert fake.api_calls()[0].body == b""


def test_repeated_form_fields_are_refused(fake: FakeCriteo, session: requests.Session) -> None:
    form = [*GOOD_FORM.items(), ("grant_type", "client_credentials")]
    response = session.post(fake.token_url, data=form, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "grant_type" in response.json()["error_description"]


def test_no_content_and_connection_close_answers(
    fake: FakeCriteo, session: requests.Session
) -> None:
    fake.set_response(f"/{V}/empty", status=204, body="dropped", authorize=False)
    fake.set_response(f"/{V}/bye", json=[], headers={"Connection": "close"}, authorize=False)
    empty = session.delete(f"{fake.url}/{V}/empty", timeout=5)
    assert empty.status_code == 204
    assert empty.content == b""
    assert "Content-Length" not in empty.headers
    bye = session.get(f"{fake.url}/{V}/bye", timeout=5)
    assert bye.json() == []
    assert bye.headers["Connection"] == "close"


def test_a_bug_in_the_fake_answers_500(fake: FakeCriteo, session: requests.Session) -> None:
    token = get_token(session, fake)

    def broken_clock() -> float:
        raise ZeroDivisionError("clock broke")

    fake.timer = broken_clock
    response = session.get(f"{fake.url}/{V}/x", headers=bearer(token), timeout=5)
    assert response.status_code == 500
    assert "ZeroDivisionError: clock broke" in response.json()["errors"][0]["detail"]


# -- fault injection ---------------------------------------------------------------------------


def test_fault_with_status_body_and_headers(fake: FakeCriteo, session: requests.Session) -> None:
    fake.inject_token_fault(
        503, body='{"error": "temporarily_unavailable"}', headers={"Retry-After": "3"}
    )
    faulted = session.post(fake.token_url, data=GOOD_FORM, timeout=5)
    assert faulted.status_code == 503
    assert faulted.json() == {"error": "temporarily_unavailable"}
    assert faulted.headers["Retry-After"] == "3"
    assert faulted.headers["Content-Type"] == "application/json"

    assert session.post(fake.token_url, data=GOOD_FORM, timeout=5).status_code == 200
    assert fake.token_requests == 2
    assert fake.tokens_issued == 1


def test_fault_drop_gives_connection_error(fake: FakeCriteo, session: requests.Session) -> None:
    fake.inject_token_fault(drop=True)
    with pytest.raises(requests.ConnectionError):
        session.post(fake.token_url, data=GOOD_FORM, timeout=5)
    assert fake.token_requests == 1
    assert fake.token_endpoint_requests()[0].form == GOOD_FORM  # the request was read
    assert session.post(fake.token_url, data=GOOD_FORM, timeout=5).status_code == 200
    assert fake.tokens_issued == 1


def test_fault_times_and_fifo_order(fake: FakeCriteo, session: requests.Session) -> None:
    fake.inject_token_fault(500, times=2)
    fake.inject_token_fault(429, body="slow down")
    statuses = [session.post(fake.token_url, data=GOOD_FORM, timeout=5) for _ in range(4)]
    assert [r.status_code for r in statuses] == [500, 500, 429, 200]
    assert statuses[0].content == b""
    assert statuses[2].text == "slow down"
    assert fake.token_requests == 4
    assert fake.tokens_issued == 1

    fake.inject_token_fault(500, times=3)
    fake.clear_token_faults()
    assert session.post(fake.token_url, data=GOOD_FORM, timeout=5).status_code == 200


def test_fault_delay_then_real_answer(fake: FakeCriteo, session: requests.Session) -> None:
    fake.inject_token_fault(delay=0.1)
    started = time.monotonic()
    response = session.post(fake.token_url, data=GOOD_FORM, timeout=5)
    assert time.monotonic() - started >= 0.1
    assert response.status_code == 200

    fake.inject_token_fault(delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        session.post(fake.token_url, data=GOOD_FORM, timeout=0.05)


def test_fault_arguments_are_checked(fake: FakeCriteo) -> None:
    with pytest.raises(ValueError, match="times"):
        fake.inject_token_fault(500, times=0)
    with pytest.raises(ValueError, match="status"):
        fake.inject_token_fault(body="x")
    with pytest.raises(ValueError, match="delay"):
        fake.inject_token_fault(delay=-1)
    with pytest.raises(ValueError, match="status"):
        fake.inject_token_fault(99)


def test_stop_is_prompt_with_a_request_in_flight(clock: FakeClock) -> None:
    fake = FakeCriteo(timer=clock).start()
    fake.inject_token_fault(delay=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with requests.Session() as session:
                session.trust_env = False
                session.post(fake.token_url, data=GOOD_FORM, timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while fake.token_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    fake.stop()
    fake.stop()  # idempotent
    assert time.monotonic() - started < 1
    caller.join(5)
    assert not caller.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], requests.ConnectionError)


# -- canned answers ----------------------------------------------------------------------------


def test_canned_403_and_429(fake: FakeCriteo, session: requests.Session) -> None:
    token = get_token(session, fake)
    fake.set_response(
        f"/{V}/retail-media/accounts",
        status=403,
        json={"errors": [{"code": "insufficient-advertisers-permissions"}]},
    )
    fake.set_response(
        f"/{V}/statistics/report",
        status=429,
        body="",
        headers={
            "x-ratelimit-limit": "40",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1628249355",
        },
        method="POST",
    )

    forbidden = session.get(f"{fake.url}/{V}/retail-media/accounts?x=1", headers=bearer(token))
    assert forbidden.status_code == 403
    assert forbidden.headers["Content-Type"] == "application/json"
    assert forbidden.json()["errors"][0]["code"] == "insufficient-advertisers-permissions"

    limited = session.post(f"{fake.url}/{V}/statistics/report", headers=bearer(token), timeout=5)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-reset"] == "1628249355"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    # another method on the same path is not canned: echo
    echoed = session.get(f"{fake.url}/{V}/statistics/report", headers=bearer(token), timeout=5)
    assert echoed.json()["data"]["type"] == "Echo"

    # authorize=True (the default): the 401 check still runs first
    assert_invalid(
        session.get(f"{fake.url}/{V}/retail-media/accounts", timeout=5),
        f"/{V}/retail-media/accounts",
    )

    fake.clear_responses()
    cleared = session.get(f"{fake.url}/{V}/retail-media/accounts", headers=bearer(token), timeout=5)
    assert cleared.json()["data"]["type"] == "Echo"


def test_canned_without_authorization(fake: FakeCriteo, session: requests.Session) -> None:
    fake.set_response("/health", json={"ok": True}, authorize=False)
    fake.set_response(f"/{V}/open", status=202, body=b"accepted", authorize=False, method="put")
    assert session.get(f"{fake.url}/health", timeout=5).json() == {"ok": True}
    response = session.put(f"{fake.url}/{V}/open", timeout=5)
    assert response.status_code == 202
    assert response.text == "accepted"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"

    with pytest.raises(ValueError, match="inject_token_fault"):
        fake.set_response("/oauth2/token", status=500)
    with pytest.raises(ValueError, match="json or body"):
        fake.set_response("/x", json={}, body="x")
    with pytest.raises(ValueError, match="start with"):
        fake.set_response("health")

    fake.set_response("/framing", body="abc", headers={"Content-Length": "999"}, authorize=False)
    framed = session.get(f"{fake.url}/framing?q=1", timeout=5)
    assert framed.headers["Content-Length"] == "3"
    assert framed.text == "abc"


def test_canned_redirect_on_the_same_server(fake: FakeCriteo, session: requests.Session) -> None:
    token = get_token(session, fake)
    fake.set_response(
        f"/{V}/retail-media/old",
        status=307,
        headers={"Location": f"{fake.url}/{V}/retail-media/me"},
    )
    response = session.get(f"{fake.url}/{V}/retail-media/old", headers=bearer(token), timeout=5)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [307]
    assert response.json()["data"]["id"] == FakeCriteo.CLIENT_ID
    assert [c.path for c in fake.api_calls()] == [f"/{V}/retail-media/old", f"/{V}/retail-media/me"]


def test_canned_redirect_to_another_server(
    fake: FakeCriteo, clock: FakeClock, session: requests.Session
) -> None:
    token = get_token(session, fake)
    with FakeCriteo(timer=clock) as other:
        fake.set_response(
            f"/{V}/retail-media/moved",
            status=302,
            headers={"Location": f"{other.url}/{V}/retail-media/me"},
        )
        response = session.get(
            f"{fake.url}/{V}/retail-media/moved", headers=bearer(token), timeout=5
        )
        # requests drops the Authorization header when the origin changes
        assert_invalid(response, f"/{V}/retail-media/me")
        assert other.api_calls()[0].bearer is None
        assert other.api_requests == 1
        assert fake.api_requests == 1


# -- counters, log, repr, lifecycle ------------------------------------------------------------


def test_counters_and_reset(fake: FakeCriteo, session: requests.Session) -> None:
    token = get_token(session, fake)
    session.post(fake.token_url, data={**GOOD_FORM, "client_secret": "bad"}, timeout=5)
    session.get(f"{fake.url}/{V}/retail-media/me", headers=bearer(token), timeout=5)
    session.get(f"{fake.url}/{V}/retail-media/me", timeout=5)
    session.get(f"{fake.url}/nowhere", timeout=5)

    assert (fake.token_requests, fake.tokens_issued, fake.api_requests) == (2, 1, 3)
    assert [r.method for r in fake.requests] == ["POST", "POST", "GET", "GET", "GET"]
    assert len(fake.token_endpoint_requests()) == 2
    assert [r.path for r in fake.api_calls()][-1] == "/nowhere"

    log = fake.requests
    fake.reset_counters()
    assert (fake.token_requests, fake.tokens_issued, fake.api_requests) == (0, 0, 0)
    assert log == []
    assert fake.requests is log
    # tokens survive a counter reset
    assert session.get(f"{fake.url}/{V}/retail-media/me", headers=bearer(token), timeout=5).ok
    assert fake.api_requests == 1


def test_reprs_hold_no_secret_or_token(clock: FakeClock, session: requests.Session) -> None:
    secret = "SENTINEL-SECRET+/="
    with FakeCriteo(clients={"sentinel-app": secret}, timer=clock) as fake:
        token = get_token(session, fake, client_id="sentinel-app", client_secret=secret)
        session.post(
            fake.token_url,
            data={
                **GOOD_FORM,
                "client_secret": secret,
                "code": "SENTINEL-CODE",
                "refresh_token": "SENTINEL-REFRESH",
            },
            headers={"Authorization": "Basic SENTINEL-BASIC"},
            timeout=5,
        )
        session.post(
            f"{fake.url}/{V}/retail-media/me",
            data=b"SENTINEL-BODY",
            headers=bearer(token),
            timeout=5,
        )

        texts = [repr(r) for r in fake.requests] + [str(fake.requests), repr(fake), str(fake)]
        for text in texts:
            for sentinel in (secret, token, "SENTINEL"):
                assert sentinel not in text
        token_repr, second_repr, api_repr = (repr(r) for r in fake.requests)
        assert "'client_secret': '[secure]'" in token_repr
        assert "'client_id': 'sentinel-app'" in token_repr
        assert "'code': '[secure]'" in second_repr
        assert "'refresh_token': '[secure]'" in second_repr
        assert "'Authorization': '[secure]'" in second_repr
        assert "'Authorization': '[secure]'" in api_repr
        assert "bearer='[secure]'" in api_repr
        assert "body=<13 bytes>" in api_repr
        assert repr(fake) == (
            f"FakeCriteo(url={fake.url!r}, token_requests=2, tokens_issued=1, api_requests=1)"
        )
        # the raw values are still there for assertions
        assert fake.requests[2].bearer == token
        assert fake.requests[0].form["client_secret"] == secret


def test_seen_request_is_frozen() -> None:
    seen = SeenRequest("GET", "/x", {"Authorization": "Bearer t"}, b"", {}, "t")
    with pytest.raises(AttributeError):
        seen.path = "/y"  # type: ignore[misc]
    assert seen.header("AUTHORIZATION") == "Bearer t"
    assert seen.header("missing") is None


def test_lifecycle(clock: FakeClock) -> None:
    fake = FakeCriteo(timer=clock)
    assert repr(fake) == "FakeCriteo(url=None, token_requests=0, tokens_issued=0, api_requests=0)"
    with pytest.raises(RuntimeError):
        _ = fake.url
    assert fake.start() is fake
    assert fake.start() is fake  # already running: same server
    url = fake.url
    assert url.startswith("http://127.0.0.1:")
    assert fake.token_url == url + "/oauth2/token"
    port = int(url.rsplit(":", 1)[1])
    fake.stop()
    fake.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


# -- authorization code, refresh tokens and consent --------------------------------------------

REDIRECT = "https://app.example/criteo/callback"
CLIENT = {"client_id": FakeCriteo.CLIENT_ID, "client_secret": FakeCriteo.CLIENT_SECRET}
# RFC 7636, appendix B: a known answer, so the fake's S256 is checked independently.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PLAIN_VERIFIER = "plain-verifier-" + "x" * 40
BAD_REFRESH = "The refresh token is invalid or was already used"


def exchange(
    session: requests.Session,
    fake: FakeCriteo,
    code: str,
    redirect_uri: str = REDIRECT,
    **form: str,
) -> requests.Response:
    data = {**CLIENT, "grant_type": "authorization_code", "code": code}
    data["redirect_uri"] = redirect_uri
    return session.post(fake.token_url, data={**data, **form}, timeout=5)


def refresh(
    session: requests.Session, fake: FakeCriteo, refresh_token: str, **form: str
) -> requests.Response:
    data = {**CLIENT, "grant_type": "refresh_token", "refresh_token": refresh_token, **form}
    return session.post(fake.token_url, data=data, timeout=5)


def granted(response: requests.Response) -> tuple[str, str]:
    """Check a code or refresh answer; return its access and refresh tokens."""
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert type(body["expires_in"]) is int
    access, refresh_token = body["access_token"], body["refresh_token"]
    assert isinstance(access, str)
    assert isinstance(refresh_token, str)
    assert len(refresh_token) >= 32
    assert refresh_token != access
    return access, refresh_token


def assert_oauth_error(
    response: requests.Response, error: str, description: str | None = None
) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description
    text = body["error_description"]
    assert isinstance(text, str)
    return text


def me(session: requests.Session, fake: FakeCriteo, token: str) -> requests.Response:
    return session.get(f"{fake.url}/{V}/retail-media/me", headers=bearer(token), timeout=5)


def test_code_exchange_without_pkce(fake: FakeCriteo, session: requests.Session) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    assert code != fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)

    access, _ = granted(exchange(session, fake, code))

    assert me(session, fake, access).json()["data"]["id"] == FakeCriteo.CLIENT_ID
    claims = b64url_json(access.split(".")[1])
    assert isinstance(claims, dict)
    assert claims["client_id"] == FakeCriteo.CLIENT_ID
    assert (fake.codes_issued, fake.code_exchanges, fake.refreshes) == (2, 1, 0)
    assert (fake.token_requests, fake.tokens_issued, fake.refresh_token_reuses) == (1, 1, 0)


@pytest.mark.parametrize(
    ("method", "challenge", "verifier"),
    [("S256", RFC_CHALLENGE, RFC_VERIFIER), ("plain", PLAIN_VERIFIER, PLAIN_VERIFIER)],
)
def test_code_exchange_with_pkce(
    fake: FakeCriteo, session: requests.Session, method: str, challenge: str, verifier: str
) -> None:
    code = fake.issue_code(
        FakeCriteo.CLIENT_ID, REDIRECT, code_challenge=challenge, code_challenge_method=method
    )
    access, _ = granted(exchange(session, fake, code, code_verifier=verifier))
    assert me(session, fake, access).ok
    assert fake.code_exchanges == 1


def test_code_is_single_use(fake: FakeCriteo, session: requests.Session) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    access, _ = granted(exchange(session, fake, code))

    second = exchange(session, fake, code)
    assert_oauth_error(second, "invalid_grant")
    assert code not in second.text
    assert_oauth_error(exchange(session, fake, "never-issued"), "invalid_grant")

    assert me(session, fake, access).ok  # the reuse does not touch the first grant
    assert (fake.code_exchanges, fake.tokens_issued, fake.token_requests) == (1, 1, 3)


@pytest.mark.parametrize(
    "other_uri",
    [REDIRECT + "/", REDIRECT.upper(), REDIRECT + "?x=1", "https://evil.example/criteo/callback"],
)
def test_wrong_redirect_uri_is_invalid_grant_and_spends_the_code(
    fake: FakeCriteo, session: requests.Session, other_uri: str
) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    assert "redirect_uri" in assert_oauth_error(
        exchange(session, fake, code, other_uri), "invalid_grant"
    )
    # a failed attempt by its own client spends the code: never retry a code exchange
    assert_oauth_error(exchange(session, fake, code), "invalid_grant")
    assert (fake.code_exchanges, fake.tokens_issued) == (0, 0)


@pytest.mark.parametrize(
    ("challenge", "method", "verifier"),
    [
        (RFC_CHALLENGE, "S256", None),  # missing
        (RFC_CHALLENGE, "S256", RFC_VERIFIER[:-1] + "Y"),  # wrong
        (RFC_CHALLENGE, "S256", RFC_CHALLENGE),  # the challenge sent instead of the verifier
        (PLAIN_VERIFIER, "plain", PLAIN_VERIFIER + "x"),
        (None, "S256", RFC_VERIFIER),  # a verifier for a code issued without PKCE
    ],
)
def test_wrong_or_missing_verifier_is_invalid_grant(
    fake: FakeCriteo,
    session: requests.Session,
    challenge: str | None,
    method: str,
    verifier: str | None,
) -> None:
    code = fake.issue_code(
        FakeCriteo.CLIENT_ID, REDIRECT, code_challenge=challenge, code_challenge_method=method
    )
    form = {} if verifier is None else {"code_verifier": verifier}
    response = exchange(session, fake, code, **form)
    assert "code_verifier" in assert_oauth_error(response, "invalid_grant")
    assert (fake.code_exchanges, fake.tokens_issued) == (0, 0)


def test_code_of_another_client_is_invalid_grant(
    fake: FakeCriteo, session: requests.Session
) -> None:
    fake.add_client("app-2", "second+secret")
    code = fake.issue_code("app-2", REDIRECT)

    assert_oauth_error(exchange(session, fake, code), "invalid_grant")
    assert fake.tokens_issued == 0

    # another client's attempt does not spend it: its own client can still exchange it
    response = exchange(session, fake, code, client_id="app-2", client_secret="second+secret")
    access, _ = granted(response)
    assert me(session, fake, access).json()["data"]["id"] == "app-2"


@pytest.mark.parametrize(
    ("grant_type", "form", "missing"),
    [
        ("authorization_code", {"redirect_uri": REDIRECT}, "code"),
        ("authorization_code", {"code": "", "redirect_uri": REDIRECT}, "code"),
        ("authorization_code", {"code": "some-code"}, "redirect_uri"),
        ("authorization_code", {}, "code, redirect_uri"),
        ("refresh_token", {}, "refresh_token"),
        ("refresh_token", {"refresh_token": ""}, "refresh_token"),
    ],
)
def test_missing_grant_fields_are_invalid_request(
    fake: FakeCriteo,
    session: requests.Session,
    grant_type: str,
    form: dict[str, str],
    missing: str,
) -> None:
    data = {**CLIENT, "grant_type": grant_type, **form}
    response = session.post(fake.token_url, data=data, timeout=5)
    assert_oauth_error(response, "invalid_request", f"Missing parameter(s): {missing}")
    assert fake.tokens_issued == 0


def test_invalid_client_is_checked_before_the_grant(
    fake: FakeCriteo, session: requests.Session
) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT, code_challenge=RFC_CHALLENGE)
    bad = {"client_secret": "wrong"}

    for response in (
        exchange(session, fake, code, code_verifier=RFC_VERIFIER, **bad),
        exchange(session, fake, code, "https://elsewhere.example/", **bad),  # wrong grant too
        session.post(
            fake.token_url, data={**CLIENT, **bad, "grant_type": "authorization_code"}, timeout=5
        ),
        refresh(session, fake, "whatever", **bad),
        refresh(session, fake, "whatever", client_id="nobody"),
    ):
        assert_oauth_error(response, "invalid_client", None)

    # nothing was spent by the refused requests
    _, refresh_token = granted(exchange(session, fake, code, code_verifier=RFC_VERIFIER))
    assert_oauth_error(refresh(session, fake, refresh_token, **bad), "invalid_client")
    granted(refresh(session, fake, refresh_token))
    assert fake.refresh_token_reuses == 0
    assert (fake.token_requests, fake.tokens_issued) == (8, 2)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("nobody", REDIRECT), {}),
        ((FakeCriteo.CLIENT_ID, REDIRECT), {"code_challenge_method": "S512"}),
        ((FakeCriteo.CLIENT_ID, REDIRECT), {"code_challenge_method": "s256"}),
        ((FakeCriteo.CLIENT_ID, REDIRECT), {"code_challenge": RFC_CHALLENGE + "="}),
        ((FakeCriteo.CLIENT_ID, REDIRECT), {"code_challenge": "too-short"}),
        ((FakeCriteo.CLIENT_ID, REDIRECT), {"code_challenge": ""}),
        (
            (FakeCriteo.CLIENT_ID, REDIRECT),
            {"code_challenge": "x" * 129, "code_challenge_method": "plain"},
        ),
        ((FakeCriteo.CLIENT_ID, "/callback"), {}),
        ((FakeCriteo.CLIENT_ID, "ftp://app.example/cb"), {}),
        ((FakeCriteo.CLIENT_ID, REDIRECT + "#top"), {}),
        ((FakeCriteo.CLIENT_ID, ""), {}),
    ],
)
def test_issue_code_checks_its_arguments(
    fake: FakeCriteo, args: tuple[str, str], kwargs: dict[str, str]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        fake.issue_code(*args, **kwargs)
    assert fake.codes_issued == 0


def consent_url(**params: str) -> str:
    query = {"response_type": "code", "client_id": FakeCriteo.CLIENT_ID, "redirect_uri": REDIRECT}
    query.update(params)
    return f"{FakeCriteo.CONSENT_URL}?{urlencode(query)}"


def test_consent_redirect_round_trip_with_state(
    fake: FakeCriteo, session: requests.Session
) -> None:
    state = "opaque state/+=&?é"
    url = consent_url(
        state=state, code_challenge=RFC_CHALLENGE, code_challenge_method="S256", scope="ignored"
    )
    assert url.startswith("https://consent.criteo.com/request?response_type=code&client_id=")

    redirected = fake.consent_redirect(url)

    parts = urlsplit(redirected)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT
    assert not parts.fragment
    query = parse_qs(parts.query, strict_parsing=True)
    assert set(query) == {"code", "state"}
    assert query["state"] == [state]
    assert redirected.index("code=") < redirected.index("state=")
    code = query["code"][0]

    assert_oauth_error(exchange(session, fake, code), "invalid_grant")  # PKCE is required
    code = parse_qs(urlsplit(fake.consent_redirect(url)).query)["code"][0]
    access, _ = granted(exchange(session, fake, code, code_verifier=RFC_VERIFIER))
    assert me(session, fake, access).ok
    assert (fake.codes_issued, fake.code_exchanges) == (2, 1)


def test_consent_redirect_without_state_keeps_the_callback_query(
    fake: FakeCriteo, session: requests.Session
) -> None:
    callback = "http://127.0.0.1:8765/cb?tenant=a%20b"
    redirected = fake.consent_redirect(consent_url(redirect_uri=callback))
    assert redirected.startswith("http://127.0.0.1:8765/cb?tenant=a%20b&code=")
    query = parse_qs(urlsplit(redirected).query)
    assert set(query) == {"tenant", "code"}
    granted(exchange(session, fake, query["code"][0], callback))

    # a challenge without a method is "plain" (RFC 7636, 4.3)
    redirected = fake.consent_redirect(consent_url(code_challenge=PLAIN_VERIFIER, state=""))
    query = parse_qs(urlsplit(redirected).query, keep_blank_values=True)
    assert query["state"] == [""]
    granted(exchange(session, fake, query["code"][0], code_verifier=PLAIN_VERIFIER))


@pytest.mark.parametrize(
    "url",
    [
        consent_url(response_type="token"),
        consent_url(response_type=""),
        consent_url().replace("response_type=code&", ""),
        consent_url(client_id="nobody"),
        consent_url(client_id=""),
        consent_url().replace("&redirect_uri=", "&other="),
        consent_url(redirect_uri="callback"),
        consent_url(code_challenge_method="S256"),
        consent_url(code_challenge=RFC_CHALLENGE, code_challenge_method="S512"),
        consent_url(code_challenge="short", code_challenge_method="S256"),
        consent_url() + "&state=a&state=b",
        consent_url() + "&&",
        consent_url() + "&novalue",
        consent_url() + "#fragment",
        consent_url() + "&state=%ff",
        consent_url().replace("https://", "http://"),
        consent_url().replace("consent.criteo.com", "consent.criteo.com.evil.example"),
        consent_url().replace("consent.criteo.com", "consent.criteo.com:8443"),
        consent_url().replace("consent.criteo.com", "user@consent.criteo.com"),
        consent_url().replace("/request?", "/other?"),
        "https://[consent.criteo.com/request?response_type=code",
        FakeCriteo.CONSENT_URL,
        "not a url",
    ],
)
def test_consent_redirect_refuses_malformed_urls(fake: FakeCriteo, url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        fake.consent_redirect(url)
    assert fake.codes_issued == 0


def test_refresh_rotates_the_refresh_token(
    fake: FakeCriteo, session: requests.Session, clock: FakeClock
) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    first_access, current = granted(exchange(session, fake, code))
    seen_refresh = [current]
    seen_access = [first_access]

    clock.advance(900)  # access tokens expire; refresh tokens do not
    assert_expired(me(session, fake, first_access), f"/{V}/retail-media/me")
    for _ in range(3):
        access, current = granted(refresh(session, fake, current))
        assert current not in seen_refresh
        assert access not in seen_access
        seen_refresh.append(current)
        seen_access.append(access)
        assert me(session, fake, access).json()["data"]["id"] == FakeCriteo.CLIENT_ID
    assert me(session, fake, seen_access[1]).ok  # a new token does not revoke older ones

    for old in seen_refresh[:-1]:
        reuse = refresh(session, fake, old)
        assert_oauth_error(reuse, "invalid_grant", BAD_REFRESH)
        assert old not in reuse.text
    assert fake.refresh_token_reuses == 3
    granted(refresh(session, fake, current))  # the reuses broke nothing for the newest one
    assert (fake.refreshes, fake.code_exchanges, fake.tokens_issued) == (4, 1, 5)


def test_unknown_or_foreign_refresh_tokens(fake: FakeCriteo, session: requests.Session) -> None:
    fake.add_client("app-2", "second+secret")
    other = {"client_id": "app-2", "client_secret": "second+secret"}
    code = fake.issue_code("app-2", REDIRECT)
    _, foreign = granted(exchange(session, fake, code, **other))

    assert_oauth_error(refresh(session, fake, "never-issued"), "invalid_grant", BAD_REFRESH)
    assert_oauth_error(refresh(session, fake, foreign), "invalid_grant", BAD_REFRESH)
    # an access token is not a refresh token either
    access = get_token(session, fake)
    assert_oauth_error(refresh(session, fake, access), "invalid_grant", BAD_REFRESH)

    granted(refresh(session, fake, foreign, **other))  # untouched by the foreign attempt
    assert fake.refresh_token_reuses == 0
    assert fake.refreshes == 1


def test_concurrent_refreshes_with_one_refresh_token(fake: FakeCriteo) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    with requests.Session() as setup:
        setup.trust_env = False
        _, refresh_token = granted(exchange(setup, fake, code))
    threads = 8
    barrier = threading.Barrier(threads)

    def one() -> int:
        with requests.Session() as own:
            own.trust_env = False
            barrier.wait(5)
            return refresh(own, fake, refresh_token).status_code

    with ThreadPoolExecutor(threads) as pool:
        statuses = sorted(pool.map(lambda _: one(), range(threads)))

    assert statuses == [200] + [400] * (threads - 1)
    assert fake.refreshes == 1
    assert fake.refresh_token_reuses == threads - 1


def test_revoke_consent(fake: FakeCriteo, session: requests.Session) -> None:
    fake.add_client("app-2", "second+secret")
    other = {"client_id": "app-2", "client_secret": "second+secret"}
    from_code, rt = granted(
        exchange(session, fake, fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT))
    )
    from_refresh, rt = granted(refresh(session, fake, rt))
    pending = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    machine = get_token(session, fake)  # client credentials: no consent involved
    other_access, other_rt = granted(
        exchange(session, fake, fake.issue_code("app-2", REDIRECT), **other)
    )

    fake.revoke_consent(FakeCriteo.CLIENT_ID)

    assert_oauth_error(refresh(session, fake, rt), "invalid_grant", BAD_REFRESH)
    for token in (from_code, from_refresh):
        assert_expired(me(session, fake, token), f"/{V}/retail-media/me")
    assert_oauth_error(exchange(session, fake, pending), "invalid_grant")
    assert me(session, fake, machine).ok
    assert me(session, fake, other_access).ok
    other_access, other_rt = granted(refresh(session, fake, other_rt, **other))
    assert fake.refresh_token_reuses == 0

    # a new consent works again
    _, new_rt = granted(exchange(session, fake, fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)))

    fake.revoke_consent()  # every client
    assert_oauth_error(refresh(session, fake, new_rt), "invalid_grant")
    assert_oauth_error(refresh(session, fake, other_rt, **other), "invalid_grant")
    assert_expired(me(session, fake, other_access), f"/{V}/retail-media/me")
    assert me(session, fake, machine).ok

    with pytest.raises(ValueError, match="unknown client_id"):
        fake.revoke_consent("nobody")


def test_grant_counters_and_reset(fake: FakeCriteo, session: requests.Session) -> None:
    code = fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    fake.issue_code(FakeCriteo.CLIENT_ID, REDIRECT)
    _, rt = granted(exchange(session, fake, code))
    assert_oauth_error(exchange(session, fake, code), "invalid_grant")
    _, new_rt = granted(refresh(session, fake, rt))
    assert_oauth_error(refresh(session, fake, rt), "invalid_grant")
    get_token(session, fake)
    fake.inject_token_fault(503)
    session.post(fake.token_url, data=GOOD_FORM, timeout=5)

    assert (fake.codes_issued, fake.code_exchanges, fake.refreshes) == (2, 1, 1)
    assert fake.refresh_token_reuses == 1
    assert (fake.token_requests, fake.tokens_issued) == (6, 3)

    fake.reset_counters()
    assert (fake.codes_issued, fake.code_exchanges, fake.refreshes) == (0, 0, 0)
    assert (fake.refresh_token_reuses, fake.token_requests, fake.tokens_issued) == (0, 0, 0)
    granted(refresh(session, fake, new_rt))  # grants survive a counter reset
    assert (fake.refreshes, fake.tokens_issued, fake.token_requests) == (1, 1, 1)


def test_reprs_hold_no_code_or_refresh_token(clock: FakeClock, session: requests.Session) -> None:
    secret = "SENTINEL-SECRET+/="
    verifier = "SENTINEL-VERIFIER-" + "v" * 30
    with FakeCriteo(clients={"sentinel-app": secret}, timer=clock) as fake:
        client = {"client_id": "sentinel-app", "client_secret": secret}
        code = fake.issue_code(
            "sentinel-app", REDIRECT, code_challenge=verifier, code_challenge_method="plain"
        )
        access, rt = granted(exchange(session, fake, code, code_verifier=verifier, **client))
        access2, rt2 = granted(refresh(session, fake, rt, **client))
        assert_oauth_error(refresh(session, fake, rt, **client), "invalid_grant")
        redirected = fake.consent_redirect(
            consent_url(client_id="sentinel-app", state="SENTINEL-STATE")
        )
        code2 = parse_qs(urlsplit(redirected).query)["code"][0]

        sentinels = (secret, verifier, "SENTINEL", code, code2, access, rt, access2, rt2)
        texts = [repr(r) for r in fake.requests] + [str(fake.requests), repr(fake), str(fake)]
        for text in texts:
            for sentinel in sentinels:
                assert sentinel not in text
        exchange_repr, refresh_repr, _ = (repr(r) for r in fake.requests)
        assert "'code': '[secure]'" in exchange_repr
        assert "'code_verifier': '[secure]'" in exchange_repr
        assert f"'redirect_uri': {REDIRECT!r}" in exchange_repr
        assert "'refresh_token': '[secure]'" in refresh_repr
        assert repr(fake) == (
            f"FakeCriteo(url={fake.url!r}, token_requests=3, tokens_issued=2, api_requests=0)"
        )
        assert fake.requests[0].form["code"] == code  # the raw values stay available
