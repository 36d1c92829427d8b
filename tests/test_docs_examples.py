"""Every code sample of the documentation runs: README.md and docs/*.md.

**Python samples.** Each fenced ``python`` block is executed on its own (one test per
block, named ``file:line``), in a fresh namespace holding only what a reader of the page
has — their app's credentials and the few names the prose defines:

* ``client_id`` and ``CLIENT_ID``: ``"my-client-id"``, an app's client id;
* ``client_secret`` and ``CLIENT_SECRET``: ``"my+client/secret=="``, its secret;
* ``redirect_uri`` and ``REDIRECT_URI``: ``"https://app.example/criteo/callback"``;
* ``url``: ``"https://api.criteo.com/2025-10/retail-media/me"``;
* ``ids``: three campaign ids.

``CRITEO_CLIENT_ID`` and ``CRITEO_CLIENT_SECRET`` hold the same credentials (for
``install()``, ``session()`` and ``CriteoAuth.from_env()``); ``CRITEO_TOKEN_URL`` and the
proxy variables are unset; the working directory is a fresh temporary one, so that token
files land there. A sample that defines ``test_*`` functions has them called, with the
pytest fixtures they name (``fake_criteo``, ``criteo_responses``, ``tmp_path``...).

The real https URLs answer through ``responses`` (and, for httpx clients, through their
transports, patched for the sample), as Criteo would: the token endpoint
``https://api.criteo.com/oauth2/token`` checks the credentials and issues tokens for the
client-credentials, authorization-code (any code) and refresh-token grants; every other
``https://api.criteo.com/...`` URL answers ``{"data": ...}`` to a token it issued and
Criteo's 401 envelope otherwise. Criteo's consent page is never fetched by the library;
samples that need a browser use ``FakeCriteo.consent_redirect``. Samples that need a
running fake start ``FakeCriteo`` themselves (plain http on 127.0.0.1 passes through).
Nothing else can leave the machine: a connection or a name lookup for a host that is not
loopback fails the sample.

**Shell samples.** Each ``criteo-auth ...`` or ``python -m requests_criteo ...`` command
line in a ``sh`` block runs as ``python -m requests_criteo ...`` (the same entry point)
against a ``FakeCriteo`` named by ``CRITEO_TOKEN_URL`` (``--token-url`` for
``authorize``, which does not read it), with ``--client-id`` given the fake's client id;
``authorize`` gets the browser's redirect from ``FakeCriteo.consent_redirect`` on stdin,
``--json @report.json`` a small report request, ``| jq .data`` is checked as a ``data``
key, and ``curl`` with ``$(criteo-auth token)`` is replayed with requests against the
fake. Other shell lines (venv and pip installs, which .ci/run runs word for word, and
``export``) are not executed. Every ``--option`` that docs/cli.md names must be in the
``--help`` of a subcommand.
"""

from __future__ import annotations

import gc
import inspect
import io
import ipaddress
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import requests
import responses

import requests_criteo

# The fixtures of requests-criteo's pytest plugin, for the samples' tests that ask for them
# (imported, so that they are here also when the plugin is not installed: a plain checkout).
from pytest_requests_criteo import criteo_responses, fake_criteo  # noqa: F401
from requests_criteo.__main__ import main as cli_main
from requests_criteo.testing import FakeCriteo

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

CLIENT_ID = "my-client-id"
CLIENT_SECRET = "my+client/secret=="
REDIRECT_URI = "https://app.example/criteo/callback"
TOKEN_URL = "https://api.criteo.com/oauth2/token"
NAMESPACE: dict[str, object] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "CLIENT_ID": CLIENT_ID,
    "CLIENT_SECRET": CLIENT_SECRET,
    "redirect_uri": REDIRECT_URI,
    "REDIRECT_URI": REDIRECT_URI,
    "url": "https://api.criteo.com/2025-10/retail-media/me",
    "ids": ["1001", "1002", "1003"],
}
SAMPLE_SECONDS = 5.0
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
LANGUAGES = {"python", "text", "json", "toml", "yaml", "ini", *SHELL_LANGUAGES}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


