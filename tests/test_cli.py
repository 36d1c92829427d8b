"""The command line: the demo, help, and the exit statuses."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from requests_criteo.__main__ import demo, main


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
    assert "CRITEO_CLIENT_ID" in capsys.readouterr().err


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


@pytest.mark.parametrize("command", ["token", "request", "demo"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: criteo-auth" in capsys.readouterr().out
