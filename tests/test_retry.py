"""CriteoRetry: Criteo's 429 headers, capped waits, and a sleep that tests replace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email.utils import formatdate

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

from requests_criteo import CriteoRetry
from requests_criteo.testing import FakeCriteo

from .conftest import Sleeps

NOW = 1_700_000_000.0


@pytest.fixture
def policy(sleeps: Sleeps) -> CriteoRetry:
    return CriteoRetry(sleep=sleeps, wall_clock=lambda: NOW, backoff_jitter=0.0)


def answer(status: int, **headers: str) -> HTTPResponse:
    return HTTPResponse(body=b"", status=status, headers=headers, preload_content=False)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 2.5 "}, 2.5),
        ({"Retry-After": formatdate(NOW + 12, usegmt=True)}, 12.0),
        ({"Retry-After": "600"}, 60.0),
        ({"x-ratelimit-reset": str(int(NOW) + 9)}, 9.0),
        ({"x-ratelimit-reset": str(int(NOW) + 9999)}, 60.0),
        ({"x-ratelimit-reset": str(int(NOW) - 5)}, None),
        ({"x-ratelimit-reset": "soon"}, None),
        ({"x-ratelimit-reset": "inf"}, None),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "tomorrow-ish"}, None),
        ({"Retry-After": "Mon, 99 Foo 99999 99:99:99 GMT"}, None),
        ({"Retry-After": "garbage", "x-ratelimit-reset": str(int(NOW) + 4)}, 4.0),
        ({}, None),
    ],
)
def test_the_wait_a_429_asks_for(
    policy: CriteoRetry, headers: dict[str, str], wait: float | None
) -> None:
    assert policy.get_retry_after(answer(429, **headers)) == wait


def test_x_ratelimit_reset_counts_only_on_a_429(policy: CriteoRetry) -> None:
    assert policy.get_retry_after(answer(503, **{"x-ratelimit-reset": str(int(NOW) + 9)})) is None


def test_a_429_is_retried_whatever_the_method(policy: CriteoRetry) -> None:
    assert policy.is_retry("POST", 429)
    assert policy.is_retry("PATCH", 429)
    assert not policy.is_retry("POST", 503)  # executed or not? unknown: not retried
    assert policy.is_retry("GET", 503)
    assert not CriteoRetry(status_forcelist=[503]).is_retry("POST", 429)


def test_backoff_is_exponential_capped_and_jittered(sleeps: Sleeps) -> None:
    policy = CriteoRetry(total=10, sleep=sleeps, backoff_jitter=0.0, backoff_max=5)
    waits = []
    for _ in range(6):
        policy = policy.increment(method="GET", url="/", response=answer(503))
        waits.append(policy.get_backoff_time())
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    jittery = CriteoRetry(backoff_jitter=0.5).increment(method="GET", url="/", response=answer(503))
    assert all(0.5 <= jittery.get_backoff_time() <= 1.0 for _ in range(50))
    assert CriteoRetry().get_backoff_time() == 0.0


def test_new_keeps_the_seams(policy: CriteoRetry, sleeps: Sleeps) -> None:
    copy = policy.new(total=1)
    assert copy.sleep_func is sleeps
    assert copy.wall_clock() == NOW


@pytest.fixture
def fake() -> Iterator[FakeCriteo]:
    with FakeCriteo() as server:
        yield server


def test_mounted_policy_waits_as_told_and_logs(
    fake: FakeCriteo, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="requests_criteo")
    fake.set_response(
        "/2025-10/retail-media/accounts",
        status=429,
        authorize=False,
        headers={
            "x-ratelimit-reset": str(int(NOW) + 3),
            "x-ratelimit-limit": "250",
            "x-ratelimit-remaining": "0",
        },
    )
    policy = CriteoRetry(total=2, sleep=sleeps, wall_clock=lambda: NOW, backoff_jitter=0.0)
    with requests.Session() as s:
        s.mount(fake.url + "/", HTTPAdapter(max_retries=policy))
        r = s.post(fake.url + "/2025-10/retail-media/accounts", json={"x": 1}, timeout=5)
    assert r.status_code == 429
    assert fake.api_requests == 3
    assert sleeps == [3.0, 3.0]
    assert "Criteo asked to wait: retrying in 3.00 s (HTTP 429)" in caplog.text


def test_mounted_policy_backs_off_without_headers(
    fake: FakeCriteo, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="requests_criteo")
    fake.set_response("/2025-10/retail-media/accounts", status=503, authorize=False)
    policy = CriteoRetry(total=2, sleep=sleeps, backoff_jitter=0.0)
    with requests.Session() as s:
        s.mount(fake.url + "/", HTTPAdapter(max_retries=policy))
        r = s.get(fake.url + "/2025-10/retail-media/accounts", timeout=5)
    assert r.status_code == 503
    assert sleeps == [0.5, 1.0]
    assert "retrying in 0.50 s" in caplog.text
