"""Where requests-criteo's hot path spends its time (``--profile``), for its author.

Two views, both in memory (no socket):

* :func:`profile_candidates`: ``cProfile`` over N requests of each requests-criteo
  candidate; every function of ``requests_criteo`` (and the adapter's ``send``) with its
  calls per request and its own time per request. cProfile inflates small functions, so
  read it for the ranking rather than the absolute figures.
* :func:`breakdown`: the pieces of one decorated request timed alone (best of several
  interleaved loops, nanoseconds): the whole ``CriteoAuth`` call on a prepared request,
  ``CriteoAdapter.send`` over a transport that answers at once (and how much of it is
  ``apply``), requests calling the response hook on a 200, the elementary steps inside
  (the clock read that checks the cached token, the origin check, setting the header,
  registering the hook), and two costs of requests itself that fall on some paths only.
"""

from __future__ import annotations

import cProfile
import pstats
import time
import timeit
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks, dispatch_hook
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_auth_from_url

from requests_criteo import CriteoAdapter, CriteoAuth

from .candidates import CRITEO, MEMORY_BASE, Candidate
from .transports import (
    API_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_PATH,
    Cert,
    MemoryAdapter,
    Timeout,
)

__all__ = ["ProfileRow", "Step", "breakdown", "profile_candidates"]


@dataclass
class ProfileRow:
    """One function in a candidate's profile."""

    candidate: str
    function: str
    calls_per_request: float
    own_us_per_request: float
    cumulative_us_per_request: float


def profile_candidates(candidates: list[Candidate], requests_count: int) -> list[ProfileRow]:
    """Profile the requests-criteo candidates; rows sorted by own time, per candidate."""
    rows: list[ProfileRow] = []
    for candidate in candidates:
        if candidate.kind != CRITEO:
            continue
        for _ in range(200):
            candidate.call()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests_count):
            candidate.call()
        profiler.disable()
        stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        mine = []
        for (filename, line, name), (_, calls, own, cumulative, _) in stats.items():
            if "requests_criteo" not in filename and not (
                "benchmarks" in filename and name == "send"
            ):
                continue
            where = filename.rsplit("/", 2)
            mine.append(
                ProfileRow(
                    candidate=candidate.name,
                    function=f"{'/'.join(where[-2:])}:{line}({name})",
                    calls_per_request=calls / requests_count,
                    own_us_per_request=own * 1e6 / requests_count,
                    cumulative_us_per_request=cumulative * 1e6 / requests_count,
                )
            )
        mine.sort(key=lambda row: row.own_us_per_request, reverse=True)
        rows.extend(mine)
    return rows


@dataclass
class Step:
    """One piece of the hot path, timed alone."""

    name: str
    ns: float
    note: str = ""


def _best_ns(
    statements: dict[str, str], namespace: dict[str, Any], number: int, repeat: int = 15
) -> dict[str, float]:
    """Nanoseconds per run of each statement: the best of *repeat* interleaved loops.

    The statements are timed in turn, round after round, so that a figure subtracted from
    another was measured under the same conditions of the machine.
    """
    timers = {
        name: timeit.Timer(code, globals=namespace, timer=time.perf_counter)
        for name, code in statements.items()
    }
    best = dict.fromkeys(statements, float("inf"))
    names = list(statements)
    for index in range(repeat):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            best[name] = min(best[name], timers[name].timeit(number) / number * 1e9)
    return best


class _Instant(HTTPAdapter):
    """A transport that answers with one ready-made response: costs next to nothing."""

    response: requests.Response

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Cert = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return self.response


class _InstantCriteo(CriteoAdapter, _Instant):
    """``CriteoAdapter`` over :class:`_Instant`: what is left is the adapter's own work."""


