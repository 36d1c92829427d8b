"""Authorization-code apps: consent URL, code exchange, rotating refresh tokens, stores."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import multiprocessing
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from requests_criteo import (
    ConsentRequiredError,
    CriteoAuth,
    FileTokenStore,
    InsecureTransportError,
    MemoryTokenStore,
    StoredToken,
    TokenCache,
    TokenRequestError,
    code_from_redirect,
    consent_url,
)
from requests_criteo.__main__ import main
from requests_criteo.testing import FakeCriteo

from .conftest import (
    REDIRECT,
    SECRET,
    FakeClock,
    assert_no_secret,
    authorize,
    consent,
    exchange,
    fleet_worker,
)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeCriteo]:
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}) as server:
        yield server


def me(fake: FakeCriteo) -> str:
    return f"{fake.url}/2025-10/retail-media/me"


# -- the consent URL ---------------------------------------------------------------------


def test_consent_url_with_pkce() -> None:
    request = consent_url("client-1", REDIRECT)
    parts = urlsplit(request.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "consent.criteo.com", "/request")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == "client-1"
    assert query["redirect_uri"] == REDIRECT
    assert query["state"] == request.state
    assert len(request.state) >= 32
    assert query["code_challenge_method"] == "S256"
    assert request.code_verifier is not None
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert request.code_verifier not in repr(request)
    assert consent_url("client-1", REDIRECT).state != request.state


def test_consent_url_without_pkce_and_with_a_given_state() -> None:
    request = consent_url("client-1", REDIRECT, state="my-state", pkce=False)
    query = parse_qs(urlsplit(request.url).query)
    assert query["state"] == ["my-state"]
    assert "code_challenge" not in query
    assert request.code_verifier is None


@pytest.mark.parametrize("uri", ["http://app.example/cb", "http://10.0.0.5/cb"])
def test_an_http_redirect_uri_is_refused(uri: str) -> None:
    with pytest.raises(InsecureTransportError, match="Criteo requires https"):
        consent_url("client-1", uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/cb?x=1",  # a query must not excuse plain http
        "ftp://x.example/query",
        "javascript://x/query",
        "https://x.example./query",
        "https://app.example/cb#fragment",
    ],
)
def test_a_redirect_uri_with_a_query_is_still_checked(uri: str) -> None:
    with pytest.raises(ValueError, match="redirect_uri"):  # InsecureTransportError too
        consent_url("client-1", uri)


def test_a_redirect_uri_may_have_a_query() -> None:
    request = consent_url("client-1", "https://app.example/cb?tenant=7")
    query = parse_qs(urlsplit(request.url).query)
    assert query["redirect_uri"] == ["https://app.example/cb?tenant=7"]


def test_a_loopback_redirect_uri_is_accepted() -> None:
    assert "127.0.0.1" in consent_url("client-1", "http://127.0.0.1:8765/cb").url


@pytest.mark.parametrize(("client_id", "uri"), [("", REDIRECT), ("c", ""), ("c", "app/cb")])
def test_bad_consent_arguments(client_id: str, uri: str) -> None:
    with pytest.raises((TypeError, ValueError)):
        consent_url(client_id, uri)


def test_code_from_redirect() -> None:
    assert code_from_redirect(f"{REDIRECT}?code=abc&state=s1", "s1") == "abc"
    assert code_from_redirect("  abc \n", "s1") == "abc"  # a bare code
    with pytest.raises(ConsentRequiredError, match="state does not match"):
        code_from_redirect(f"{REDIRECT}?code=abc&state=forged", "s1")
    with pytest.raises(ConsentRequiredError, match="not given: access_denied"):
        code_from_redirect(f"{REDIRECT}?error=access_denied&state=s1", "s1")
    with pytest.raises(ConsentRequiredError, match="no authorization code"):
        code_from_redirect(f"{REDIRECT}?state=s1", "s1")
    with pytest.raises(ConsentRequiredError, match="no authorization code given"):
        code_from_redirect("", "s1")


# -- the grant, end to end -----------------------------------------------------------------


def test_consent_to_api_call_then_refreshes_with_rotation(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    store = MemoryTokenStore(clock=clock)
    auth = authorize(fake, clock, store=store)
    assert fake.code_exchanges == 1
    assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
    first = store.read(auth.credentials.source.key)
    assert first is not None
    assert first.refresh_token is not None
    for _ in range(3):
        clock.advance(841)  # a minute before expiry: refreshed
        r = requests.get(me(fake), auth=auth, timeout=5)
        assert r.status_code == 200
        assert r.history == []
    assert fake.refreshes == 3
    assert fake.refresh_token_reuses == 0
    last = store.read(auth.credentials.source.key)
    assert last is not None
    assert last.refresh_token not in (None, first.refresh_token)  # rotated and kept
    assert fake.token_endpoint_requests()[-1].form["grant_type"] == "refresh_token"


def test_a_401_refreshes_and_resends(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = authorize(fake, clock)
    requests.get(me(fake), auth=auth, timeout=5)
    fake.revoke()  # access tokens only: the refresh token still works
    r = requests.get(me(fake), auth=auth, timeout=5)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert fake.refreshes == 1


def test_on_token_sees_each_pair_before_it_is_used(fake: FakeCriteo, clock: FakeClock) -> None:
    saved: list[tuple[StoredToken, bool]] = []

    def on_token(token: StoredToken) -> None:
        used = any(c.bearer == token.access_token for c in fake.api_calls())
        saved.append((token, used))

    auth = authorize(fake, clock, on_token=on_token)
    requests.get(me(fake), auth=auth, timeout=5)
    clock.advance(841)
    requests.get(me(fake), auth=auth, timeout=5)
    assert len(saved) == 2
    assert all(not used for _, used in saved)
    assert saved[0][0].refresh_token != saved[1][0].refresh_token


def test_an_on_token_failure_reaches_the_caller_and_keeps_the_token(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    store = MemoryTokenStore(clock=clock)

    def broken(token: StoredToken) -> None:
        raise OSError("database down")

    with pytest.raises(OSError, match="database down"):
        authorize(fake, clock, store=store, on_token=broken)
    kept = [store.read(k) for k in list(store._tokens)]
    assert kept[0] is not None
    assert kept[0].refresh_token is not None


def test_a_code_is_used_once(fake: FakeCriteo, clock: FakeClock) -> None:
    code, verifier = consent(fake)
    exchange(fake, clock, code, verifier)
    with pytest.raises(ConsentRequiredError, match="consent again") as info:
        exchange(fake, clock, code, verifier, account="second")
    assert info.value.error == "invalid_grant"
    assert_no_secret(str(info.value), code, verifier or "")


def test_a_code_used_twice_for_the_same_account_is_refused(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    code, verifier = consent(fake)
    auth = exchange(fake, clock, code, verifier)
    with pytest.raises(ConsentRequiredError, match="consent again") as info:
        exchange(fake, clock, code, verifier)  # same account: a token is cached
    # The refusal loses nothing: the first exchange's tokens are still used.
    assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
    assert info.value.error == "invalid_grant"
    codes = [r.form.get("code") for r in fake.token_endpoint_requests()]
    assert codes == [code, code]  # sent both times


def test_a_new_code_is_exchanged_even_with_a_token_cached(
    fake: FakeCriteo, clock: FakeClock
) -> None:
    store = MemoryTokenStore(clock=clock)
    first = authorize(fake, clock, store=store)
    first_stored = store.read(first.credentials.source.key)
    second = authorize(fake, clock, store=store)  # a second consent, same account
    assert fake.code_exchanges == 2
    second_stored = store.read(second.credentials.source.key)
    assert first_stored is not None and second_stored is not None
    assert second_stored.access_token != first_stored.access_token
    assert second_stored.refresh_token != first_stored.refresh_token
    # Both auths (one cache key) now send the second consent's token.
    for auth in (first, second):
        assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
    assert {c.bearer for c in fake.api_calls()} == {second_stored.access_token}
    assert fake.token_requests == 2


def test_a_wrong_pkce_verifier_is_refused(fake: FakeCriteo, clock: FakeClock) -> None:
    code, _ = consent(fake)
    with pytest.raises(ConsentRequiredError):
        exchange(fake, clock, code, "x" * 64)
    assert fake.code_exchanges == 0


def test_without_pkce(fake: FakeCriteo, clock: FakeClock) -> None:
    code, verifier = consent(fake, pkce=False)
    assert verifier is None
    auth = exchange(fake, clock, code, verifier)
    assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200


def test_a_code_exchange_is_never_retried_blindly(
    fake: FakeCriteo, clock: FakeClock, sleeps: list[float]
) -> None:
    from requests_criteo import CriteoRetry

    code, verifier = consent(fake)
    fake.inject_token_fault(503)
    with pytest.raises(TokenRequestError) as info:
        exchange(
            fake,
            clock,
            code,
            verifier,
            retry=CriteoRetry(sleep=sleeps.append),
        )
    assert info.value.status_code == 503
    assert fake.token_requests == 1
    assert sleeps == []


def test_a_429_on_the_exchange_is_retried(fake: FakeCriteo, clock: FakeClock) -> None:
    from requests_criteo import CriteoRetry

    waits: list[float] = []
    code, verifier = consent(fake)
    fake.inject_token_fault(429, headers={"Retry-After": "2"})
    auth = exchange(
        fake,
        clock,
        code,
        verifier,
        retry=CriteoRetry(sleep=waits.append),
    )
    assert auth.token().access_token
    assert waits == [2.0]
    assert fake.code_exchanges == 1


def test_revoked_consent_is_final(fake: FakeCriteo, clock: FakeClock) -> None:
    store = MemoryTokenStore(clock=clock)
    auth = authorize(fake, clock, store=store)
    fake.revoke_consent("client-1")
    clock.advance(841)
    with pytest.raises(ConsentRequiredError, match="must consent again") as info:
        requests.get(me(fake), auth=auth, timeout=5)
    assert info.value.error == "invalid_grant"
    assert fake.token_requests == 2  # the exchange, and one refused refresh: no loop
    assert store.read(auth.credentials.source.key) is None  # the dead refresh token is gone
    with pytest.raises(ConsentRequiredError, match="no refresh token"):
        auth.token()
    assert fake.token_requests == 2


def test_starting_from_a_kept_refresh_token(fake: FakeCriteo, clock: FakeClock) -> None:
    store = MemoryTokenStore(clock=clock)
    seeded = authorize(fake, clock, store=store)
    kept = store.read(seeded.credentials.source.key)
    assert kept is not None
    assert kept.refresh_token is not None
    # A new process, with the saved refresh token: its own cache and store.
    other_cache = TokenCache(timer=clock)
    other_store = MemoryTokenStore(clock=clock)
    auth = CriteoAuth(
        "client-1",
        SECRET,
        refresh_token=kept.refresh_token,
        store=other_store,
        token_url=fake.token_url,
        cache=other_cache,
    )
    assert auth.grant == "authorization_code"
    assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200
    assert fake.refreshes == 1
    # The seed is stale now; built again with it, the auth uses the store's newer token.
    again = CriteoAuth(
        "client-1",
        SECRET,
        refresh_token=kept.refresh_token,
        store=other_store,
        token_url=fake.token_url,
        cache=other_cache,
    )
    again.invalidate()
    clock.advance(841)
    assert requests.get(me(fake), auth=again, timeout=5).status_code == 200
    assert fake.refreshes == 2
    assert fake.refresh_token_reuses == 0


def test_eight_threads_needing_a_refresh_cause_one(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = authorize(fake, clock)
    requests.get(me(fake), auth=auth, timeout=5)
    clock.advance(841)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def worker() -> None:
        barrier.wait()
        statuses.append(requests.get(me(fake), auth=auth, timeout=5).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == [200] * 8
    assert fake.refreshes == 1
    assert fake.refresh_token_reuses == 0


def test_bad_grant_arguments() -> None:
    with pytest.raises(ValueError, match="grant must be"):
        CriteoAuth("c", SECRET, grant="password")
    with pytest.raises(ValueError, match="goes with grant='authorization_code'"):
        CriteoAuth("c", SECRET, refresh_token="r", grant="client_credentials")
    with pytest.raises(ValueError, match="account"):
        CriteoAuth("c", SECRET, account="")
    with pytest.raises(TypeError, match="store must be a TokenStore"):
        CriteoAuth("c", SECRET, store="tokens.json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_token"):
        CriteoAuth("c", SECRET, on_token="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="redirect_uri"):
        CriteoAuth.from_authorization_code("c", SECRET, "code", "")


def test_an_auth_code_app_without_a_refresh_token(fake: FakeCriteo, clock: FakeClock) -> None:
    auth = CriteoAuth(
        "client-1", SECRET, grant="authorization_code", token_url=fake.token_url, timer=clock
    )
    with pytest.raises(ConsentRequiredError, match="exchange an authorization code first"):
        auth.token()
    assert fake.token_requests == 0


def test_pickled_auth_code_auth_carries_no_token(
    fake: FakeCriteo, clock: FakeClock, tmp_path: Path
) -> None:
    import pickle

    store = FileTokenStore(tmp_path / "t.json", clock=clock)
    auth = authorize(fake, clock, store=store)
    blob = pickle.dumps(auth)
    stored = store.read(auth.credentials.source.key)
    assert stored is not None
    assert stored.refresh_token is not None
    assert stored.refresh_token.encode() not in blob
    assert stored.access_token is not None
    assert stored.access_token.encode() not in blob
    copy = pickle.loads(blob)
    assert requests.get(me(fake), auth=copy, timeout=5).status_code == 200


# -- the file store, across real processes ------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("grant", ["authorization_code", "client_credentials"])
def test_four_processes_share_one_token_per_lifetime(tmp_path: Path, grant: str) -> None:
    ctx = multiprocessing.get_context("fork")
    clock_value = ctx.Value("d", 1000.0)
    failures = ctx.Value("i", 0)

    def clock() -> float:
        return float(clock_value.value)

    path = str(tmp_path / "tokens.json")
    with FakeCriteo(timer=clock, clients={"client-1": SECRET}, lifetime=60) as fake:
        if grant == "authorization_code":
            code, verifier = consent(fake)
            exchange(
                fake,
                clock,
                code,
                verifier,
                store=FileTokenStore(path, clock=clock),
            )
        rounds = 10
        barrier = ctx.Barrier(5)
        procs = [
            ctx.Process(
                target=fleet_worker,
                args=(
                    rounds,
                    barrier,
                    clock_value,
                    functools.partial(FileTokenStore, path),
                    fake.token_url,
                    me(fake),
                    grant,
                    failures,
                ),
            )
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        try:
            for _ in range(rounds):
                barrier.wait(30)  # the four make one call each at this time
                barrier.wait(30)
                with clock_value.get_lock():
                    clock_value.value += 10
        finally:
            for p in procs:
                p.join(30)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        assert failures.value == 0
        assert fake.api_requests == 4 * rounds
        # Calls at 1000, 1010, ... 1090; tokens live 60 s and are replaced at 30 s of age:
        # at 1000 (the exchange, or the first fetch), then 1030, 1060 and 1090.
        assert fake.tokens_issued == 4
        assert fake.token_requests == 4
        assert fake.refresh_token_reuses == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- the command line -------------------------------------------------------------------


class Browser(io.StringIO):
    """stdin for `authorize`: reads the printed consent URL, consents, returns the redirect."""

    def __init__(self, fake: FakeCriteo, out: io.StringIO, tamper: Callable[[str], str]) -> None:
        super().__init__()
        self.fake, self.out, self.tamper = fake, out, tamper

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        url = next(
            line.strip()
            for line in self.out.getvalue().splitlines()
            if line.strip().startswith("https://consent.criteo.com/")
        )
        return self.tamper(self.fake.consent_redirect(url)) + "\n"


@pytest.fixture
def cli_env(fake: FakeCriteo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def run_authorize(
    fake: FakeCriteo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tamper: Callable[[str], str] = lambda u: u,
    token_url_from_env: bool = False,
) -> tuple[int, str]:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", Browser(fake, out, tamper))
    if token_url_from_env:
        monkeypatch.setenv("CRITEO_TOKEN_URL", fake.token_url)
        token_url = []
    else:
        token_url = ["--token-url", fake.token_url]
    status = main(
        [
            "authorize",
            "--client-id",
            "client-1",
            "--redirect-uri",
            REDIRECT,
            "--store",
            str(tmp_path / "tokens.json"),
            *token_url,
        ]
    )
    return status, out.getvalue()


def test_cli_authorize_saves_tokens_and_echoes_nothing_secret(
    cli_env: None,
    fake: FakeCriteo,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = run_authorize(fake, tmp_path, monkeypatch)
    assert status == 0
    assert f"saved in {tmp_path / 'tokens.json'}" in out
    store = FileTokenStore(tmp_path / "tokens.json", clock=clock)
    auth = CriteoAuth(
        "client-1",
        SECRET,
        grant="authorization_code",
        store=store,
        token_url=fake.token_url,
        timer=clock,
    )
    stored = store.read(auth.credentials.source.key)
    assert stored is not None
    assert stored.refresh_token is not None
    assert stored.access_token is not None
    for secret in (SECRET, stored.refresh_token, stored.access_token):
        assert secret not in out + capsys.readouterr().err
    code = fake.token_endpoint_requests()[0].form["code"]
    assert code not in out
    assert requests.get(me(fake), auth=auth, timeout=5).status_code == 200


def test_cli_authorize_reads_the_token_endpoint_from_the_environment(
    cli_env: None, fake: FakeCriteo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _ = run_authorize(fake, tmp_path, monkeypatch, token_url_from_env=True)
    assert status == 0
    assert fake.token_requests == 1


def test_cli_authorize_refuses_a_forged_state(
    cli_env: None,
    fake: FakeCriteo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def forge(url: str) -> str:
        return url.replace("state=", "state=forged")

    status, _ = run_authorize(fake, tmp_path, monkeypatch, forge)
    assert status == 1
    assert "state does not match" in capsys.readouterr().err
    assert fake.token_requests == 0


def test_cli_authorize_with_the_redirect_as_an_argument(
    cli_env: None, fake: FakeCriteo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = consent_url("client-1", REDIRECT, state="s-42", pkce=False)
    redirect = fake.consent_redirect(request.url)
    args = [
        "authorize",
        "--client-id",
        "client-1",
        "--redirect-uri",
        REDIRECT,
        "--store",
        str(tmp_path / "t.json"),
        "--token-url",
        fake.token_url,
        "--no-pkce",
    ]
    assert main([*args, redirect]) == 2  # a URL needs --state to be checked
    assert "--state is needed" in capsys.readouterr().err
    assert main([*args, "--state", "s-42", redirect]) == 0
    assert fake.code_exchanges == 1
