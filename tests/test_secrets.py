"""Secrets and server text in messages: what an error says, and what it must never carry.

Every error of the token request is checked with the traceback's local variables captured
(as Sentry and other error trackers do), against a server that echoes the form back. Text
from a server reaches a message redacted, on one line, with its control characters escaped.
"""

from __future__ import annotations

import json
import traceback
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses

from requests_criteo import (
    CriteoAPIError,
    CriteoAuth,
    CriteoAuthError,
    InvalidTokenResponse,
    TokenRequestError,
    raise_for_status,
)
from requests_criteo._text import safe_text
from requests_criteo.testing import FakeCriteo

from .conftest import ME, SECRET, TOKEN, TOKEN_URL, token_json

#: The secret as the form carries it, and as a server echoing the form would send it back.
FORMS = (SECRET, quote_plus(SECRET), quote(SECRET, safe=""))
ECHO = f"client_id=client-1&client_secret={quote_plus(SECRET)}&raw={SECRET}"
#: Server text that would rewrite a terminal or forge a log line if printed as it is.
HOSTILE = "bad\x1b[2J\r\nFORGED log line\x07\x85\u2028end"


def captured(exc: BaseException) -> str:
    """The traceback as an error tracker keeps it: every frame's locals, every chained error."""
    report = traceback.TracebackException(type(exc), exc, exc.__traceback__, capture_locals=True)
    return "".join(report.format())


def assert_carries_no_secret(exc: BaseException) -> None:
    text = captured(exc)
    for form in FORMS:
        assert form not in text
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
    mocked.post(TOKEN_URL, **answer)  # type: ignore[arg-type]
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
    assert exc.trace_id is not None and exc.trace_id.startswith("trace-[secure]bad\\x1b[2J\\x0d\\x0a")
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