def breakdown(number: int = 20_000) -> list[Step]:
    """Time the pieces of a decorated request; nanoseconds each."""
    token_session = requests.Session()
    token_session.mount(MEMORY_BASE + "/", MemoryAdapter())
    auth = CriteoAuth(
        CLIENT_ID,
        CLIENT_SECRET,
        token_url=MEMORY_BASE + TOKEN_PATH,
        token_session=token_session,
    )
    session = requests.Session()
    session.trust_env = False
    prepared = session.prepare_request(requests.Request("GET", MEMORY_BASE + API_PATH))
    auth(prepared.copy())  # the token is cached from here on
    ok = MemoryAdapter().send(auth(prepared.copy()))
    instant = _Instant()
    instant.response = ok
    adapter = _InstantCriteo(auth)
    adapter.response = ok
    header = "Bearer " + "A" * 700

    def fresh() -> requests.PreparedRequest:
        # PreparedRequest.copy() shares the hooks dict: give each copy its own, as
        # Session.prepare_request does, or the hook lists would grow without end.
        copy = prepared.copy()
        copy.hooks = default_hooks()
        return copy

    namespace: dict[str, Any] = {
        "fresh": fresh,
        "auth": auth,
        "adapter": adapter,
        "instant": instant,
        "ok": ok,
        "prefixes": auth._prefixes,
        "url": prepared.url,
        "header": header,
        "header_pair": ("Authorization", header),
        "headers": CaseInsensitiveDict(prepared.headers),
        "monotonic": time.monotonic,
        "hooks": {"response": []},
        "hook": auth.handle_401,
        "dispatch_hook": dispatch_hook,
        "with_hook": {"response": [auth.handle_401]},
        "without_hook": {"response": []},
        "send_options": {
            "stream": False,
            "timeout": None,
            "verify": True,
            "cert": None,
            "proxies": {},
        },
        "get_auth_from_url": get_auth_from_url,
        "check_header_validity": check_header_validity,
    }
    ns = _best_ns(
        {
            "copy": "fresh()",
            "call": "auth(fresh())",
            "apply": "auth.apply(fresh(), keep_authorization=True, hook=False)",
            "instant": "instant.send(fresh())",
            "adapter": "adapter.send(fresh())",
        },
        namespace,
        number // 4,
    )
    small = _best_ns(
        {
            "dispatch": "dispatch_hook('response', with_hook, ok, **send_options)",
            "no_hook": "dispatch_hook('response', without_hook, ok, **send_options)",
            "clock": "monotonic()",
            "origin": "url.startswith(prefixes)",
            "header": "headers._store['authorization'] = header_pair",
            "register": "hooks['response'].insert(0, hook); hooks['response'].pop()",
            "url_auth": "get_auth_from_url(url)",
            "validate": "check_header_validity(header_pair)",
        },
        namespace,
        number,
    )
    apply_ns = ns["apply"] - ns["copy"]
    adapter_ns = ns["adapter"] - ns["instant"]
    steps = [
        Step("auth= path: CriteoAuth.__call__ on a prepared request", ns["call"] - ns["copy"]),
        Step(
            "adapter path: CriteoAdapter.send, less its transport",
            adapter_ns,
            "CriteoAdapter over a transport returning a ready response, less that transport",
        ),
        Step("  of which auth.apply(keep_authorization=True, hook=False)", apply_ns),
        Step(
            "  of which the rest of CriteoAdapter.send (User-Agent, checks, super().send)",
            adapter_ns - apply_ns,
        ),
        Step(
            "requests calling the 401 hook on a 200 (auth= path)",
            small["dispatch"] - small["no_hook"],
            "dispatch_hook with the hook, less without it; the adapter (and so session()) "
            "registers no hook: it checks the status itself",
        ),
        Step("  clock read (time.monotonic) to check the cached token", small["clock"]),
        Step("  origin check: url.startswith(prefixes)", small["origin"]),
        Step("  set the Authorization header (in CaseInsensitiveDict's store)", small["header"]),
        Step("  register the hook (list insert + pop)", small["register"]),
        Step(
            "requests: get_auth_from_url, on every call without auth= (floor, adapter)",
            small["url_auth"],
            "requests' own work, skipped when a request has an auth object",
        ),
        Step(
            "requests: validating a 700-character Authorization header (floor only)",
            small["validate"],
            "requests validates headers it merges from the session, not one set by an auth",
        ),
        Step("(baseline, subtracted above) a fresh copy of the prepared request", ns["copy"]),
    ]
    token_session.close()
    session.close()
    return steps
