"""The command line: ``python -m requests_criteo`` (also installed as ``criteo-auth``).

What lives here: argument parsing and the subcommands — ``token`` (print a bearer token
for the environment's credentials), ``request`` (an authenticated call, its JSON answer
printed), ``authorize`` (consent, code exchange, tokens saved in a token file), ``logout``
(the token cache removed) and ``demo``. What does not: where tokens are kept between runs
(:mod:`._cli_tokens`), the demo's script (:mod:`._demo`, a session against
:class:`~requests_criteo.testing.FakeCriteo` on loopback), or any library behaviour of
its own.

Exit statuses: 0 success, 1 the call or the token request failed, 2 bad usage or
missing credentials. Nothing secret is ever printed, except the token that ``token``
exists to print.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeAlias

import requests

from . import __version__
from ._cli_pacing import pacing
from ._cli_tokens import UsageError as _UsageError
from ._cli_tokens import authorize_auth, command_auth, forget_cache, leaving_no_lock_file
from ._countdown import show_waits
from ._demo import demo
from ._text import safe_text
from .adapters import CriteoSession, mount
from .auth import CriteoAuth
from .consent import code_from_redirect, consent_url
from .envelope import raise_for_status
from .exceptions import CriteoAPIError, CriteoAuthError, MissingCredentialsError

__all__ = ["demo", "main"]


def token(args: argparse.Namespace, out: TextIO) -> int:
    """Print a bearer token for the environment's credentials. Tokens are kept in a
    per-user cache file between runs, so any number of runs within a token's life make one
    token request."""
    with leaving_no_lock_file(command_auth(args)) as auth:
        out.write(auth.token().access_token + "\n")
    return 0


def logout(args: argparse.Namespace, out: TextIO) -> int:
    """Remove the per-user token cache that token and request fill, and say what was
    done. A token file given to authorize with --store is left alone."""
    out.write(forget_cache() + "\n")
    return 0


def _params(pairs: Sequence[str]) -> list[tuple[str, str]]:
    params = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"--param takes key=value, got {pair!r}")
        params.append((key, value))
    return params


def _json_body(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise _UsageError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _UsageError(f"--json is not valid JSON: {exc}") from None


def request(args: argparse.Namespace, out: TextIO) -> int:
    """Make one authenticated call and print the answer: pretty on a terminal, compact when
    piped. Exits 1 with Criteo's error summary on stderr when the answer is 4xx or 5xx.
    Rate-limit waits, and with ``--redis`` the wait for the call's turn, are shown on stderr.
    """
    with leaving_no_lock_file(command_auth(args)) as auth:
        response = _send(auth, args)
    _print_answer(response, out)
    try:
        raise_for_status(response)
    except CriteoAPIError as exc:
        _complain(str(exc))
        return 1
    return 0


def _send(auth: CriteoAuth, args: argparse.Namespace) -> requests.Response:
    """The call ``request`` makes, on a Criteo origin only."""
    target: str = args.path_or_url
    if target.startswith("/"):
        url = auth.api_origins[0] + target
    elif "://" in target:
        url = target
    else:
        raise _UsageError(f"give a path starting with / or a full URL, got {target!r}")
    body = _json_body(args.json)
    params = _params(args.param)
    with CriteoSession() as s:
        mount(s, auth, **pacing(args.redis, args.per_minute, auth))
        prepared = s.prepare_request(
            requests.Request(args.method.upper(), url, params=params, json=body)
        )
        if not auth.credentials.scope.covers(prepared.url or ""):
            raise _UsageError(
                f"{url} is not on a Criteo origin ({', '.join(auth.api_origins)}); "
                "the token is only sent there"
            )
        return s.send(prepared, timeout=(10, 120))


def authorize(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    """Print the consent URL (with PKCE), read the URL the browser was sent back to (or the
    bare code) from stdin or an argument, check its state, exchange the code once, and save
    the access and refresh tokens in a token file. The client id comes from --client-id,
    else CRITEO_CLIENT_ID; the secret from CRITEO_CLIENT_SECRET (and the token endpoint
    from CRITEO_TOKEN_URL when set). Both, and the token file, are checked before the
    consent URL is printed. Nothing secret is printed.
    """
    with leaving_no_lock_file(authorize_auth(args)) as auth:
        return _consent_and_exchange(auth, args, out, stdin)


def _consent_and_exchange(
    auth: CriteoAuth, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> int:
    """What ``authorize`` does once every input is checked."""
    pkce = not args.no_pkce
    if args.redirect is None:
        request = consent_url(auth.client_id, args.redirect_uri, state=args.state, pkce=pkce)
        out.write(
            "Open this URL in a browser, sign in and consent:\n\n"
            f"  {request.url}\n\n"
            "Then paste the URL your browser was sent to (or just its code): "
        )
        out.flush()
        redirect = stdin.readline()
        state, verifier = request.state, request.code_verifier
    else:
        redirect, state, verifier = args.redirect, args.state, args.code_verifier
        if "?" in redirect and state is None:
            raise _UsageError("--state is needed to check a redirect URL given as an argument")
    code = code_from_redirect(redirect, state)
    # What CriteoAuth.from_authorization_code does, on the auth checked before the consent.
    auth.credentials.exchange(code, args.redirect_uri, verifier)
    path = str(Path(args.store).expanduser())
    out.write(
        f"\nTokens for client {auth.client_id} saved in {path} "
        f"(account {auth.account!r}). Use them with:\n"
        f"  criteo-auth token --store {shlex.quote(path)} --account {shlex.quote(auth.account)}\n"
        f"  CriteoAuth(client_id, client_secret, grant='authorization_code', "
        f"store=FileTokenStore({path!r}), account={auth.account!r})\n"
    )
    return 0


def _print_answer(response: requests.Response, out: TextIO) -> None:
    try:
        data = response.json()
    except ValueError:
        if response.text:
            out.write(response.text if response.text.endswith("\n") else response.text + "\n")
        return
    if out.isatty():
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per task.

    A subcommand's help page is the docstring of the function that runs it, so what the
    code says a command does and what ``--help`` says cannot drift apart.
    """
    parser = argparse.ArgumentParser(
        prog="criteo-auth",
        description="OAuth2 tokens for the Criteo APIs, the requests way.",
    )
    parser.add_argument("--version", action="version", version=f"requests-criteo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    token_parser = _subcommand(
        commands,
        token,
        "print a bearer token, for curl and shell scripts",
        credentials_from_env=True,
        epilog='example: curl -H "Authorization: Bearer $(criteo-auth token)" '
        "https://api.criteo.com/2025-10/retail-media/me",
    )
    _add_token_options(token_parser)
    request_parser = _subcommand(
        commands,
        request,
        "make an authenticated call and print its JSON answer",
        credentials_from_env=True,
    )
    _add_request_arguments(request_parser)
    authorize_parser = _subcommand(
        commands, authorize, "consent, code exchange and tokens saved, for authorization-code apps"
    )
    _add_authorize_arguments(authorize_parser)
    _subcommand(commands, logout, "remove the token cache", aliases=["forget"])
    commands.add_parser(
        "demo",
        help="run a scripted session against a local fake of Criteo",
        description="Start FakeCriteo on loopback and show first fetch, reuse, proactive "
        "refresh, a 401 answered by one refresh and resend, and 32 threads sharing one "
        "token. Needs no credentials and no network.",
    )
    return parser


