"""Shared fixtures: a fake clock, a private token cache, a retry policy that never sleeps."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import responses

import requests_criteo
from requests_criteo import (
    CriteoAuth,
    CriteoRetry,
    RateLimiter,
    TokenCache,
    TokenStore,
    code_from_redirect,
    consent_url,
)
from requests_criteo.adapters import CriteoSession
from requests_criteo.testing import FakeCriteo

TOKEN_URL = "https://api.criteo.com/oauth2/token"
API = "https://api.criteo.com/2025-10"
ME = f"{API}/retail-media/me"
# Sentinels: if any of these strings shows up in a log, repr or error, a test fails.
SECRET = "s3cr3t+SENTINEL/secret=="
TOKEN = "tok.SENTINEL-ACCESS.sig"
#: The API version in the loopback tests' paths.
V = "2025-10"
#: The client the loopback fixture `fake` knows, with the SENTINEL secret.
CLIENT_ID = "client-loopback"


class FakeClock:
    """A clock tests move by hand: nothing ever sleeps to wait for an expiry."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps(list[float]):
    """Records the waits a retry policy asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def reserve_in_threads(limiter: RateLimiter, count: int) -> list[float]:
    """The waits that *count* threads, let go together, are given by one ``reserve()`` each."""
    barrier = threading.Barrier(count)

    def reserve() -> float:
        barrier.wait(5)
        return limiter.reserve()

    with ThreadPoolExecutor(count) as pool:
        turns = [pool.submit(reserve) for _ in range(count)]
    return sorted(turn.result() for turn in turns)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> TokenCache:
    return TokenCache(timer=clock)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> CriteoRetry:
    return CriteoRetry(sleep=sleeps, backoff_jitter=0.0, wall_clock=lambda: 1_700_000_000.0)


@pytest.fixture
def auth(cache: TokenCache, retry: CriteoRetry) -> CriteoAuth:
    return CriteoAuth("client-1", SECRET, cache=cache, retry=retry)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def token_json(token: str = TOKEN, expires_in: object = 900, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": None,
    }
    body.update(extra)
    return body


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (SECRET, TOKEN, *secrets):
        assert secret not in text


@pytest.fixture(autouse=True)
def _fresh_shared_caches() -> Iterator[None]:
    """Tokens cached process-wide by one test must not serve the next."""
    yield
    from requests_criteo import _cache

    _cache.shared_cache().clear()
    _cache.shared_cache().memory_store.clear()
    _cache._BY_TIMER.clear()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment may turn a loopback call into an outside one."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    """Criteo on loopback: knows CLIENT_ID, whose secret is the SENTINEL; expiry on `clock`."""
    with FakeCriteo(clients={CLIENT_ID: SECRET}, timer=clock) as server:
        yield server


@pytest.fixture
def foreign(clock: FakeClock) -> Iterator[FakeCriteo]:
    """Another origin (same host, its own port): must never see a token or a secret."""
    with FakeCriteo(timer=clock) as server:
        yield server


def untraced() -> None:
    """In a forked child: stop a coverage tracer inherited from the parent.

    A child's lines are not recorded (coverage runs without parallel mode), so tracing
    them only slows the multi-process tests down.
    """
    import sys
    import threading

    sys.settrace(None)
    threading.settrace(None)


def me(fake: FakeCriteo) -> str:
    """The fake's /me path, which answers with the client of a valid token."""
    return f"{fake.url}/{V}/retail-media/me"


def echo(fake: FakeCriteo, name: str = "upload") -> str:
    """A versioned path the fake echoes (method, bodyLength, bodySha256)."""
    return f"{fake.url}/{V}/retail-media/{name}"


def summary(r: requests.Response) -> tuple[int, list[int]]:
    """Status and history statuses of *r*, which is closed."""
    with r:
        return r.status_code, [h.status_code for h in r.history]


#: requests' own Session methods, which install() wraps and uninstall() must restore.
ORIGINAL_SEND = requests.Session.send
ORIGINAL_REBUILD_AUTH = requests.Session.rebuild_auth


@pytest.fixture
def never_left_installed() -> Iterator[None]:
    """After the test, install() is undone and requests' Session is as it was."""
    yield
    requests_criteo.uninstall()
    assert requests.Session.send is ORIGINAL_SEND
    assert requests.Session.rebuild_auth is ORIGINAL_REBUILD_AUTH


#: The ways a session authenticates Criteo calls without an auth= on each call.
WAYS = ["install", "session", "mount"]


@pytest.fixture
def criteo_auth(fake: FakeCriteo, cache: TokenCache, retry: CriteoRetry) -> CriteoAuth:
    """An auth for the loopback `fake`, on the test's clock, retrying without sleeping."""
    return CriteoAuth(
        CLIENT_ID, SECRET, token_url=fake.token_url, cache=cache, retry=retry, timeout=(2.0, 5.0)
    )


@contextlib.contextmanager
def criteo_client(
    way: str, fake: FakeCriteo, auth: CriteoAuth, **adapter_options: Any
) -> Iterator[requests.Session]:
    """A session authenticating Criteo calls by *way*: install(), session(), mount(), auth=."""
    if way == "install":
        with requests_criteo.install(auth), requests.Session() as s:
            yield s
    elif way == "session":
        made = requests_criteo.session(
            CLIENT_ID,
            SECRET,
            token_url=fake.token_url,
            cache=auth.cache,
            retry=auth.retry,
            timeout=auth.timeout,
            **adapter_options,
        )
        assert isinstance(made, CriteoSession)
        with made as s:
            yield s
    elif way == "mount":
        with requests.Session() as s:
            requests_criteo.mount(s, auth, **adapter_options)
            yield s
    else:
        assert way == "auth"
        with requests.Session() as s:
            s.auth = auth
            yield s


