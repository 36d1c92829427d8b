"""Where the command line keeps its tokens: the per-user cache, or a store ``authorize`` filled.

What lives here: the path of the cache file (the platform's user cache folder, found by
``platformdirs``), the auth that ``token`` and ``request`` use (cached, ``--no-cache``, or
``--store``/``--account``), the checks ``authorize`` makes before it asks for consent, and
``logout``. What does not: parsing and printing (:mod:`.__main__`), the rules of the files
themselves (:class:`~requests_criteo.FileTokenStore`: 0700 folder, 0600 file, the lock).

Like ``gcloud auth print-access-token``, ``criteo-auth token`` run a hundred times in a
shell loop makes one token request per token lifetime: the first run stores the token in
the cache file, the next ones find it there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from ._credentials import DEFAULT_ACCOUNT, DEFAULT_TOKEN_URL, required_env
from ._source import AUTHORIZATION_CODE
from .auth import CriteoAuth
from .exceptions import CriteoAuthError, TokenStoreError
from .file_store import FileTokenStore

__all__ = [
    "UsageError",
    "authorize_auth",
    "cache_path",
    "command_auth",
    "forget_cache",
    "leaving_no_lock_file",
]

#: The name of the cache folder, and of nothing else: tokens only.
_APP = "requests-criteo"
_CACHE_FILE = "tokens.json"


class UsageError(Exception):
    """Wrong input on the command line: exit status 2."""


def cache_path() -> Path:
    """The per-user token cache: ``$XDG_CACHE_HOME/requests-criteo/tokens.json`` on Linux
    (``~/.cache/...`` by default), ``~/Library/Caches/requests-criteo/`` on macOS,
    ``%LOCALAPPDATA%\\requests-criteo\\Cache\\`` on Windows."""
    return platformdirs.user_cache_path(_APP, appauthor=False) / _CACHE_FILE


def _token_url(args: argparse.Namespace) -> str:
    """``--token-url``, else ``CRITEO_TOKEN_URL``, else Criteo's: every command's endpoint."""
    return args.token_url or os.environ.get("CRITEO_TOKEN_URL", "") or DEFAULT_TOKEN_URL


def command_auth(args: argparse.Namespace) -> CriteoAuth:
    """The auth of ``token`` and ``request``, with the environment's credentials.

    ``--store``: the authorization-code tokens ``authorize`` saved there, refreshed through
    their refresh token; ``--no-cache``: this process's memory only; else client-credentials
    tokens kept in the per-user cache file.
    """
    options: dict[str, Any] = {"token_url": _token_url(args)}
    if args.store is not None:
        options.update(
            store=_own_store(args.store),
            account=args.account or DEFAULT_ACCOUNT,
            grant=AUTHORIZATION_CODE,
        )
    elif args.account is not None:
        raise UsageError(
            "--account names a consent in the token file that authorize filled: "
            "give that file with --store PATH"
        )
    elif not args.no_cache:
        options["store"] = FileTokenStore(cache_path())
    return CriteoAuth.from_env(**options)


def authorize_auth(args: argparse.Namespace) -> CriteoAuth:
    """The auth ``authorize`` exchanges its code with, every input checked beforehand.

    Built before the consent URL is printed, so that a missing secret or an unusable token
    file is reported before the user spends a consent on it: the client id (``--client-id``,
    else ``CRITEO_CLIENT_ID``), ``CRITEO_CLIENT_SECRET``, the token URL, and the token file
    (it can be locked and read, and its folder written).
    """
    client_id = args.client_id or required_env("CRITEO_CLIENT_ID")
    store = _own_store(args.store)
    auth = CriteoAuth(
        client_id,
        required_env("CRITEO_CLIENT_SECRET"),
        store=store,
        account=args.account,
        grant=AUTHORIZATION_CODE,
        token_url=_token_url(args),
    )
    try:
        _check_usable(store, auth)
    except BaseException:
        _remove_lock_file(store)  # the check took the lock: no .lock file left on failure
        raise
    return auth


def _check_usable(store: FileTokenStore, auth: CriteoAuth) -> None:
    try:
        store.read(auth.credentials.source.key)  # the lock, the file's checks, its format
    except TokenStoreError as exc:
        raise UsageError(f"{exc} (--store)") from None
    if not os.access(store.path.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write token files in {store.path.parent} (--store): no access")


def _own_store(path: str) -> FileTokenStore:
    """The token file given with ``--store``, which must not be the cache ``logout`` empties."""
    store = FileTokenStore(path)
    if store.path.resolve() == cache_path().resolve():
        raise UsageError(
            f"{path} is the command line's own token cache, which logout removes: keep "
            "authorize's tokens in a file of their own (--store)"
        )
    return store


def _remove_lock_file(store: FileTokenStore) -> None:
    """Remove *store*'s lock file; tidying only, so a failure leaves it and says nothing."""
    with contextlib.suppress(CriteoAuthError):
        store.remove_lock_file()


@contextlib.contextmanager
def leaving_no_lock_file(auth: CriteoAuth) -> Iterator[CriteoAuth]:
    """*auth*, its token file's lock file removed once the command is done with it.

    Removing it is tidying, not the command's result: if it fails (another process holds
    the lock past its timeout, say), the file stays and the command's outcome stands.
    """
    try:
        yield auth
    finally:
        store = auth.store
        if isinstance(store, FileTokenStore):
            _remove_lock_file(store)


def forget_cache() -> str:
    """Remove the cache file; what was done, in words.

    The file is removed under the store's lock, so a ``token`` run writing it meanwhile
    finishes first. The tokens themselves stay valid at Criteo until they expire (at most
    15 minutes): Criteo documents no way to revoke them.
    """
    path = cache_path()
    if not os.path.lexists(path):
        return f"no token cache at {path}: nothing to remove"
    store = FileTokenStore(path)
    try:
        with store.lock("logout"):
            path.unlink(missing_ok=True)
        store.remove_lock_file()
    except (OSError, TokenStoreError) as exc:
        raise TokenStoreError(f"cannot remove the token cache {path}: {exc}", str(path)) from exc
    return (
        f"removed the token cache {path}; the tokens it held stay valid at Criteo until "
        "they expire (15 minutes at most)"
    )