# What add_subparsers() returns: argparse gives its class no public name.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _subcommand(
    commands: _Commands,
    handler: Callable[..., int],
    summary: str,
    *,
    credentials_from_env: bool = False,
    epilog: str | None = None,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """The subcommand that *handler* runs: named after it, its help page its docstring.

    argparse folds the docstring's line breaks and indentation into one paragraph.
    """
    description = handler.__doc__ or ""  # python -OO strips docstrings
    if credentials_from_env:
        description += (
            " Credentials come from CRITEO_CLIENT_ID and CRITEO_CLIENT_SECRET (and "
            "CRITEO_TOKEN_URL, for a fake or a proxy)."
        )
    parser = commands.add_parser(
        handler.__name__, help=summary, description=description, epilog=epilog, aliases=aliases
    )
    parser.set_defaults(run=handler)
    return parser


def _add_token_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-url", help="the token endpoint (default: Criteo's)")


def _add_token_options(parser: argparse.ArgumentParser) -> None:
    """Where ``token`` and ``request`` keep tokens, and the token endpoint."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--no-cache",
        action="store_true",
        help="keep the token in memory only: no cache file read or written",
    )
    where.add_argument(
        "--store",
        metavar="PATH",
        help="the token file authorize filled: use its authorization-code tokens",
    )
    parser.add_argument(
        "--account", help="the consent's name in the --store file (default: default)"
    )
    _add_token_url(parser)


def _add_request_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="GET, POST, PATCH, PUT or DELETE")
    parser.add_argument(
        "path_or_url", help="a path such as /2025-10/retail-media/me, or a full URL"
    )
    parser.add_argument(
        "--json", metavar="BODY", help="a JSON body, or @FILE to read it from a file"
    )
    parser.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a query parameter; repeat for more",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="take the call's turn in the app's rate budget kept in this Redis, shared "
        "with every run and worker using it (needs the redis extra)",
    )
    parser.add_argument(
        "--per-minute",
        type=float,
        help="that budget, calls a minute (default: Criteo's 250, 40 on reporting paths; "
        "10 per account for --store tokens)",
    )
    _add_token_options(parser)


def _add_authorize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-id", help="the app's client id (not secret; default: CRITEO_CLIENT_ID)"
    )
    parser.add_argument(
        "--redirect-uri", required=True, help="the https redirect URI declared in the app"
    )
    parser.add_argument(
        "--store", required=True, metavar="PATH", help="the token file (a FileTokenStore)"
    )
    parser.add_argument("--account", default="default", help="a name for this consent in the store")
    parser.add_argument(
        "--no-pkce", action="store_true", help="for apps that have PKCE switched off"
    )
    parser.add_argument(
        "--state", help="the state to send, or to check a redirect given as an argument"
    )
    parser.add_argument("--code-verifier", help="the PKCE verifier of an earlier consent request")
    _add_token_url(parser)
    parser.add_argument(
        "redirect", nargs="?", help="the redirect URL or the code (else read from stdin)"
    )


def _complain(message: str) -> None:
    """*message* on stderr, on one line of printable text: it may quote a server."""
    sys.stderr.write(f"criteo-auth: {safe_text(message, limit=2000)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m requests_criteo`` and ``criteo-auth``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(sys.stdout)
    run: Callable[..., int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        with _waits_on_stderr():
            if run is authorize:
                return authorize(args, sys.stdout, sys.stdin)
            return run(args, sys.stdout)
    except MissingCredentialsError as exc:
        _complain(_what_to_set(exc.variable, args.command))
        return 2
    except (_UsageError, ValueError, TypeError) as exc:
        _complain(str(exc))
        return 2
    except (CriteoAuthError, requests.RequestException) as exc:
        _complain(f"{type(exc).__name__}: {exc}")
        return 1


def _what_to_set(variable: str, command: str) -> str:
    """The missing-credential message for a shell user: what to export, or to pass."""
    how = f"export {variable}=... (from your app's page in Criteo's developer portal)"
    if variable == "CRITEO_CLIENT_ID" and command == "authorize":
        how += ", or pass --client-id"
    return f"{variable} is not set (or empty): {how}"


@contextlib.contextmanager
def _waits_on_stderr() -> Iterator[None]:
    """Where the command line shows its waits: the library's retry and rate-limit waits
    (logged at INFO before each sleep) as ``criteo-auth: ...`` lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("criteo-auth: %(message)s"))
    logger = logging.getLogger("requests_criteo")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    hide_waits = show_waits(sys.stderr, prefix="criteo-auth: ")  # counted down on a terminal
    try:
        yield
    finally:
        hide_waits()
        logger.removeHandler(handler)
        logger.setLevel(previous)


if __name__ == "__main__":
    sys.exit(main())
