"""Secrets and server text in messages: what an error says, and what it must never carry.

Every error of the token request is checked with the traceback's local variables captured
(as Sentry and other error trackers do), against a server that echoes the form back. Text
from a server reaches a message redacted, on one line, with its control characters escaped.
"""

from __future__ import annotations

import functools
import json
import pickle
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from types import ModuleType
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses

from requests_criteo import (
    CriteoAPIError,
    CriteoAuth,
    CriteoAuthError,
    CriteoRetry,
    InvalidTokenResponse,
    TokenCache,
    TokenRequestError,
    raise_for_status,
)
from requests_criteo._text import safe_text
from requests_criteo.testing import FakeCriteo

from .conftest import (
    CLIENT_ID,
    ME,
    SECRET,
    TOKEN,
    TOKEN_URL,
    Sleeps,
    V,
    assert_no_secret,
    echo,
    me,
    token_json,
)


def forms(secret: str) -> tuple[str, ...]:
    """*secret* as given, and as a form or a URL carries it (a server echoing it sends these)."""
    return (secret, quote_plus(secret), quote(secret, safe=""))


#: The secret as the form carries it, and as a server echoing the form would send it back.
FORMS = forms(SECRET)
ECHO = f"client_id=client-1&client_secret={quote_plus(SECRET)}&raw={SECRET}"
#: Server text that would rewrite a terminal or forge a log line if printed as it is.
HOSTILE = "bad\x1b[2J\r\nFORGED log line\x07\x85\u2028end"


def captured(exc: BaseException) -> str:
    """The traceback as an error tracker keeps it: every frame's locals, every chained error."""
    report = traceback.TracebackException(type(exc), exc, exc.__traceback__, capture_locals=True)
    return "".join(report.format())


def assert_hidden(text: str, secret: str = SECRET) -> None:
    """No form of *secret* is in *text*."""
    for form in forms(secret):
        assert form not in text


def assert_carries_no_secret(exc: BaseException) -> None:
    assert_hidden(captured(exc))
    assert "\n" not in str(exc) and "\r" not in str(exc) and "\x1b" not in str(exc)


def token_error(auth: CriteoAuth) -> CriteoAuthError:
    with pytest.raises(CriteoAuthError) as info:
        auth.token()
    return info.value


ERROR_ANSWERS = {
    "refusal echoing the form": {
        "status": 400,
        "json": {"error": "invalid_client", "error_description": ECHO, "traceId": ECHO},
    },
    "refusal that is not JSON": {"status": 400, "body": ECHO},
    "server error, retries exhausted": {"status": 500, "body": ECHO},
    "redirect": {"status": 307, "headers": {"Location": f"https://evil.example/?{ECHO}"}},
    "HTML with 200": {"status": 200, "body": f"<html>{ECHO}</html>"},
    "JSON list with 200": {"status": 200, "json": [ECHO]},
    "error with 200": {"status": 200, "json": {"error": ECHO, "error_description": ECHO}},
    "no access_token": {"status": 200, "json": {"access_token": "", "echo": ECHO}},
    "access_token with spaces": {"status": 200, "json": token_json(f"a b {ECHO}")},
    "access_token echoing the secret": {"status": 200, "json": token_json(f"tok.{SECRET}")},
    "access_token echoing the encoded secret": {
        "status": 200,
        "json": token_json(f"tok.{quote(SECRET, safe='')}"),
    },
    "not Bearer": {"status": 200, "json": token_json(token_type="mac", echo=ECHO)},
    "refresh_token not text": {"status": 200, "json": token_json(refresh_token=5, echo=ECHO)},
    "refused by oauthlib": {"status": 200, "json": token_json(scope=5, echo=ECHO)},
}


@pytest.mark.parametrize("answer", ERROR_ANSWERS.values(), ids=ERROR_ANSWERS.keys())
def test_no_error_of_the_token_request_carries_the_secret_in_traceback_locals(
    mocked: responses.RequestsMock, auth: CriteoAuth, answer: dict[str, object]
) -> None:
    mocked.post(TOKEN_URL, **answer)
    assert_carries_no_secret(token_error(auth))
    assert len(auth.cache) == 0  # nothing cached


def test_a_connection_failure_carries_no_secret_in_traceback_locals(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("connection reset by peer"))
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    assert_carries_no_secret(exc)