def fleet_worker(
    rounds: int,
    barrier: Any,
    clock_value: Any,
    make_store: Callable[..., TokenStore],
    token_url: str,
    api: str,
    grant: str,
    failures: Any,
) -> None:  # pragma: no cover - runs in forked children
    """One process of a fleet sharing a token store: *rounds* calls, in step with the others.

    The clock is shared memory the parent moves; ``make_store(clock=...)`` builds the
    store. A call that is not a 200, or raises, counts in *failures* (a
    ``multiprocessing.Value``).
    """
    untraced()

    def clock() -> float:
        return float(clock_value.value)

    auth = CriteoAuth(
        "client-1",
        SECRET,
        token_url=token_url,
        timer=clock,
        store=make_store(clock=clock),
        grant=grant,
    )
    with requests.Session() as s:
        s.trust_env = False
        for _ in range(rounds):
            barrier.wait()
            try:
                ok = s.get(api, auth=auth, timeout=10).status_code == 200
            except Exception:
                ok = False
            if not ok:
                with failures.get_lock():
                    failures.value += 1
            barrier.wait()


# -- authorization-code apps ----------------------------------------------------------------

#: The redirect URI of the authorization-code tests' app.
REDIRECT = "https://app.example/criteo/callback"


def consent(fake: FakeCriteo, pkce: bool = True) -> tuple[str, str | None]:
    """The user consents: the code, and the verifier the app kept."""
    request = consent_url("client-1", REDIRECT, pkce=pkce)
    redirect = fake.consent_redirect(request.url)
    return code_from_redirect(redirect, request.state), request.code_verifier


def exchange(
    fake: FakeCriteo, clock: Callable[[], float], code: str, verifier: str | None, **options: Any
) -> CriteoAuth:
    """The app exchanges *code* (with *verifier*) for tokens at the fake."""
    return CriteoAuth.from_authorization_code(
        "client-1",
        SECRET,
        code,
        REDIRECT,
        verifier,
        token_url=fake.token_url,
        timer=clock,
        **options,
    )


def authorize(fake: FakeCriteo, clock: Callable[[], float], **options: Any) -> CriteoAuth:
    """Consent, then the exchange."""
    return exchange(fake, clock, *consent(fake), **options)


# -- coverage where no redis-server can be had ---------------------------------------------

_REDIS_STORE_OMITTED = pytest.StashKey[bool]()
_REDIS_MODULES = [
    f"*/requests_criteo/{name}.py" for name in ("_redis", "redis_store", "redis_ratelimit")
]


def pytest_configure(config: pytest.Config) -> None:
    """Without any redis-server binary, leave the Redis modules out of the coverage report.

    Their tests skip then, saying what to install (tests/test_redis_*.py), and the 95 %
    floor would fail the run for a missing binary, not for untested code. Only in that case:
    with a binary (always on CI, where the skip is an error) the module is measured.
    """
    from .redis_server import REDIS_SERVER

    if REDIS_SERVER is not None:
        return
    # pytest-cov's controller: none without --cov, nor yet in xdist workers (they do not
    # report). Its `cov` is what the `cov` fixture returns; under xdist the report comes
    # from `combining_cov`, which replaces `cov` once the workers' data is combined.
    controller = getattr(config.pluginmanager.get_plugin("_cov"), "cov_controller", None)
    if controller is None:
        return
    for cov in (controller.cov, getattr(controller, "combining_cov", None)):
        if cov is not None:
            omit = list(cov.get_option("report:omit") or [])
            cov.set_option("report:omit", [*omit, *_REDIS_MODULES])
    config.stash[_REDIS_STORE_OMITTED] = True


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if config.stash.get(_REDIS_STORE_OMITTED, False):
        terminalreporter.write_line(
            "coverage: the Redis modules (requests_criteo/_redis.py, redis_store.py, "
            "redis_ratelimit.py) left out of the report: no redis-server "
            "binary, so its tests were skipped (see the skip reason for what to install)"
        )


def wait_for_child(pid: int, within: float = 10.0) -> int:
    """The forked child's exit code; a child still running after *within* seconds is killed.

    A hang in a child (a lock it inherited held for ever) is then a failure, not a stuck run.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child was still running after {within:g} s: killed")


@contextlib.contextmanager
def held_in_another_thread(
    lock: Callable[[], contextlib.AbstractContextManager[object]],
) -> Iterator[threading.Event]:
    """Inside the block another thread holds ``lock()``; setting the event yielded lets go.

    For tests that fork while a lock is held by a thread the child will not have.
    """
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5)
    try:
        yield release
    finally:
        release.set()
        thread.join(10)


def left_in_a_forked_child(held: contextlib.AbstractContextManager[object]) -> int:
    """Fork; the child leaves *held*, a block the parent entered, and exits: its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            held.__exit__(None, None, None)
            code = 0
        finally:
            os._exit(code)
    return wait_for_child(pid)


@pytest.fixture(autouse=True)
def private_cache_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line caches tokens in the user's cache folder: never the real one here."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
