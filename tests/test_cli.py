"""The command line: the demo, help, the exit statuses, and the tokens it keeps."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from requests_criteo.__main__ import demo, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every command line of these tests keeps its token cache under *tmp_path*, never in
    the real ``~/.cache``: ``XDG_CACHE_HOME`` (Linux), and ``HOME`` (elsewhere)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "cache"


def test_demo_passes_and_reports_counts() -> None:
    out = io.StringIO()
    assert demo(out) == 0
    text = out.getvalue()
    assert "demo passed" in text
    assert "FAIL" not in text
    assert "token requests: 4" in text
    assert "32/32 HTTP 200" in text


def test_demo_fails_loudly_when_the_library_misbehaves(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens that are stale the moment they arrive: every call fetches, and the demo says so.
    from requests_criteo import _cache, _source

    monkeypatch.setattr(_cache, "margin_for", lambda lifetime: lifetime)
    monkeypatch.setattr(_source, "margin_for", lambda lifetime: lifetime)
    out = io.StringIO()
    assert demo(out) == 1
    assert "[FAIL] 5 more calls reuse it" in out.getvalue()
    assert "demo FAILED" in out.getvalue()


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "requests-criteo" in capsys.readouterr().out


def test_python_dash_m_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "requests_criteo", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "demo passed" in done.stdout


# -- token and request, against FakeCriteo -------------------------------------------------

from collections.abc import Iterator  # noqa: E402

from requests_criteo import FileTokenStore, StoredToken  # noqa: E402
from requests_criteo.consent import consent_url  # noqa: E402
from requests_criteo.testing import FakeCriteo  # noqa: E402

from .conftest import SECRET  # noqa: E402


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCriteo]:
    with FakeCriteo(clients={"client-1": SECRET}) as server:
        monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
        monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("CRITEO_TOKEN_URL", server.token_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield server


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_token_prints_a_token_and_nothing_else(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token"]) == 0
    out, err = capsys.readouterr()
    issued = fake.api_calls()  # none: the token endpoint only
    assert issued == []
    token = out.strip()
    assert token.count(".") == 2  # the fake's JWT-looking token
    assert out == token + "\n"
    assert SECRET not in out + err


def test_the_printed_token_works(fake: FakeCriteo, capsys: pytest.CaptureFixture[str]) -> None:
    import requests

    main(["token"])
    token = capsys.readouterr().out.strip()
    r = requests.get(
        f"{fake.url}/2025-10/retail-media/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert r.status_code == 200


def test_token_with_bad_credentials_exits_1(
    fake: FakeCriteo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET + "-wrong")
    assert main(["token"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "invalid_client" in err
    assert SECRET not in err


@pytest.mark.parametrize("command", [["token"], ["request", "GET", "/2025-10/x"]])
def test_missing_credentials_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.delenv("CRITEO_CLIENT_ID", raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "export CRITEO_CLIENT_ID=" in err  # what a shell user does about it
    assert "CriteoAuth(" not in err


def test_request_prints_the_answer_compact_when_piped(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["request", "GET", "/2025-10/retail-media/me"]) == 0
    out, err = capsys.readouterr()
    assert (
        out
        == '{"data":{"id":"client-1","type":"Application","attributes":{"clientId":"client-1"}}}\n'
    )
    assert err == ""
    assert "requests-criteo/" in fake.api_calls()[0].headers["User-Agent"]


def test_request_gives_no_token_to_a_redirect_back_from_another_site(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Criteo -> another site -> Criteo: the last hop arrives without a token."""
    with FakeCriteo() as elsewhere:
        fake.set_response("/2025-10/go", status=307, headers={"Location": f"{elsewhere.url}/back"})
        elsewhere.set_response(
            "/back",
            status=307,
            headers={"Location": f"{fake.url}/2025-10/retail-media/me"},
            authorize=False,
        )
        assert main(["request", "GET", "/2025-10/go"]) == 1
    first, last = fake.api_calls()
    assert first.bearer is not None
    assert last.path == "/2025-10/retail-media/me"
    assert last.bearer is None
    assert fake.token_requests == 1
    assert "401" in capsys.readouterr().err