# -- collecting the samples ----------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced code block: the page, the line of its opening fence, its language."""

    path: Path
    line: int
    language: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        language = opening["info"].strip().split(" ")[0]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path.name}:{i + 1}: a fence that is never closed")
        blocks.append(Block(path, i + 1, language, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]
PYTHON_SAMPLES = [block for block in BLOCKS if block.language == "python"]


def test_every_code_block_says_its_language() -> None:
    # An untagged block, or a ```py one, would escape the tests below.
    untagged = [f"{b.id} ({b.language or 'no language'})" for b in BLOCKS]
    untagged = [u for u, b in zip(untagged, BLOCKS, strict=True) if b.language not in LANGUAGES]
    assert not untagged, f"tag these blocks with one of {sorted(LANGUAGES)}: {untagged}"
    assert len(PYTHON_SAMPLES) >= 25, "the collector lost the samples"


# -- what a reader has: Criteo behind responses, and no other network -------------------------


@dataclass
class Criteo:
    """Criteo's real URLs, answered by ``responses``; counts what it saw."""

    issued: set[str] = field(default_factory=set)
    used_refresh_tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    api_calls: list[tuple[str, str]] = field(default_factory=list)

    def token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.token_requests += 1
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        form = dict(parse_qsl(body))
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", "The client authentication failed")
        grant = form.get("grant_type")
        refresh: str | None = None
        if grant == "authorization_code":
            if not form.get("code") or not form.get("redirect_uri"):
                return _oauth_error(400, "invalid_request", "code and redirect_uri are required")
        elif grant == "refresh_token":
            # Any refresh token (a sample may bring one it kept), each one used once only.
            if not form.get("refresh_token") or form["refresh_token"] in self.used_refresh_tokens:
                return _oauth_error(400, "invalid_grant", "The refresh token is invalid")
            self.used_refresh_tokens.add(form["refresh_token"])
        elif grant != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", f"{grant!r} is not supported")
        access = f"criteo-access-{self.token_requests}"
        self.issued.add(access)
        if grant != "client_credentials":
            refresh = f"criteo-refresh-{self.token_requests}"
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": refresh,
        }
        return 200, {"Cache-Control": "no-store"}, json.dumps(answer)

    def api(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url or "").path
        self.api_calls.append((request.method or "", path))
        header = request.headers.get("Authorization", "")
        if header.removeprefix("Bearer ") not in self.issued:
            error = {
                "type": "authorization",
                "code": "authorization-token-expired",
                "instance": path,
                "title": "The authorization token has expired",
                "traceId": "5b0e4f4e-0000-4000-8000-000000000401",
            }
            return 401, {}, json.dumps({"errors": [error]})
        data = {"type": "Echo", "attributes": {"method": request.method, "path": path}}
        return 200, {}, json.dumps({"data": data})


def _answer_httpx(world: Criteo, request: httpx.Request, body: bytes) -> httpx.Response | None:
    """What *world* answers to an httpx request for Criteo (as to requests'); ``None`` for
    any other URL, which goes on its way (loopback only, the ``no_network`` fixture sees)."""
    url = str(request.url)
    if not url.startswith("https://api.criteo.com/"):
        return None
    prepared = requests.Request(
        request.method, url, headers=dict(request.headers), data=body
    ).prepare()
    answer = world.token if url == TOKEN_URL else world.api
    status, headers, text = answer(prepared)
    return httpx.Response(status, headers=headers, content=text.encode(), request=request)


