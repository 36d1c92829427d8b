"""Criteo's rate limits through the adapter: 429 retries, 5xx retries, and the limiter."""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Iterator

import pytest
import requests

from requests_criteo import CriteoAdapter, CriteoAuth, CriteoRetry, RateLimiter
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, SECRET, FakeClock, Sleeps, V, criteo_client, summary

EPOCH = 1_700_000_000.0


class Time:
    """One clock for everyone: the fake, the limiter, the retry policy. Sleeping moves it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def wall(self) -> float:
        return EPOCH + self.clock()

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.clock.advance(seconds)


@pytest.fixture
def t(clock: FakeClock) -> Time:
    return Time(clock)


@pytest.fixture
def fake(clock: FakeClock, t: Time) -> Iterator[FakeCriteo]:
    """Knows client-1 (this file's) and CLIENT_ID (conftest's `criteo_auth`)."""
    clients = {"client-1": SECRET, CLIENT_ID: SECRET}
    with FakeCriteo(timer=clock, clients=clients, lifetime=36000) as server:
        server.wall_clock = t.wall
        yield server


def mount(fake: FakeCriteo, clock: FakeClock, **adapter: object) -> requests.Session:
    auth = CriteoAuth("client-1", SECRET, token_url=fake.token_url, timer=clock)
    s = requests.Session()
    s.trust_env = False
    s.mount(fake.url + "/", CriteoAdapter(auth, **adapter))  # type: ignore[arg-type]
    return s


def retry(t: Time, **kwargs: object) -> CriteoRetry:
    return CriteoRetry(sleep=t.sleep, wall_clock=t.wall, backoff_jitter=0.0, **kwargs)  # type: ignore[arg-type]


def test_the_default_policy_is_criteo_retry(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = CriteoAuth("client-1", SECRET, token_url=fake.token_url, timer=clock)
    policy = CriteoAdapter(auth).max_retries
    assert isinstance(policy, CriteoRetry)
    assert set(policy.status_forcelist or ()) == {429, 502, 503, 504}


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_a_429_is_retried_after_x_ratelimit_reset_for_any_method(
    fake: FakeCriteo, clock: FakeClock, t: Time, method: str
) -> None:
    fake.rate_limit = 2
    clock.advance(50)  # at 1050: 30 s before the fake's one-minute window ends
    with mount(fake, clock, max_retries=retry(t)) as s:
        url = f"{fake.url}/2025-10/retail-media/accounts"
        statuses = [s.request(method, url, json={"n": i}, timeout=5).status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    assert fake.rate_limited == 1
    assert t.slept == [31.0]  # until x-ratelimit-reset (end of the window, rounded up)


def test_the_last_429_is_returned_when_retries_run_out(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.set_response(
        "/2025-10/retail-media/accounts",
        status=429,
        headers={"x-ratelimit-reset": str(int(t.wall()) + 5)},
    )
    with mount(fake, clock, max_retries=retry(t, total=2)) as s:
        r = s.get(f"{fake.url}/2025-10/retail-media/accounts", timeout=5)
    assert r.status_code == 429
    assert len(fake.api_calls()) == 3
    # 5 s until the reset; after that the (canned) reset is in the past: backoff, 1 s.
    assert t.slept == [5.0, 1.0]


@pytest.mark.parametrize("reset", ["soon", "-1", "1e400", "99999999999999999999", ""])
def test_garbage_reset_headers_cannot_crash_or_hang(
    fake: FakeCriteo, clock: FakeClock, t: Time, reset: str
) -> None:
    fake.set_response(
        "/2025-10/x", status=429, headers={"x-ratelimit-reset": reset, "Retry-After": reset}
    )
    with mount(fake, clock, max_retries=retry(t, total=3)) as s:
        r = s.get(f"{fake.url}/2025-10/x", timeout=5)
    assert r.status_code == 429
    assert len(t.slept) == 3
    assert all(0 <= w <= 60 for w in t.slept)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_for_idempotent_methods_only(
    fake: FakeCriteo, clock: FakeClock, t: Time, status: int
) -> None:
    fake.set_response("/2025-10/x", status=status)
    with mount(fake, clock, max_retries=retry(t, total=2)) as s:
        assert s.get(f"{fake.url}/2025-10/x", timeout=5).status_code == status
        assert len(fake.api_calls()) == 3
        assert s.post(f"{fake.url}/2025-10/x", json={}, timeout=5).status_code == status
        assert len(fake.api_calls()) == 4  # a POST may have been executed: not resent
    assert t.slept == [0.5, 1.0]


def test_500_is_not_retried(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    fake.set_response("/2025-10/x", status=500)
    with mount(fake, clock, max_retries=retry(t)) as s:
        assert s.get(f"{fake.url}/2025-10/x", timeout=5).status_code == 500
    assert len(fake.api_calls()) == 1


def test_a_generator_body_is_never_retried(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    fake.set_response(
        "/2025-10/upload", status=429, headers={"x-ratelimit-reset": str(int(t.wall()) + 5)}
    )
    with mount(fake, clock, max_retries=retry(t)) as s:
        r = s.post(f"{fake.url}/2025-10/upload", data=(c for c in [b"a" * 10, b"b"]), timeout=5)
    assert r.status_code == 429
    calls = fake.api_calls()
    assert len(calls) == 1
    assert calls[0].body == b"a" * 10 + b"b"
    assert t.slept == []


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


def test_a_file_body_is_retried_whole(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    import io

    fake.rate_limit = 1
    with mount(fake, clock, max_retries=retry(t)) as s:
        s.get(f"{fake.url}/2025-10/retail-media/me", timeout=5)
        r = s.post(f"{fake.url}/2025-10/upload", data=io.BytesIO(b"payload"), timeout=5)
    assert r.status_code == 200
    assert [c.body for c in fake.api_calls()[1:]] == [b"payload", b"payload"]


def test_retry_waits_are_logged_at_info(
    fake: FakeCriteo, clock: FakeClock, t: Time, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="requests_criteo")
    fake.rate_limit = 1
    with mount(fake, clock, max_retries=retry(t)) as s:
        s.get(f"{fake.url}/2025-10/a", timeout=5)
        s.get(f"{fake.url}/2025-10/b", timeout=5)
    # The clock is at 1000: the fake's window ends at 1020, so the wait is 21 s.
    assert "Criteo asked to wait: retrying in 21.00 s (HTTP 429)" in caplog.text
    assert t.slept == [21.0]


def test_the_limiter_keeps_a_bulk_script_under_the_limit(
    fake: FakeCriteo, clock: FakeClock, t: Time
) -> None:
    fake.rate_limit = 40
    limiter = RateLimiter(40, clock=clock, sleep=t.sleep)
    with mount(fake, clock, max_retries=0, rate_limit=limiter) as s:
        statuses = [s.get(f"{fake.url}/2025-10/a/{i}", timeout=5).status_code for i in range(100)]
    assert statuses == [200] * 100
    assert fake.rate_limited == 0
    assert clock() == pytest.approx(1000 + 99 * 1.5)


def test_without_the_limiter_the_same_script_runs_into_429s(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    fake.rate_limit = 40
    with mount(fake, clock, max_retries=0) as s:
        statuses = [s.get(f"{fake.url}/2025-10/a/{i}", timeout=5).status_code for i in range(100)]
    assert statuses.count(429) == 60
    assert fake.rate_limited == 60


def test_reporting_calls_have_their_own_budget(fake: FakeCriteo, clock: FakeClock, t: Time) -> None:
    fake.rate_limit = 250
    fake.reporting_rate_limit = 40
    ordinary = RateLimiter(250, clock=clock, sleep=t.sleep)
    reporting = RateLimiter(40, clock=clock, sleep=t.sleep)
    with mount(
        fake, clock, max_retries=0, rate_limit=ordinary, reporting_rate_limit=reporting
    ) as s:
        for i in range(60):
            s.get(f"{fake.url}/2025-10/marketing-solutions/me?i={i}", timeout=5)
            s.post(f"{fake.url}/2025-10/statistics/report", json={"i": i}, timeout=5)
    assert fake.rate_limited == 0
    assert fake.api_requests == 120


def test_the_limiter_is_shared_by_threads(fake: FakeCriteo, clock: FakeClock) -> None:
    # The clock stands still and sleeps are only recorded: the waits handed out must be
    # one schedule for all 16 threads, 1.5 s apart (40 a minute).
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    limiter = RateLimiter(40, clock=clock, sleep=record)
    with mount(fake, clock, max_retries=0, rate_limit=limiter, pool_maxsize=16) as s:
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def worker() -> None:
            barrier.wait()
            for i in range(5):
                statuses.append(s.get(f"{fake.url}/2025-10/a/{i}", timeout=5).status_code)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(20)
    assert statuses == [200] * 80
    assert sorted(waits) == [pytest.approx(1.5 * i) for i in range(1, 80)]


def test_a_number_makes_a_limiter(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = CriteoAuth("client-1", SECRET, token_url=fake.token_url, timer=clock)
    adapter = CriteoAdapter(auth, rate_limit=250, reporting_rate_limit=40)
    assert adapter.limiter is not None
    assert adapter.limiter.per_minute == 250
    assert adapter.reporting_limiter is not None
    assert adapter.reporting_limiter.per_minute == 40
    with pytest.raises(TypeError, match="rate_limit must be calls per minute"):
        CriteoAdapter(auth, rate_limit="fast")  # type: ignore[arg-type]


def test_an_adapter_with_limiters_pickles(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = CriteoAuth("client-1", SECRET, token_url=fake.token_url)
    adapter = CriteoAdapter(auth, rate_limit=250)
    copy = pickle.loads(pickle.dumps(adapter))
    assert copy.limiter is not None
    assert copy.limiter.per_minute == 250
    assert isinstance(copy.max_retries, CriteoRetry)
    with requests.Session() as s:
        s.trust_env = False
        s.mount(fake.url + "/", copy)
        assert s.get(f"{fake.url}/2025-10/retail-media/me", timeout=5).status_code == 200