def test_request_pretty_on_a_terminal(fake: FakeCriteo, monkeypatch: pytest.MonkeyPatch) -> None:
    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    assert main(["request", "GET", f"{fake.url}/2025-10/retail-media/me"]) == 0
    assert tty.getvalue().startswith('{\n  "data": {\n    "id": "client-1"')


def test_request_with_json_and_params(
    fake: FakeCriteo, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "request",
                "post",
                "/2025-10/retail-media/reports",
                "--json",
                '{"ids": [1, 2]}',
                "--param",
                "limit=10",
                "--param",
                "q=a b",
            ]
        )
        == 0
    )
    seen = fake.api_calls()[0]
    assert seen.method == "POST"
    assert seen.path == "/2025-10/retail-media/reports?limit=10&q=a+b"
    assert seen.body == b'{"ids": [1, 2]}'
    assert '"method":"POST"' in capsys.readouterr().out


def test_request_json_from_a_file(fake: FakeCriteo, tmp_path: object) -> None:
    from pathlib import Path

    body = Path(str(tmp_path)) / "body.json"
    body.write_text('{"a": 1}')
    assert main(["request", "PATCH", "/2025-10/x", "--json", f"@{body}"]) == 0
    assert fake.api_calls()[0].body == b'{"a": 1}'


