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
    from requests_criteo import _cache

    monkeypatch.setattr(_cache, "margin_for", lambda lifetime: lifetime)
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