def test_an_access_token_containing_the_secret_is_never_sent_to_the_api(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(TOKEN_URL, json=token_json(f"echo.{SECRET}"))
    api = mocked.get(ME, json={})
    with pytest.raises(InvalidTokenResponse, match="contains a credential"):
        requests.get(ME, auth=auth, timeout=5)
    assert api.call_count == 0


def test_a_refusal_makes_the_servers_text_safe_in_the_message_and_attributes(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(
        TOKEN_URL,
        status=400,
        json={
            "error": f"invalid_client{HOSTILE}",
            "error_description": f"{HOSTILE} {SECRET}",
            "traceId": f"trace-{SECRET}{HOSTILE}",
        },
    )
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    for text in (str(exc), exc.error, exc.error_description, exc.trace_id):
        assert text is not None
        assert text.isprintable()
        assert SECRET not in text
    assert exc.trace_id is not None and exc.trace_id.startswith(
        "trace-[secure]bad\\x1b[2J\\x0d\\x0a"
    )
    assert "FORGED log line" in str(exc)  # escaped, not dropped: still readable


def test_an_api_error_message_is_one_safe_line_without_the_bearer_token(
    mocked: responses.RequestsMock,
) -> None:
    problem = {
        "code": f"authorization-token-invalid{HOSTILE}",
        "title": f"The token {TOKEN} is bad{HOSTILE}",
        "detail": HOSTILE,
        "traceId": f"{HOSTILE}{TOKEN}",
        "source": {"header": HOSTILE},
    }
    mocked.get(ME, status=401, json={"errors": [problem]})
    r = requests.get(ME, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    message = str(info.value)
    assert message.isprintable()
    assert TOKEN not in message
    assert "\\x1b[2J\\x0d\\x0aFORGED log line" in message
    assert str(info.value.errors[0]).isprintable()


def test_the_command_line_prints_server_text_on_one_safe_line(
    fake: FakeCriteo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from requests_criteo.__main__ import main

    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-loopback")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
    fake.set_response(
        "/2025-10/retail-media/broken",
        status=400,
        json={"errors": [{"code": "bad", "title": HOSTILE, "traceId": HOSTILE}]},
    )
    assert main(["request", "GET", f"{fake.url}/2025-10/retail-media/broken"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err[:-1].isprintable()
    assert "FORGED log line" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("a\x1bb", "a\\x1bb"),
        ("line\r\nbreak", "line\\x0d\\x0abreak"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("sep\u2028arator", "sep\\u2028arator"),
        ("bidi\u202eoverride", "bidi\\u202eoverride"),
        ("tab\there", "tab\\x09here"),
        ("caf\u00e9 ok", "caf\u00e9 ok"),
        (
            f"x {SECRET} {quote_plus(SECRET)} {quote(SECRET, safe='')} y",
            "x [secure] [secure] [secure] y",
        ),
    ],
)
def test_safe_text_redacts_and_escapes(text: str, expected: str) -> None:
    assert safe_text(text, [SECRET]) == expected


def test_safe_text_cuts_long_text() -> None:
    assert safe_text("x" * 500, limit=10) == "xxxxxxx..."
    assert json.dumps(safe_text("y" * 10, limit=10)) == '"yyyyyyyyyy"'


# -- no object a token error reaches holds the secret --------------------------------------


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # an object whose repr breaks shows nothing
        return f"<repr failed: {type(exc).__name__}>"


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
            for form in FORMS:
                assert form not in text, f"{tb.tb_frame.f_code.co_name}() local {name!r}"
        tb = tb.tb_next


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
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    assert "could not connect to the token endpoint" in str(exc)
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
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    assert exc.status_code == 503
    assert "gave up after 3 attempts" in str(exc)
    assert fake.token_requests == 3
    assert_exception_keeps_the_secret_out(exc)


def test_refusal_error_holds_no_secret(
    fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry
) -> None:
    auth = CriteoAuth("client-unknown", SECRET, token_url=fake.token_url, cache=cache, retry=retry)
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    assert (exc.status_code, exc.error) == (400, "invalid_client")
    assert fake.token_requests == 1
    assert_exception_keeps_the_secret_out(exc)


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
        exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    assert exc.error_description is not None
    assert "client_secret=[secure]" in exc.error_description
    assert "[secure]" in str(exc)
    for text in (str(exc), repr(exc), exc.error_description, repr(exc.args)):
        assert_hidden(text, secret)
        assert_no_secret(text)


# -- pickled responses and API errors ------------------------------------------------------


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
        raise_for_status(r)
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


def test_a_secret_straddling_the_cut_of_a_trace_id_leaves_no_part_behind(
    mocked: responses.RequestsMock, auth: CriteoAuth
) -> None:
    mocked.post(
        TOKEN_URL, status=400, json={"error": "invalid_client", "traceId": "x" * 90 + SECRET}
    )
    exc = token_error(auth)
    assert isinstance(exc, TokenRequestError)
    for text in (str(exc), exc.trace_id or ""):
        assert SECRET[:6] not in text
        assert_hidden(text)


def test_a_bearer_token_straddling_the_cut_of_a_field_leaves_no_part_behind(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(ME, status=400, json={"errors": [{"code": "bad", "title": "y" * 490 + TOKEN}]})
    r = requests.get(ME, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    assert TOKEN[:8] not in str(info.value)
    assert "[secure]" in str(info.value)


def test_the_librarys_warnings_stay_off_stderr_until_logging_is_configured() -> None:
    code = "import logging, requests_criteo; logging.getLogger('requests_criteo').warning('x')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")
