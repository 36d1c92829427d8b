"""The token request and the checks on its answer, against the real https URL (responses).

Where a test needs a server of its own (a retry wait measured against the deadline), it is
FakeCriteo on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from oauthlib.oauth2 import BackendApplicationClient
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from requests_criteo import (
    USER_AGENT,
    CriteoAuth,
    CriteoAuthError,
    CriteoRetry,
    InvalidTokenResponse,
    TokenCache,
    TokenRequestError,
)
from requests_criteo._answer import MAX_TOKEN_BODY, judge
from requests_criteo._cache import Token
from requests_criteo._token import TokenEndpoint
from requests_criteo._token_request import TokenRequest
from requests_criteo._transport import RequestsTransport
from requests_criteo.testing import FakeCriteo

from .conftest import (
    CLIENT_ID,
    ME,
    SECRET,
    TOKEN,
    TOKEN_URL,
    FakeClock,
    Sleeps,
    assert_no_secret,
    token_json,
)


def fetch(auth: CriteoAuth) -> str:
    return auth.token().access_token


def test_the_token_request(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json=token_json())
    assert fetch(auth) == TOKEN
    request = mocked.calls[0].request
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert "Authorization" not in request.headers
    assert isinstance(request.body, str)
    # The + and / of the secret are percent-encoded: a raw + would arrive as a space.
    assert "%2B" in request.body and "+" not in request.body
    assert dict(parse_qsl(request.body)) == {
        "grant_type": "client_credentials",
        "client_id": "client-1",
        "client_secret": SECRET,
    }


def test_netrc_is_never_read(
    mocked: responses.RequestsMock,
    auth: CriteoAuth,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.criteo.com login netrc-user password netrc-SENTINEL\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    # Plain requests does use it: the check below would catch a regression.
    mocked.get("https://api.criteo.com/plain", body="")
    plain = requests.get("https://api.criteo.com/plain")
    assert "Authorization" in plain.request.headers
    mocked.post(TOKEN_URL, json=token_json())
    fetch(auth)
    assert "Authorization" not in mocked.calls[-1].request.headers


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_and_is_not_followed(
    mocked: responses.RequestsMock, auth: CriteoAuth, status: int
) -> None:
    mocked.post(TOKEN_URL, status=status, headers={"Location": "https://evil.example/steal"})
    evil = mocked.post("https://evil.example/steal", json=token_json())
    with pytest.raises(TokenRequestError, match="redirect") as info:
        fetch(auth)
    assert info.value.status_code == status
    assert evil.call_count == 0
    assert len(mocked.calls) == 1


def test_invalid_client_raises_at_once(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps
) -> None:
    mocked.post(
        TOKEN_URL,
        status=400,
        json={
            "error": "invalid_client",
            "error_description": "The client authentication failed, the provided client_id "
            "doesn't exist or the client_secret is invalid",
        },
    )
    with pytest.raises(TokenRequestError) as info:
        fetch(auth)
    exc = info.value
    assert (exc.status_code, exc.error) == (400, "invalid_client")
    assert (
        exc.error_description is not None
        and "client authentication failed" in exc.error_description
    )
    assert "HTTP 400 invalid_client" in str(exc)
    assert len(mocked.calls) == 1 and sleeps == []


def test_an_error_description_echoing_the_secret_is_redacted(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(
        TOKEN_URL,
        status=401,
        json={
            "error": "invalid_client",
            "error_description": f"bad secret {SECRET}" + "x" * 500,
            "errors": [{"traceId": "trace-123"}],
        },
    )
    with pytest.raises(TokenRequestError) as info:
        fetch(auth)
    assert_no_secret(str(info.value))
    assert_no_secret(str(info.value.error_description))
    assert info.value.trace_id == "trace-123"
    assert len(str(info.value)) < 400


def test_a_refusal_that_is_not_json(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, status=403, body="<html>nope</html>")
    with pytest.raises(TokenRequestError) as info:
        fetch(auth)
    assert info.value.status_code == 403 and info.value.error is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_failures_are_retried(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps, status: int
) -> None:
    mocked.post(TOKEN_URL, status=status)
    mocked.post(TOKEN_URL, status=status)
    mocked.post(TOKEN_URL, json=token_json())
    assert fetch(auth) == TOKEN
    assert len(mocked.calls) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff (jitter switched off here)


def test_x_ratelimit_reset_is_honoured(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps
) -> None:
    # The retry fixture's wall clock says 1_700_000_000.
    mocked.post(TOKEN_URL, status=429, headers={"x-ratelimit-reset": "1700000007"})
    mocked.post(TOKEN_URL, status=429, headers={"Retry-After": "3"})
    mocked.post(TOKEN_URL, status=429, headers={"x-ratelimit-reset": "1800000000"})
    mocked.post(TOKEN_URL, json=token_json())
    assert fetch(auth) == TOKEN
    assert sleeps == [7.0, 3.0, 60.0]  # the last one capped


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-reset": "garbage"},
        {"x-ratelimit-reset": "-5"},
        {"x-ratelimit-reset": "nan"},
        {"x-ratelimit-reset": "1e400"},
        {"Retry-After": "-3"},
        {"Retry-After": "Wed, 99 Foo 2015"},
        {"Retry-After": "99999999999999999999"},
    ],
)
def test_garbage_wait_headers_fall_back_to_bounded_backoff(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps, headers: dict[str, str]
) -> None:
    mocked.post(TOKEN_URL, status=429, headers=headers)
    mocked.post(TOKEN_URL, json=token_json())
    assert fetch(auth) == TOKEN
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 60


def test_retries_end_in_one_clear_error(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps
) -> None:
    mocked.post(TOKEN_URL, status=503)
    with pytest.raises(TokenRequestError, match="HTTP 503; gave up after 5 attempts") as info:
        fetch(auth)
    assert info.value.status_code == 503
    assert len(mocked.calls) == 5
    assert len(sleeps) == 4


def test_connection_errors_are_retried(
    mocked: responses.RequestsMock, auth: CriteoAuth, sleeps: Sleeps
) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("reset"))
    mocked.post(TOKEN_URL, body=requests.ConnectTimeout("slow"))
    mocked.post(TOKEN_URL, json=token_json())
    assert fetch(auth) == TOKEN
    assert len(sleeps) == 2


def test_connection_errors_give_up(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("reset"))
    with pytest.raises(TokenRequestError, match="then the connection failed"):
        fetch(auth)


def test_the_deadline_stops_the_retries(
    mocked: responses.RequestsMock, cache: TokenCache, sleeps: Sleeps
) -> None:
    retry = CriteoRetry(sleep=sleeps, backoff_jitter=0.0, backoff_factor=10)
    auth = CriteoAuth("client-1", SECRET, cache=cache, retry=retry, deadline=15)
    mocked.post(TOKEN_URL, status=503)
    with pytest.raises(TokenRequestError, match="deadline"):
        fetch(auth)
    assert sleeps == [10.0]  # the next wait (20 s) would pass the 15 s deadline


def test_a_retry_wait_ending_past_the_deadline_raises_token_request_error(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    monotonic = FakeClock(start=0.0)
    waits: list[float] = []

    def oversleep(seconds: float) -> None:  # a sleep always oversleeps a little
        waits.append(seconds)
        monotonic.advance(seconds + 0.0005)

    fake.inject_token_fault(503, body="{}", headers={"Retry-After": "9.9999"})
    request = TokenRequest(
        fake.token_url,
        timeout=(5.0, 15.0),
        deadline=10.0,
        retry=CriteoRetry(sleep=oversleep, backoff_jitter=0.0),
        clock=monotonic,
    )
    endpoint = TokenEndpoint(request, user_agent="requests-criteo-tests")
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


@pytest.mark.parametrize(
    ("body", "content_type", "match"),
    [
        ("<html><body>Gateway</body></html>", "text/html", "not JSON"),
        ("", "application/json", "empty"),
        ("[1, 2]", "application/json", "a JSON list"),
        ('"token"', "application/json", "a JSON str"),
        ("{}", "application/json", "without a usable access_token"),
        ('{"access_token": null}', "application/json", "without a usable access_token"),
        ('{"access_token": ""}', "application/json", "without a usable access_token"),
        ('{"access_token": 12345}', "application/json", "without a usable access_token"),
        ('{"access_token": "a", "token_type": "mac"}', "application/json", "other than Bearer"),
        ('{"access_token": "a", "token_type": 1}', "application/json", "other than Bearer"),
        ('{"access_token": "a", "refresh_token": 5}', "application/json", "refresh_token"),
        ('{"access_token": "a", "scope": 5}', "application/json", "refused by oauthlib"),
        (b"\xff\xfe", "application/json", "not JSON"),
    ],
)
def test_malformed_answers_are_typed_errors_and_cache_nothing(
    mocked: responses.RequestsMock,
    auth: CriteoAuth,
    cache: TokenCache,
    body: str | bytes,
    content_type: str,
    match: str,
) -> None:
    mocked.post(TOKEN_URL, body=body, content_type=content_type)
    with pytest.raises(InvalidTokenResponse, match=match):
        fetch(auth)
    assert len(cache) == 0


@pytest.mark.parametrize(
    "bad_token", ["tok\r\nX-Injected: 1", "tok en", "t\u00f6ken", "tok\x00", "tok\t"]
)
def test_a_token_that_cannot_be_a_header_is_refused_without_echo(
    mocked: responses.RequestsMock, auth: CriteoAuth, cache: TokenCache, bad_token: str
) -> None:
    mocked.post(TOKEN_URL, json=token_json(bad_token))
    with pytest.raises(InvalidTokenResponse, match="cannot go in an HTTP header") as info:
        fetch(auth)
    assert bad_token not in str(info.value)
    assert len(cache) == 0


def test_an_error_with_a_200_is_a_refusal(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(TOKEN_URL, json={"error": "invalid_client", "access_token": TOKEN})
    with pytest.raises(TokenRequestError) as info:
        fetch(auth)
    assert info.value.status_code == 200 and info.value.error == "invalid_client"


def test_a_huge_answer_is_not_read(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    huge = json.dumps(token_json(padding="x" * (2 * 1024 * 1024)))
    mocked.post(TOKEN_URL, body=huge, content_type="application/json")
    with pytest.raises(InvalidTokenResponse, match="more than"):
        fetch(auth)


def test_a_huge_answer_without_length_stops_at_the_cap(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    huge = json.dumps(token_json(padding="x" * (2 * 1024 * 1024))).encode()
    mocked.post(
        TOKEN_URL,
        body=huge,
        content_type="application/json",
        auto_calculate_content_length=False,
        headers={"Content-Length": "10"},
    )
    with pytest.raises(InvalidTokenResponse, match="larger than"):
        fetch(auth)


def test_an_invalid_content_length(mocked: responses.RequestsMock, auth: CriteoAuth) -> None:
    mocked.post(
        TOKEN_URL, body="{}", headers={"Content-Length": "ten"}, auto_calculate_content_length=False
    )
    with pytest.raises(InvalidTokenResponse, match="Content-Length"):
        fetch(auth)


@pytest.mark.parametrize(
    ("expires_in", "refresh_after"),
    [(900, 840), ("900", 840), (900.0, 840), (None, 240), ("NaN", 240), (30, 15), (1e12, 3540)],
)
def test_expires_in_sets_the_refresh_time(
    mocked: responses.RequestsMock,
    auth: CriteoAuth,
    clock: FakeClock,
    expires_in: object,
    refresh_after: float,
) -> None:
    answer = token_json(expires_in=expires_in)
    if expires_in is None:
        del answer["expires_in"]
    mocked.post(TOKEN_URL, json=answer)
    token = auth.token()
    assert token.refresh_at - clock() == pytest.approx(refresh_after)


def test_oauthlib_environment_switches_are_not_consulted(
    mocked: responses.RequestsMock, auth: CriteoAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_STRICT_TOKEN_TYPE", "1")
    mocked.post(TOKEN_URL, json={"access_token": TOKEN, "expires_in": 900})
    assert fetch(auth) == TOKEN
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ


def test_no_secret_in_any_log_record(
    mocked: responses.RequestsMock, auth: CriteoAuth, debug_logs: pytest.LogCaptureFixture
) -> None:
    mocked.post(TOKEN_URL, status=503)
    mocked.post(
        TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": SECRET}
    )
    with pytest.raises(TokenRequestError):
        fetch(auth)
    mocked.post(TOKEN_URL, json=token_json())
    mocked.get(ME, status=401)
    mocked.get(ME, json={})
    requests.get(ME, auth=auth)
    assert debug_logs.records, "expected log records to check"
    for record in debug_logs.records:
        assert_no_secret(record.getMessage())
        assert_no_secret(repr(record.args))


def test_retry_waits_are_logged_at_info(
    mocked: responses.RequestsMock, auth: CriteoAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="requests_criteo")
    mocked.post(TOKEN_URL, status=503)
    mocked.post(TOKEN_URL, json=token_json())
    fetch(auth)
    assert any(
        "attempt 2 in 0.50 s" in r.getMessage() and r.levelno == logging.INFO
        for r in caplog.records
    )


# -- any transport adapter ----------------------------------------------------------------------


class BytesAdapter(HTTPAdapter):
    """A transport whose answers carry an ``io.BytesIO`` as ``raw``, not urllib3's response.

    It answers each request with the next of *answers*, ``(status, body)``.
    """

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        super().__init__()
        self.answers = list(answers)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response


def test_the_answer_is_read_through_a_transport_whose_raw_is_not_urllib3s(
    cache: TokenCache, retry: CriteoRetry, sleeps: Sleeps
) -> None:
    answer = json.dumps(token_json()).encode()
    adapter = BytesAdapter((503, b'{"error": "temporarily_unavailable"}'), (200, answer))
    with requests.Session() as session:
        session.mount(TOKEN_URL, adapter)
        auth = CriteoAuth("client-1", SECRET, cache=cache, retry=retry, token_session=session)
        assert fetch(auth) == TOKEN
    assert adapter.answers == []
    assert sleeps == [0.5]  # the 503 was counted and backed off like urllib3's own


def test_a_huge_answer_through_any_transport_stops_at_the_cap(
    cache: TokenCache, retry: CriteoRetry
) -> None:
    huge = json.dumps(token_json(padding="x" * (4 * MAX_TOKEN_BODY))).encode()
    with requests.Session() as session:
        session.mount(TOKEN_URL, BytesAdapter((200, huge)))
        auth = CriteoAuth("client-1", SECRET, cache=cache, retry=retry, token_session=session)
        with pytest.raises(InvalidTokenResponse, match="larger than"):
            fetch(auth)
    assert len(cache) == 0


def test_the_requests_transport_builds_endpoints_and_pickles_without_its_session(
    retry: CriteoRetry,
) -> None:
    with requests.Session() as session:
        transport = RequestsTransport(session)
        endpoint = transport(TOKEN_URL, timeout=(2.0, 3.0), deadline=9.0, retry=retry)
        request = endpoint.request  # what the token requests are: carried by the endpoint
        assert (request.url, request.timeout, request.deadline) == (TOKEN_URL, (2.0, 3.0), 9.0)
        assert request.retry is retry
        assert endpoint.session is session
        assert endpoint.user_agent == USER_AGENT
        copy = pickle.loads(pickle.dumps(transport))
    assert isinstance(copy, RequestsTransport)
    assert copy.session is None  # a session belongs to the process that made it
    private = copy(TOKEN_URL, timeout=(2.0, 3.0), deadline=9.0, retry=retry)
    try:
        assert private.session is not session
        assert private.user_agent == USER_AGENT
    finally:
        private.session.close()


# -- the answer judged on bytes alone -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (json.dumps(token_json()).encode(), 200, Token),
        (b"<html>oops</html>", 200, InvalidTokenResponse),
        (b'{"error": "invalid_client"}', 200, TokenRequestError),
        (b'{"error": "invalid_client"}', 401, TokenRequestError),
        (b"", 302, TokenRequestError),
    ],
)
def test_judge_turns_bytes_and_a_status_into_a_token_or_an_error(
    body: bytes, status: int, kind: type
) -> None:
    outcome = judge(body, status, 5.0, [SECRET])
    assert type(outcome) is kind
    if isinstance(outcome, Token):
        assert (outcome.access_token, outcome.obtained_at) == (TOKEN, 5.0)


#: Answers whose every text field echoes the secret, as a server echoing the form would.
ECHOING_ANSWERS = st.dictionaries(
    st.sampled_from(
        ["error", "error_description", "traceId", "access_token", "token_type", "expires_in"]
    ),
    st.one_of(st.text(max_size=20).map(lambda text: text + SECRET), st.integers(), st.none()),
)


@given(answer=ECHOING_ANSWERS, status=st.integers(100, 599))
def test_judge_never_raises_and_never_echoes_the_secret(
    answer: dict[str, object], status: int
) -> None:
    outcome = judge(json.dumps(answer).encode(), status, 0.0, [SECRET])
    assert isinstance(outcome, (Token, CriteoAuthError))
    assert not isinstance(outcome, Token)  # a token holding the secret is never taken
    assert_no_secret(str(outcome))
