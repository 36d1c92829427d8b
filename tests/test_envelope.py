"""Criteo's error envelope: parsing errors and warnings, raise_for_status, odd bodies, streams."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
import requests
import responses

from requests_criteo import CriteoAPIError, Envelope, Problem, envelope, raise_for_status
from requests_criteo.envelope import MAX_ENVELOPE_BODY
from requests_criteo.testing import FakeCriteo

URL = "https://api.criteo.com/2025-10/retail-media/reports/line-item"
CAPPED: dict[str, Any] = {
    "errors": [
        {
            "code": "exceeded-ids-cap",
            "title": "Requests are capped for 50 unique ids, 51 were provided",
            "type": "validation",
            "traceId": "aa47dd83-1111",
            "instance": "/api/v1/reports/line-item",
            "detail": "Send at most 50 ids per call",
            "source": {"ids": "data/attributes/ids"},
        },
        {"code": "required-field", "title": "startDate is required", "type": "validation"},
    ],
    "warnings": [
        {"code": "deprecated-field", "title": "x is deprecated", "traceIdentifier": "old-trace"}
    ],
}


def get(mocked: responses.RequestsMock, **kwargs: object) -> requests.Response:
    mocked.get(URL, **kwargs)
    return requests.get(URL)


def test_errors_and_warnings_are_parsed(mocked: responses.RequestsMock) -> None:
    r = get(mocked, status=400, json=CAPPED)
    found = envelope(r)
    assert found.errors[0] == Problem(
        code="exceeded-ids-cap",
        title="Requests are capped for 50 unique ids, 51 were provided",
        detail="Send at most 50 ids per call",
        type="validation",
        trace_id="aa47dd83-1111",
        instance="/api/v1/reports/line-item",
        source={"ids": "data/attributes/ids"},
    )
    assert found.errors[1].code == "required-field"
    assert found.warnings[0].trace_id == "old-trace"  # the older services' field name
    assert found


def test_raise_for_status_gives_one_actionable_line(mocked: responses.RequestsMock) -> None:
    r = get(mocked, status=400, json=CAPPED)
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    exc = info.value
    assert isinstance(exc, requests.HTTPError)
    assert str(exc) == (
        f"HTTP 400 Bad Request for GET {URL}: exceeded-ids-cap: Requests are capped for 50 "
        "unique ids, 51 were provided (ids: data/attributes/ids) - Send at most 50 ids per "
        "call (trace id aa47dd83-1111) (+1 more)"
    )
    assert (exc.status_code, exc.code, exc.trace_id) == (400, "exceeded-ids-cap", "aa47dd83-1111")
    assert len(exc.errors) == 2
    assert len(exc.warnings) == 1
    assert exc.response is r


def test_a_200_with_errors_is_left_alone_but_readable(mocked: responses.RequestsMock) -> None:
    r = get(mocked, status=200, json={"data": [], "errors": CAPPED["errors"][:1]})
    assert raise_for_status(r) is r
    assert envelope(r).errors[0].code == "exceeded-ids-cap"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        {"body": ""},
        {"body": "[1, 2, 3]"},
        {"body": '{"errors": "nope"}'},
        {"body": '{"errors": [1, "x", null]}'},
        {"body": b"\xff\xfe\x00"},
        {"body": '"just a string"'},
    ],
)
def test_odd_bodies_give_a_plain_message(
    mocked: responses.RequestsMock, kwargs: dict[str, object]
) -> None:
    r = get(mocked, status=502, **kwargs)
    assert envelope(r) == Envelope()
    assert not envelope(r)
    with pytest.raises(CriteoAPIError, match=r"^HTTP 502 Bad Gateway for GET \S+$") as info:
        raise_for_status(r)
    assert info.value.errors == []
    assert info.value.code is None


def test_odd_field_types_are_tolerated(mocked: responses.RequestsMock) -> None:
    r = get(
        mocked,
        status=400,
        json={
            "errors": [
                {"code": 5, "title": ["a"], "source": "x", "traceId": None, "detail": "d" * 5000}
            ]
        },
    )
    problem = envelope(r).errors[0]
    assert problem.code == "5"
    assert problem.title is None
    assert problem.source == {}
    assert problem.detail is not None
    assert len(problem.detail) == 500
    assert str(problem) == "5"


def test_a_problem_without_code_or_title() -> None:
    assert str(Problem()) == "(no code or title)"


def test_the_401_envelope(mocked: responses.RequestsMock) -> None:
    r = get(
        mocked,
        status=401,
        json={
            "errors": [
                {
                    "traceId": "t-9",
                    "type": "authorization",
                    "code": "authorization-token-expired",
                    "instance": "/2022-10/audiences/123/contactlist",
                    "title": "The authorization token has expired",
                }
            ]
        },
    )
    with pytest.raises(
        CriteoAPIError,
        match="authorization-token-expired: The authorization "
        r"token has expired \(trace id t-9\)",
    ):
        raise_for_status(r)


def test_the_error_pickles(mocked: responses.RequestsMock) -> None:
    r = get(mocked, status=400, json=CAPPED)
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)


# -- streamed responses (FakeCriteo on 127.0.0.1) ---------------------------------------------


def test_envelope_on_an_unread_stream_reads_nothing(fake: FakeCriteo) -> None:
    body = json.dumps({"errors": [{"code": "x", "title": "t"}], "pad": "p" * 5000}).encode()
    fake.set_response("/doc", status=400, body=body, authorize=False)
    with requests.get(f"{fake.url}/doc", stream=True, timeout=5) as r:
        found = envelope(r)
        assert not found
        assert r.raw.tell() == 0
        assert r.raw.read() == body


def test_envelope_on_an_unread_stream_leaves_content_to_the_caller(fake: FakeCriteo) -> None:
    body = b'{"warnings": [{"code": "w"}]}'
    fake.set_response("/doc", status=200, body=body, authorize=False)
    with requests.get(f"{fake.url}/doc", stream=True, timeout=5) as r:
        assert not envelope(r)
        assert r.content == body
        # Once the body is read, the envelope is there.
        assert [w.code for w in envelope(r).warnings] == ["w"]


def test_raise_for_status_on_a_4xx_stream_reads_at_most_1_mib(fake: FakeCriteo) -> None:
    fake.set_response("/big", status=400, body=b"x" * (3 * 1024 * 1024), authorize=False)
    with requests.get(f"{fake.url}/big", stream=True, timeout=10) as r:
        with pytest.raises(CriteoAPIError) as info:
            raise_for_status(r)
        assert r.raw.tell() <= MAX_ENVELOPE_BODY + 1
        assert len(r.content) <= MAX_ENVELOPE_BODY + 1
    assert info.value.status_code == 400
    assert info.value.errors == []