def test_a_failed_request_exits_1_with_criteo_s_summary(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.set_response(
        "/2025-10/retail-media/accounts",
        status=403,
        json={
            "errors": [
                {
                    "code": "insufficient-advertisers-permissions",
                    "title": "Missing rights",
                    "traceId": "trace-42",
                    "type": "authorization",
                }
            ]
        },
    )
    assert main(["request", "GET", "/2025-10/retail-media/accounts"]) == 1
    out, err = capsys.readouterr()
    assert '"insufficient-advertisers-permissions"' in out
    assert "HTTP 403" in err
    assert "insufficient-advertisers-permissions: Missing rights (trace id trace-42)" in err


def test_rate_limit_waits_are_shown_on_stderr(
    fake: FakeCriteo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from .conftest import FakeClock

    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # sleeping moves the fake's clock on
        slept.append(seconds)
        clock.advance(seconds)

    def unix_time() -> float:  # one clock for the fake, and for the CLI's retry policy
        return 1_700_000_000.0 + clock()

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "time", unix_time)
    fake.timer = clock
    fake.wall_clock = unix_time
    fake.rate_limit = 1
    assert main(["request", "GET", "/2025-10/a"]) == 0
    assert main(["request", "GET", "/2025-10/b"]) == 0  # over the limit once, then waits
    err = capsys.readouterr().err
    # The fake's minute ends at 1020 on its clock; x-ratelimit-reset rounds up: 21 s.
    assert "criteo-auth: Criteo asked to wait: retrying in 21.00 s (HTTP 429)" in err
    assert slept == [21.0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["request", "GET", "2025-10/x"], "give a path starting with /"),
        (["request", "GET", "https://evil.example/2025-10/x"], "is not on a Criteo origin"),
        (["request", "GET", "/x", "--json", "{nope"], "--json is not valid JSON"),
        (["request", "GET", "/x", "--json", "@/nonexistent/body.json"], "cannot read"),
        (["request", "GET", "/x", "--param", "novalue"], "--param takes key=value"),
    ],
)
def test_bad_usage_exits_2(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert fake.api_requests == 0


def test_an_unreachable_token_endpoint_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    monkeypatch.setattr(time, "sleep", lambda s: None)
    with FakeCriteo() as gone:
        url = gone.token_url
    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    assert main(["token", "--token-url", url]) == 1
    assert "could not connect to the token endpoint" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["token", "request", "authorize", "logout", "forget", "demo"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: criteo-auth" in capsys.readouterr().out


# -- the token cache, across processes ----------------------------------------------------

REDIRECT = "https://app.example/criteo/callback"


def run_cli(fake: FakeCriteo, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m requests_criteo *args`` in a process of its own, with this test's
    credentials, fake and cache folder (the monkeypatched environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRITEO_")}
    env.update(
        CRITEO_CLIENT_ID="client-1",
        CRITEO_CLIENT_SECRET=SECRET,
        CRITEO_TOKEN_URL=fake.token_url,
        NO_PROXY="127.0.0.1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-m", "requests_criteo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def cached_tokens(cache_home: Path) -> Path:
    return cache_home / "requests-criteo" / "tokens.json"


def test_three_token_processes_make_one_token_request(fake: FakeCriteo) -> None:
    runs = [run_cli(fake, "token") for _ in range(3)]
    assert [r.returncode for r in runs] == [0, 0, 0], runs[-1].stderr
    assert len({r.stdout for r in runs}) == 1  # the same token, three times
    assert fake.token_requests == 1


def test_no_cache_makes_one_token_request_per_run(fake: FakeCriteo, cache_home: Path) -> None:
    for _ in range(2):
        assert run_cli(fake, "token", "--no-cache").returncode == 0
    assert fake.token_requests == 2
    assert not cached_tokens(cache_home).exists()


def test_request_shares_the_cache_with_token(fake: FakeCriteo) -> None:
    assert run_cli(fake, "token").returncode == 0
    done = run_cli(fake, "request", "GET", "/2025-10/retail-media/me")
    assert done.returncode == 0, done.stderr
    assert fake.token_requests == 1


def test_the_cache_file_is_0600_in_a_0700_folder(fake: FakeCriteo, cache_home: Path) -> None:
    assert main(["token"]) == 0
    path = cached_tokens(cache_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert SECRET not in path.read_text(encoding="utf-8")
    assert os.listdir(path.parent) == ["tokens.json"]  # no lock file left beside it


def test_logout_removes_the_cache_and_the_next_run_fetches_anew(
    fake: FakeCriteo, cache_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(fake, "token").returncode == 0
    assert main(["logout"]) == 0
    assert f"removed the token cache {cached_tokens(cache_home)}" in capsys.readouterr().out
    assert os.listdir(cached_tokens(cache_home).parent) == []
    assert run_cli(fake, "token").returncode == 0
    assert fake.token_requests == 2


def test_logout_with_nothing_cached_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forget"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def authorize_with_redirect(fake: FakeCriteo, store: Path, *options: str) -> int:
    """``authorize`` in this process, the browser's redirect given as an argument."""
    request = consent_url("client-1", REDIRECT, state="s-1", pkce=False)
    redirect = fake.consent_redirect(request.url)
    args = ["--redirect-uri", REDIRECT, "--store", str(store), "--no-pkce", "--state", "s-1"]
    return main(["authorize", *args, *options, redirect])


def test_token_and_request_use_the_tokens_authorize_saved(fake: FakeCriteo, tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    assert authorize_with_redirect(fake, store, "--account", "shop") == 0
    done = run_cli(fake, "token", "--store", str(store), "--account", "shop")
    assert done.returncode == 0, done.stderr
    used = run_cli(fake, "request", "GET", "/2025-10/x", "--store", str(store), "--account", "shop")
    assert used.returncode == 0, used.stderr
    assert fake.token_requests == 1  # the code exchange; its access token is reused
    assert fake.api_calls()[0].bearer == done.stdout.strip()
    assert list(tmp_path.glob("*.lock")) == []


def test_a_stored_authorization_code_token_is_refreshed_through_its_refresh_token(
    fake: FakeCriteo, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    assert authorize_with_redirect(fake, path) == 0
    # Age the stored token by 20 minutes instead of waiting for it to expire.
    store = FileTokenStore(path)
    (key,) = json.loads(path.read_text(encoding="utf-8"))["tokens"]
    old = store.read(key)
    assert old is not None
    store.write(
        key, StoredToken(old.access_token, old.lifetime, old.obtained_at - 1200, old.refresh_token)
    )
    done = run_cli(fake, "token", "--store", str(path))
    assert done.returncode == 0, done.stderr
    assert fake.refreshes == 1
    assert done.stdout.strip() != old.access_token
    assert fake.refresh_token_reuses == 0


def test_account_needs_the_store_it_names(
    fake: FakeCriteo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--account", "shop"]) == 2
    assert "give that file with --store" in capsys.readouterr().err
    assert fake.token_requests == 0


def test_authorize_reads_the_client_id_from_the_environment(
    fake: FakeCriteo, tmp_path: Path
) -> None:
    assert authorize_with_redirect(fake, tmp_path / "tokens.json") == 0  # no --client-id
    assert fake.code_exchanges == 1


class NoBrowser(io.StringIO):
    """stdin that nobody should read: the command was to fail before asking."""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise AssertionError("the consent URL was printed and the redirect asked for")


@pytest.mark.parametrize(
    ("variable", "options"),
    [("CRITEO_CLIENT_SECRET", []), ("CRITEO_CLIENT_ID", ["--no-pkce"])],
)
def test_authorize_fails_before_the_consent_url_when_a_credential_is_missing(
    fake: FakeCriteo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    options: list[str],
) -> None:
    monkeypatch.delenv(variable)
    monkeypatch.setattr(sys, "stdin", NoBrowser())
    args = ["authorize", "--redirect-uri", REDIRECT, "--store", str(tmp_path / "t.json")]
    assert main([*args, *options]) == 2
    out, err = capsys.readouterr()
    assert "consent.criteo.com" not in out
    assert f"export {variable}=" in err
    assert fake.token_requests == 0


def test_authorize_fails_before_the_consent_url_when_the_store_is_unusable(
    fake: FakeCriteo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(sys, "stdin", NoBrowser())
    store = tmp_path / "a-file" / "tokens.json"  # its folder is a file
    assert main(["authorize", "--redirect-uri", REDIRECT, "--store", str(store)]) == 2
    out, err = capsys.readouterr()
    assert "consent.criteo.com" not in out
    assert "(--store)" in err


def test_authorize_leaves_no_lock_file(fake: FakeCriteo, tmp_path: Path) -> None:
    assert authorize_with_redirect(fake, tmp_path / "tokens.json") == 0
    assert sorted(os.listdir(tmp_path)) == ["tokens.json"]


def test_an_authorize_refused_before_the_consent_url_leaves_no_lock_file(
    fake: FakeCriteo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text("{}")
    tokens.chmod(0o666)  # writable by others: refused, after the check took the lock
    assert authorize_with_redirect(fake, tokens) == 2
    assert "(--store)" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["tokens.json"]


@pytest.mark.parametrize("command", ["token", "authorize"])
def test_store_cannot_name_the_cache_that_logout_removes(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from requests_criteo._cli_tokens import cache_path

    monkeypatch.setenv("CRITEO_CLIENT_ID", "client-1")
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", SECRET)
    options = ["--redirect-uri", REDIRECT] if command == "authorize" else []
    assert main([command, *options, "--store", str(cache_path())]) == 2
    assert "own token cache" in capsys.readouterr().err


def test_a_failed_authorize_leaves_no_lock_file_either(
    fake: FakeCriteo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--redirect-uri", REDIRECT, "--store", str(tmp_path / "tokens.json")]
    redirect = f"{REDIRECT}?code=c-1&state=forged"
    assert main(["authorize", *args, "--state", "s-1", redirect]) == 1
    assert "state does not match" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