def _answer_httpx_clients(monkeypatch: pytest.MonkeyPatch, world: Criteo) -> None:
    """httpx clients get *world*'s answers for Criteo's URLs, as requests' get responses'."""
    sync, async_ = httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request

    def handle(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        answered = _answer_httpx(world, request, request.read())
        return answered if answered is not None else sync(transport, request)

    async def handle_async(
        transport: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        answered = _answer_httpx(world, request, await request.aread())
        return answered if answered is not None else await async_(transport, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle_async)


def _oauth_error(status: int, error: str, description: str) -> tuple[int, dict[str, str], str]:
    return status, {}, json.dumps({"error": error, "error_description": description})


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse (and list) every connection and name lookup that would leave loopback."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(f"connect {address!r}")
            raise ConnectionRefusedError(f"the docs tests stay on loopback, not {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            attempts.append(f"lookup {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"the docs tests resolve no {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture
def criteo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: list[str]
) -> Iterator[Criteo]:
    """The world a sample runs in: credentials, a temporary directory, Criteo mocked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRITEO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CRITEO_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("CRITEO_TOKEN_URL", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    world = Criteo()
    _answer_httpx_clients(monkeypatch, world)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/"))
        rsps.add_callback(responses.POST, TOKEN_URL, callback=world.token)
        api = re.compile(r"https://api\.criteo\.com/(?!oauth2/token)")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            rsps.add_callback(method, api, callback=world.api)
        try:
            yield world
        finally:
            requests_criteo.uninstall()  # a sample that installed and did not uninstall
    assert not no_network, f"the sample tried to leave loopback: {no_network}"


# -- the Python samples ---------------------------------------------------------------------


def _tests_defined_by(namespace: dict[str, Any], filename: str) -> list[Callable[..., Any]]:
    return [
        value
        for name, value in namespace.items()
        if name.startswith("test_")
        and inspect.isfunction(value)
        and value.__code__.co_filename == filename
    ]


@pytest.mark.parametrize("sample", PYTHON_SAMPLES, ids=[s.id for s in PYTHON_SAMPLES])
def test_python_sample_runs(
    sample: Block, criteo: Criteo, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    filename = str(sample.path)
    # Padded so that a traceback names the line of the page.
    code = compile("\n" * sample.line + sample.source, filename, "exec")
    namespace: dict[str, Any] = {"__name__": "__docs_sample__", **NAMESPACE}
    started = time.perf_counter()
    exec(code, namespace)  # noqa: S102 - the documentation's own samples
    for test in _tests_defined_by(namespace, filename):
        test(**{name: request.getfixturevalue(name) for name in inspect.signature(test).parameters})
    elapsed = time.perf_counter() - started
    # What the sample leaked (an unclosed socket or file) must surface here, as an error.
    namespace.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.collect()
    assert elapsed < SAMPLE_SECONDS, f"{sample.id} took {elapsed:.1f} s"


# -- the shell samples ------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A ``criteo-auth`` command line of a ``sh`` block, as ``python -m`` arguments."""

    block: Block
    number: int
    line: str
    argv: tuple[str, ...]
    piped_to: str | None

    @property
    def id(self) -> str:
        page = self.block.path.relative_to(ROOT).as_posix()
        return f"{page}:{self.number}:{' '.join(self.argv[:2])}"

    @property
    def subcommand(self) -> str:
        return self.argv[0]


SHELL_VARIABLES = {"CLIENT_ID": FakeCriteo.CLIENT_ID, "REDIRECT_URI": REDIRECT_URI}


def _segments(line: str) -> list[tuple[list[str], str | None]]:
    """The simple commands of *line*, each with the command it is piped to."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    operators: list[str] = []
    for token in lexer:
        if token in ("|", "||", "&&", ";", "&"):
            operators.append(token)
            commands.append([])
        else:
            commands[-1].append(token)
    found = []
    for i, words in enumerate(commands):
        piped = " ".join(commands[i + 1]) if i < len(operators) and operators[i] == "|" else None
        found.append((words, piped))
    return found


def _our_arguments(words: list[str]) -> list[str] | None:
    if words and words[0] == "criteo-auth":
        return words[1:]
    python = bool(words) and Path(words[0]).name.startswith("python")
    if python and words[1:3] == ["-m", "requests_criteo"]:
        return words[3:]
    return None


def shell_commands(block: Block) -> list[Command]:
    commands = []
    number, pending = block.line, ""
    for raw in block.source.split("\n"):
        number += 1
        if block.language == "console":  # a session: commands follow a "$ " prompt
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        if raw.endswith("\\"):  # a continuation line
            pending += raw[:-1] + " "
            continue
        line, pending = pending + raw, ""
        pieces = [line, *re.findall(r"\$\((criteo-auth [^)]*)\)", line)]  # and $(...)
        for piece in pieces:
            for words, piped in _segments(piece):
                arguments = _our_arguments(words)
                if arguments is None:
                    continue
                expanded = [
                    SHELL_VARIABLES.get(w[1:], w) if w.startswith("$") else w for w in arguments
                ]
                commands.append(Command(block, number, line, tuple(expanded), piped))
    return commands


SH_BLOCKS = [b for b in BLOCKS if b.language in SHELL_LANGUAGES]
COMMANDS = [command for block in SH_BLOCKS for command in shell_commands(block)]
CLI_PAGE = ROOT / "docs" / "cli.md"


def test_the_command_line_page_shows_every_subcommand() -> None:
    shown = {c.subcommand for c in COMMANDS if c.block.path == CLI_PAGE}
    assert shown == {"token", "request", "authorize", "demo"}


@dataclass
class CliRun:
    fake: FakeCriteo
    cwd: Path
    env: dict[str, str]

    def argv(self, command: Command) -> list[str]:
        argv = [sys.executable, "-m", "requests_criteo", *command.argv]
        if "--client-id" in argv:
            argv[argv.index("--client-id") + 1] = FakeCriteo.CLIENT_ID
        if command.subcommand == "authorize":
            argv += ["--token-url", self.fake.token_url]
        return argv


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CliRun]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRITEO_") and k.upper() not in PROXY_VARIABLES
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    (tmp_path / "report.json").write_text(
        json.dumps({"data": {"type": "RetailMediaReportRequest", "attributes": {}}}),
        encoding="utf-8",
    )
    with FakeCriteo() as fake:
        env["CRITEO_CLIENT_ID"] = FakeCriteo.CLIENT_ID
        env["CRITEO_CLIENT_SECRET"] = FakeCriteo.CLIENT_SECRET
        env["CRITEO_TOKEN_URL"] = fake.token_url
        yield CliRun(fake, tmp_path, env)


class _Browser(io.StringIO):
    """stdin for ``authorize``: consents at the URL it printed, returns the redirect."""

    def __init__(self, fake: FakeCriteo, out: io.StringIO) -> None:
        super().__init__()
        self.fake, self.out = fake, out

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        shown = self.out.getvalue().splitlines()
        consent = next(line.strip() for line in shown if FakeCriteo.CONSENT_URL in line)
        return self.fake.consent_redirect(consent) + "\n"


def _run(cli: CliRun, command: Command) -> subprocess.CompletedProcess[str]:
    """The command line, run in this process (the subprocess path has its own test).

    In-process keeps the shell samples fast; ``main()`` is what ``python -m
    requests_criteo`` and ``criteo-auth`` call.
    """
    argv = cli.argv(command)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("CRITEO_")]:
            mp.delenv(name)
        for name, value in cli.env.items():
            if name.startswith("CRITEO_"):
                mp.setenv(name, value)
        mp.setenv("XDG_CACHE_HOME", str(cli.cwd / "cache"))  # token's cache, not ~/.cache
        mp.setenv("HOME", str(cli.cwd / "home"))
        mp.chdir(cli.cwd)
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        mp.setattr(sys, "stdin", _Browser(cli.fake, out))
        status = cli_main(argv[3:])
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def _authorize(cli: CliRun, command: Command) -> tuple[int, str]:
    """Run ``authorize``, answering its consent URL with the fake's redirect."""
    done = _run(cli, command)
    assert done.returncode == 0, done.stderr
    return done.returncode, done.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_shell_sample_runs(command: Command, cli: CliRun) -> None:
    fake = cli.fake
    if command.subcommand == "authorize":
        _, out = _authorize(cli, command)
        store = Path(cli.cwd, command.argv[command.argv.index("--store") + 1])
        assert f"saved in {store.name}" in out
        assert FakeCriteo.CLIENT_SECRET not in out
        assert "refresh_token" in store.read_text(encoding="utf-8")
        assert fake.code_exchanges == 1
        return
    done = _run(cli, command)
    assert done.returncode == 0, done.stderr
    if command.subcommand == "demo":
        assert "demo passed" in done.stdout
    elif command.subcommand == "token":
        token = done.stdout.strip()
        assert done.stdout == token + "\n"
        assert fake.tokens_issued == 1
        if command.line.lstrip().startswith("curl"):
            # The curl line itself, sent to the fake instead of Criteo.
            path = urlsplit(re.findall(r"https://api\.criteo\.com\S*", command.line)[0]).path
            with requests.get(
                fake.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5
            ) as r:
                assert r.status_code == 200
    else:
        answer = json.loads(done.stdout)
        assert "data" in answer
        if command.piped_to is not None:
            assert command.piped_to == "jq .data", f"no stand-in for | {command.piped_to}"
        method, target = command.argv[1], command.argv[2]
        (seen,) = fake.api_calls()
        assert (seen.method, urlsplit(seen.path).path) == (method, target)
        if "--json" in command.argv:
            sent = (cli.cwd / command.argv[command.argv.index("--json") + 1][1:]).read_text()
            assert json.loads(seen.body) == json.loads(sent)
        if "--param" in command.argv:
            assert command.argv[command.argv.index("--param") + 1] in seen.path


def _help(subcommand: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli_main([subcommand, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("subcommand", ["token", "request", "authorize", "demo"])
def test_every_subcommand_has_help(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert f"usage: criteo-auth {subcommand}" in _help(subcommand, capsys)


def test_every_option_the_cli_page_names_exists(capsys: pytest.CaptureFixture[str]) -> None:
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", CLI_PAGE.read_text(encoding="utf-8")))
    helps = "".join(_help(s, capsys) for s in ("token", "request", "authorize", "demo"))
    missing = sorted(option for option in named - {"--help"} if option not in helps)
    assert not missing, f"docs/cli.md names options the command line does not have: {missing}"
