"""install()/uninstall(), credentials from the environment, and the legacy-script upgrade."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import requests_criteo
from requests_criteo import CriteoAuth, MissingCredentialsError, TokenCache
from requests_criteo.testing import FakeCriteo

from .conftest import CLIENT_ID, ORIGINAL_SEND, SECRET, FakeClock, assert_no_secret, summary

SCRIPT = Path(__file__).parent / "scripts" / "legacy_report.py"
ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.usefixtures("never_left_installed")


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    """Knows client-1 (the environment's) and CLIENT_ID (conftest's `criteo_auth`)."""
    with FakeCriteo(timer=clock, clients={"client-1": SECRET, CLIENT_ID: SECRET}) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeCriteo) -> None:
    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def me(fake: FakeCriteo) -> str:
    return f"{fake.url}/2025-10/retail-media/me"


# -- the environment ---------------------------------------------------------------------


def test_from_env(env: None, fake: FakeCriteo) -> None:
    auth = CriteoAuth.from_env()
    assert auth.client_id == "client-1"
    assert auth.token_url == fake.token_url
    assert auth.api_origins == (fake.url,)


def test_from_env_options_win(env: None) -> None:
    auth = CriteoAuth.from_env(token_url="https://api.criteo.com/oauth2/token")
    assert auth.token_url == "https://api.criteo.com/oauth2/token"


def test_from_env_reads_the_api_origins_unless_given(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRITEO_API_ORIGINS", "https://api.criteo.com, http://127.0.0.1:8080")
    assert CriteoAuth.from_env().api_origins == ("https://api.criteo.com", "http://127.0.0.1:8080")
    given = CriteoAuth.from_env(api_origins=["https://api.criteo.com"])
    assert given.api_origins == ("https://api.criteo.com",)
    monkeypatch.setenv("CRITEO_API_ORIGINS", "http://api.criteo.com")
    with pytest.raises(requests_criteo.InsecureTransportError):
        CriteoAuth.from_env()


def test_from_env_defaults_to_criteo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    monkeypatch.delenv("CRITEO_TOKEN_URL", raising=False)
    assert CriteoAuth.from_env().token_url == "https://api.criteo.com/oauth2/token"


@pytest.mark.parametrize("missing", ["CRITEO_CLIENT_ID", "CRITEO_CLIENT_SECRET"])
@pytest.mark.parametrize("empty", [True, False])
def test_a_missing_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, missing: str, empty: bool
) -> None:
    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    if empty:
        monkeypatch.setenv(missing, "")
    else:
        monkeypatch.delenv(missing)
    with pytest.raises(MissingCredentialsError, match=missing) as info:
        CriteoAuth.from_env()
    assert info.value.variable == missing
    assert isinstance(info.value, ValueError)
    assert_no_secret(str(info.value))
    with pytest.raises(MissingCredentialsError, match=missing):
        requests_criteo.session()
    with pytest.raises(MissingCredentialsError, match=missing):
        requests_criteo.install()


def test_session_from_env(env: None, fake: FakeCriteo) -> None:
    with requests_criteo.session() as s:
        assert s.get(me(fake), timeout=5).status_code == 200
    assert fake.tokens_issued == 1


def test_session_needs_both_or_neither() -> None:
    with pytest.raises(TypeError, match="both client_id and client_secret"):
        requests_criteo.session("client-1")


# -- install() ---------------------------------------------------------------------------


def test_install_reaches_plain_requests_calls_and_sessions(env: None, fake: FakeCriteo) -> None:
    old_session = requests.Session()  # made before install(): reached too
    requests_criteo.install()
    assert requests_criteo.installed() is not None
    assert requests.get(me(fake), timeout=5).status_code == 200
    with requests.Session() as s:
        assert s.get(me(fake), timeout=5).status_code == 200
    assert old_session.get(me(fake), timeout=5).status_code == 200
    old_session.close()
    assert fake.tokens_issued == 1
    assert fake.api_requests == 3


def test_install_adds_nothing_elsewhere(env: None, fake: FakeCriteo, clock: FakeClock) -> None:
    with FakeCriteo(timer=clock) as other:
        requests_criteo.install()
        r = requests.get(f"{other.url}/2025-10/retail-media/me", timeout=5)
    assert r.status_code == 401
    assert other.api_calls()[0].header("Authorization") is None
    assert fake.token_requests == 0


def test_uninstall_restores_requests_exactly(env: None, fake: FakeCriteo) -> None:
    requests_criteo.install()
    requests_criteo.uninstall()
    assert requests.Session.send is ORIGINAL_SEND
    assert requests_criteo.installed() is None
    assert requests.get(me(fake), timeout=5).status_code == 401
    requests_criteo.uninstall()  # twice is harmless


def test_install_as_a_context_manager(env: None, fake: FakeCriteo) -> None:
    auth = CriteoAuth.from_env()
    with requests_criteo.install(auth) as installed:
        assert installed is auth
        assert requests.get(me(fake), timeout=5).status_code == 200
    assert requests.Session.send is ORIGINAL_SEND
    assert requests.get(me(fake), timeout=5).status_code == 401


def test_nested_installs_restore_the_outer_one(env: None, fake: FakeCriteo) -> None:
    outer = CriteoAuth.from_env()
    inner = CriteoAuth.from_env(cache=TokenCache())
    with requests_criteo.install(outer):
        with requests_criteo.install(inner):
            assert requests_criteo.installed() is inner
        assert requests_criteo.installed() is outer
        assert requests.Session.send is not ORIGINAL_SEND
    assert requests_criteo.installed() is None


def test_install_needs_a_criteo_auth() -> None:
    with pytest.raises(TypeError, match="install\\(\\) needs a CriteoAuth"):
        requests_criteo.install(("user", "pass"))  # type: ignore[arg-type]
    assert requests.Session.send is ORIGINAL_SEND


def test_a_hand_rolled_call_to_the_token_endpoint_passes_untouched(
    env: None, fake: FakeCriteo
) -> None:
    requests_criteo.install()
    r = requests.post(
        fake.token_url,
        timeout=5,
        data={"grant_type": "client_credentials", "client_id": "client-1", "client_secret": SECRET},
    )
    assert r.status_code == 200
    seen = fake.token_endpoint_requests()
    assert len(seen) == 1  # no managed token request on the side
    assert seen[0].header("Authorization") is None


def test_a_stale_hand_rolled_token_is_resent_once_then_replaced(
    env: None, fake: FakeCriteo, clock: FakeClock
) -> None:
    stale = requests.post(
        fake.token_url,
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": "client-1",
            "client_secret": SECRET,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {stale}"}
    requests_criteo.install()
    r = requests.get(me(fake), headers=headers, timeout=5)
    assert r.status_code == 200
    assert r.history == []  # still valid: the caller's own header was kept
    assert fake.api_calls()[-1].bearer == stale
    clock.advance(901)  # the hand-rolled token expires
    r = requests.get(me(fake), headers=headers, timeout=5)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert fake.api_calls()[-1].bearer != stale
    calls_before = fake.api_requests
    r = requests.get(me(fake), headers=headers, timeout=5)  # known dead: replaced up front
    assert r.status_code == 200
    assert r.history == []
    assert fake.api_requests == calls_before + 1
    assert fake.tokens_issued == 2  # the hand-rolled one and one managed


def test_a_basic_header_is_replaced_not_kept(env: None, fake: FakeCriteo) -> None:
    requests_criteo.install()
    r = requests.get(me(fake), auth=("user", "pw"), timeout=5)
    assert r.status_code == 200
    header = fake.api_calls()[-1].header("Authorization")
    assert header is not None
    assert header.startswith("Bearer ")


# -- uninstall() while others use Session.send -------------------------------------------


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


# -- the legacy script, in a real subprocess, across several token lifetimes -------------


def run_legacy(fake: FakeCriteo, clock: FakeClock, upgraded: bool, lifetimes: int) -> list[str]:
    env = {
        **os.environ,
        "CRITEO_CLIENT_ID": "client-1",
        "CRITEO_CLIENT_SECRET": SECRET,
        "CRITEO_TOKEN_URL": fake.token_url,
        "CRITEO_API": fake.url,
        "LEGACY_UPGRADED": "1" if upgraded else "0",
        "NO_PROXY": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    statuses = []
    try:
        for _ in range(lifetimes * 3):
            proc.stdin.write("call\n")
            proc.stdin.flush()
            line = proc.stdout.readline().strip()
            if not line:
                break
            statuses.append(line)
            clock.advance(400)  # three calls per 15-minute lifetime
        proc.stdin.close()
        proc.wait(30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only if the script hangs
            proc.kill()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    return statuses


def test_the_legacy_script_breaks_after_one_lifetime(fake: FakeCriteo, clock: FakeClock) -> None:
    assert run_legacy(fake, clock, upgraded=False, lifetimes=4) == ["200", "200", "200", "401"]


def test_the_upgraded_legacy_script_survives_every_lifetime(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    statuses = run_legacy(fake, clock, upgraded=True, lifetimes=4)
    assert statuses == ["200"] * 12
    # Calls at fake times 0, 400, ... 4400. The script's own token serves until 900; then
    # one managed token per 15-minute lifetime (issued at 1200, 2400 and 3600): four in
    # all, not one per call. (The subprocess's own clock does not move with the fake's,
    # so here each renewal goes through a 401 and one resend; in real life its clock moves
    # too and the token is replaced a minute before it expires.)
    assert fake.tokens_issued == 4
    assert fake.token_requests == 4
    assert fake.api_requests == 12 + 3
