"""Criteo's error envelope: parsing errors and warnings, raise_for_status, odd bodies, streams."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from requests_criteo import CriteoAPIError, Envelope, Problem, envelope, raise_for_status
from requests_criteo._reading import read_capped
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


# -- a transport whose raw is not urllib3's, and the capped reader itself ----------------------


class BytesAdapter(HTTPAdapter):
    """A transport whose answers carry an ``io.BytesIO`` as ``raw``, not urllib3's response."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status, self.body = status, body

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = self.status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.raw = io.BytesIO(self.body)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response


def bytes_session(status: int, body: bytes) -> requests.Session:
    session = requests.Session()
    session.mount("https://", BytesAdapter(status, body))
    return session


def test_the_envelope_of_a_read_body_through_any_transport() -> None:
    with bytes_session(400, json.dumps(CAPPED).encode()) as s:
        r = s.get(URL)
    assert envelope(r).errors[0].code == "exceeded-ids-cap"
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    assert len(info.value.errors) == 2
    assert r.json() == CAPPED


def test_a_stream_through_any_transport_is_left_to_the_caller_then_read_capped() -> None:
    body = json.dumps(CAPPED).encode()
    with bytes_session(400, body) as s:
        r = s.get(URL, stream=True)
    assert not envelope(r)
    assert r.raw.tell() == 0  # nothing read
    with pytest.raises(CriteoAPIError) as info:
        raise_for_status(r)
    assert len(info.value.errors) == 2
    assert r.content == body
    assert r.json() == CAPPED
    assert envelope(r).errors[0].code == "exceeded-ids-cap"  # read now: parsed


def test_read_capped_keeps_the_limit_and_says_there_was_more() -> None:
    with bytes_session(401, b"x" * 100) as s:
        r = s.get(URL, stream=True)
    raw = r.raw
    assert read_capped(r, 10) == b"x" * 11
    assert r.raw is raw  # the body's own file stays: its headers and cookies are read there
    assert r.content == b"x" * 10
    assert r.text == "x" * 10
    assert read_capped(r, 10) == b"x" * 10  # read already: what was kept


def test_read_capped_reads_a_whole_body_and_json_still_works() -> None:
    with bytes_session(401, b'{"a": 1}') as s:
        r = s.get(URL, stream=True)
    assert read_capped(r, 1024, within=5.0) == b'{"a": 1}'
    assert r.json() == {"a": 1}


def test_read_capped_stops_when_told_and_closes_the_body() -> None:
    with bytes_session(401, b"x" * 100) as s:
        r = s.get(URL, stream=True)
    raw = r.raw
    assert read_capped(r, 1024, stop=lambda: True) == b""
    assert raw.closed  # cut short: never handed back half-read
    assert r.content == b""


def test_read_capped_gives_a_read_body_as_it_is_and_nothing_for_one_streamed_away(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(URL, status=400, body=b"y" * 50)
    read = requests.get(URL)
    assert read_capped(read, 10) == b"y" * 50
    streamed = requests.get(URL, stream=True)
    assert b"".join(streamed.iter_content(8)) == b"y" * 50
    assert read_capped(streamed, 10) == b""
