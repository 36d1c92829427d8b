"""``python -m benchmarks``: run the benchmark suite and print (and keep) its report.

Sections, in order (``--only`` picks some): the hot path in memory and on loopback, token
requests over several lifetimes with 64 threads, the 401 storm, processes sharing a store,
import time, memory per cached token; ``--profile`` adds where requests-criteo's hot path
spends its time. ``--quick`` runs everything in under a minute with fewer rounds.
``--instructions`` (or ``--only instructions``; never part of the default run: about four
minutes, and it needs Valgrind) also counts the machine instructions of one request of
each client.
``--json PATH`` and ``--markdown PATH`` write the report; ``--check`` exits with status 1
when a target is missed, and says which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .candidates import CONTROL, CRITEO, FLOOR, MEMORY_BASE, PEER, Candidate, build_candidates
from .concurrency import CLIENT_NAMES, LifetimeResult, StormResult, lifetimes, storm
from .footprint import import_times, token_memory
from .hotpath import Timing, measure, paired_difference, pinned, summarise
from .processes import ProcessResult, UnavailableError, run_processes
from .report import (
    Check,
    Report,
    Section,
    as_json,
    machine,
    markdown,
    text_checks,
    text_machine,
    text_section,
)
from .server import LoopbackServer

SECTIONS = ("memory", "loopback", "lifetimes", "storm", "processes", "imports", "tokens")
#: Sections run only when asked for with --only.
OPT_IN = ("instructions",)

#: The targets of the issue.
MAX_ADDED_US = 5.0
MIN_THROUGHPUT = 0.98


@dataclass
class Settings:
    """How much of everything to run."""

    memory_requests: int
    memory_rounds: int
    memory_warmup: int
    loopback_requests: int
    loopback_rounds: int
    loopback_warmup: int
    settle: int
    threads: int
    lifetime: float
    duration: float
    processes: int
    import_rounds: int
    tokens: int
    trust_env: bool
    quick: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        quick = args.quick
        return cls(
            memory_requests=args.memory_requests or 10,
            memory_rounds=args.rounds or (150 if quick else 800),
            memory_warmup=50 if quick else 200,
            loopback_requests=args.loopback_requests or 5,
            loopback_rounds=args.rounds or (120 if quick else 600),
            loopback_warmup=30 if quick else 100,
            settle=args.settle if args.settle is not None else 5,
            threads=args.threads,
            lifetime=args.lifetime,
            duration=args.duration or (args.lifetime * (1.25 if quick else 2.75)),
            processes=args.processes,
            import_rounds=3 if quick else 7,
            tokens=10_000,
            trust_env=args.trust_env,
            quick=quick,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="requests-criteo next to bare requests and the other token libraries.",
    )
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the report as Markdown")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also show where requests-criteo's time goes (automatic in a full run whose "
        "5 µs target is missed)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS + OPT_IN,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}; and, only when "
        "asked for, instructions (Valgrind instruction counts, about four minutes)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count machine instructions per request with Valgrind (about four minutes)",
    )
    parser.add_argument(
        "--trust-env",
        action="store_true",
        help="keep requests' Session.trust_env on in the hot-path runs (see the notes)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds of the hot-path runs (default 800 / 600; quick 150 / 120)",
    )
    parser.add_argument(
        "--settle",
        type=int,
        help="untimed requests before each timed block of the hot-path runs (default 5)",
    )
    parser.add_argument(
        "--memory-requests", type=int, help="requests per round, in memory (default 10)"
    )
    parser.add_argument(
        "--loopback-requests", type=int, help="requests per round, on loopback (default 5)"
    )
    parser.add_argument("--threads", type=int, default=64, help="threads (default 64)")
    parser.add_argument("--processes", type=int, default=8, help="processes (default 8)")
    parser.add_argument(
        "--lifetime", type=float, default=2.0, help="token lifetime in seconds (default 2)"
    )
    parser.add_argument("--duration", type=float, help="seconds of each lifetimes run")
    return parser


def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} x {k}" for k, n in sorted(counts.items())) or "-"


# -- hot path ------------------------------------------------------------------------------


def _hot_section(key: str, title: str, timings: list[Timing], notes: list[str]) -> Section:
    rows = []
    for t in timings:
        added = "(floor)" if t.kind == FLOOR else f"{t.added_us:+.1f}"
        rows.append(
            [
                t.name,
                _num(t.us),
                _num(t.rps, 0),
                f"{t.ratio:.3f}",
                added,
                f"{t.throughput_ratio:.1%}",
                f"{t.iqr:.0%}",
                str(t.errors),
            ]
        )
    columns = [
        "candidate",
        "µs/request",
        "requests/s",
        "µs ÷ floor",
        "added µs",
        "req/s ÷ floor",
        "IQR",
        "non-200",
    ]
    described = [f"{t.name}: {t.description}" for t in timings]
    return Section(key, title, columns, rows, [*notes, *described], timings)


def _hot_notes(settings: Settings, per_round: int, rounds: int) -> list[str]:
    env = (
        "on (requests' default): proxies are looked up in the environment on every call, "
        "and ~/.netrc on every call without an auth object: the floor, the CriteoAdapter "
        "path and requests-oauthlib pay that lookup; auth= candidates and Authlib's session "
        "(which passes its own auth) skip it"
        if settings.trust_env
        else "off on every session: requests' per-call environment lookups (proxies, and "
        "~/.netrc for calls without auth=) fall on some candidates only and would hide "
        "the libraries' own costs; --trust-env keeps them"
    )
    return [
        f"{rounds} rounds of {per_round} requests per candidate, interleaved in a rotating "
        "order, GC off while timing; µs/request is the median over rounds; ratios and "
        "'added µs' are medians of per-round pairs with the floor of the same round",
        f"{settings.settle} untimed requests of the same candidate before each timed block "
        "(--settle): CPython specialises requests' shared bytecode for the classes it last "
        "met, and a candidate with classes of its own would otherwise be timed while that "
        "code re-specialises for it, which a program with one kind of session never pays",
        f"Session.trust_env {env}",
        "IQR = interquartile range of the rounds / median; 'floor-again' is a second, "
        "identical floor: its distance to the floor is this run's resolution",
        "the floor's header is on the session, so requests validates it on every call "
        "(a regular expression); a header set by an auth= object is not validated: that "
        "is why auth= candidates can come out below the floor",
    ]


def run_memory(settings: Settings, report: Report, profile: bool) -> None:
    candidates = build_candidates(MEMORY_BASE, memory=True, trust_env=settings.trust_env)
    try:
        with pinned() as (cpu, _):
            samples, errors = measure(
                candidates,
                settings.memory_requests,
                settings.memory_rounds,
                settings.memory_warmup,
                settings.settle,
            )
        timings = summarise(candidates, samples, errors)
        notes = _hot_notes(settings, settings.memory_requests, settings.memory_rounds)
        if cpu is not None:
            notes.insert(0, f"the benchmark's thread pinned to CPU {cpu} while timing")
        notes.insert(0, "an HTTPAdapter answering in memory (no socket): pure client cost")
        report.sections.append(
            _hot_section("memory", "Hot path, in memory (pure client cost)", timings, notes)
        )
        missed = _memory_checks(timings, report)
        if profile or (missed and not settings.quick):
            _profile(candidates, settings, report)
    finally:
        for candidate in candidates:
            candidate.close()


def _memory_checks(timings: list[Timing], report: Report) -> bool:
    """Add the in-memory targets; whether the per-request budget was missed."""
    missed = False
    peers = [t for t in timings if t.kind == PEER]
    control = next((t for t in timings if t.kind == CONTROL), None)
    resolution = f" (resolution: floor-again {control.added_us:+.1f} µs)" if control else ""
    for t in timings:
        if t.kind != CRITEO:
            continue
        report.checks.append(
            Check(
                "memory",
                f"{t.name}: at most {MAX_ADDED_US:g} µs added per request over the floor",
                f"{t.added_us:+.1f} µs{resolution}",
                t.added_us <= MAX_ADDED_US,
            )
        )
        missed = missed or t.added_us > MAX_ADDED_US
        differences = {p.name: paired_difference(t, p) for p in peers}
        not_less = [name for name, d in differences.items() if d >= 0]
        report.checks.append(
            Check(
                "memory",
                f"{t.name}: less per request than every peer",
                "µs vs each peer (paired by round): "
                + ", ".join(f"{name} {d:+.1f}" for name, d in differences.items())
                + (f"; not less than {', '.join(not_less)}" if not_less else ""),
                not not_less,
            )
        )
    return missed


def run_loopback(settings: Settings, report: Report) -> None:
    with pinned() as (cpu, server_cpu), LoopbackServer(server_cpu) as server:
        candidates = build_candidates(server.url, memory=False, trust_env=settings.trust_env)
        try:
            samples, errors = measure(
                candidates,
                settings.loopback_requests,
                settings.loopback_rounds,
                settings.loopback_warmup,
                settings.settle,
            )
        finally:
            for candidate in candidates:
                candidate.close()
    timings = summarise(candidates, samples, errors)
    notes = _hot_notes(settings, settings.loopback_requests, settings.loopback_rounds)
    if cpu is not None:
        where = f"the server on CPU {server_cpu}" if server_cpu is not None else "server unpinned"
        notes.insert(0, f"the benchmark's thread pinned to CPU {cpu}, {where}")
    notes.insert(
        0,
        "requests' own HTTPAdapter to an asyncio HTTP/1.1 keep-alive server in another "
        "process on 127.0.0.1 (python -m benchmarks.server); one client thread",
    )
    report.sections.append(
        _hot_section("loopback", "Hot path, loopback keep-alive server", timings, notes)
    )
    for t in timings:
        if t.kind == CRITEO:
            report.checks.append(
                Check(
                    "loopback",
                    f"{t.name}: throughput at least {MIN_THROUGHPUT:.0%} of the floor's",
                    f"{t.throughput_ratio:.1%}",
                    t.throughput_ratio >= MIN_THROUGHPUT,
                )
            )


def _profile(candidates: list[Candidate], settings: Settings, report: Report) -> None:
    from .profiling import breakdown, profile_candidates

    rows = profile_candidates(candidates, max(1000, settings.memory_requests * 5))
    report.sections.append(
        Section(
            "profile",
            "Profile of requests-criteo's hot path (cProfile, in memory)",
            ["candidate", "function", "calls/request", "own µs/request", "cumulative µs/request"],
            [
                [
                    r.candidate,
                    r.function,
                    f"{r.calls_per_request:g}",
                    f"{r.own_us_per_request:.2f}",
                    f"{r.cumulative_us_per_request:.2f}",
                ]
                for r in rows
            ],
            ["cProfile inflates small functions: read it for the ranking"],
            rows,
        )
    )
    steps = breakdown()
    report.sections.append(
        Section(
            "breakdown",
            "Breakdown of requests-criteo's per-request work (timed alone, in memory)",
            ["step", "ns"],
            [[s.name, f"{s.ns:,.0f}"] for s in steps],
            [
                "best of 15 interleaved loops per step; figures for the whole calls have "
                "their baselines (a fresh request copy, the transport) subtracted",
                *(f"{s.name.strip()}: {s.note}" for s in steps if s.note),
            ],
            steps,
        )
    )


# -- concurrency ---------------------------------------------------------------------------


def run_lifetimes(settings: Settings, report: Report) -> None:
    results: list[LifetimeResult] = [
        lifetimes(name, settings.threads, settings.lifetime, settings.duration)
        for name in CLIENT_NAMES
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.name,
                str(r.token_requests),
                str(r.expected),
                f"{r.margin:g}",
                f"{r.lifetimes:.2f}",
                f"{r.per_lifetime:.1f}",
                str(r.tokens_used),
                f"{r.requests:,}",
                str(r.errors),
                _counts({**r.statuses, **r.exceptions}),
            ]
        )
    first = results[0]
    notes = [
        f"FakeCriteo (HTTP/1.1 on loopback, in this process) issuing tokens of "
        f"{first.lifetime:g} s on real time; {settings.threads} threads share one client and "
        f"call the API back to back for {first.duration:g} s, starting without a token",
        "expected = ceil(duration / (lifetime - margin)): one token per renewal period "
        "started, for the client's own margin (requests-criteo: min(60 s, lifetime / 2))",
        "tokens used = distinct tokens the API received; errors = calls that did not end "
        "in a 200 (401s and exceptions)",
        *(f"{r.name}: {r.how}" for r in results),
        "requests-auth is given a token session that copies the client's credentials into "
        "the form (it sends them as HTTP Basic only; Criteo reads the form)",
    ]
    report.sections.append(
        Section(
            "lifetimes",
            f"Token requests, {settings.threads} threads over several token lifetimes",
            [
                "client",
                "token requests",
                "expected",
                "margin s",
                "lifetimes",
                "per lifetime",
                "tokens used",
                "requests",
                "errors",
                "outcomes",
            ],
            rows,
            notes,
            [r.data() for r in results],
        )
    )
    for r in results:
        if r.kind == CRITEO:
            report.checks.append(
                Check(
                    "lifetimes",
                    f"{r.name}: exactly one token request per lifetime - margin, no error",
                    f"{r.token_requests} token requests, expected {r.expected}; {r.errors} errors",
                    r.exact,
                )
            )


def run_storm(settings: Settings, report: Report) -> None:
    results: list[StormResult] = [storm(name, settings.threads) for name in CLIENT_NAMES]
    rows = [
        [
            r.name,
            str(r.token_requests),
            str(r.resends),
            _counts(r.statuses),
            _counts(r.exceptions),
        ]
        for r in results
    ]
    notes = [
        f"{settings.threads} threads each hold a valid token; FakeCriteo revokes every token; "
        "a barrier releases the threads together, and a gate in the transport holds each "
        f"request (token on it) until all {settings.threads} are ready",
        "resends = responses whose history holds the 401; none of the peers resends on a "
        "401: the caller gets it",
    ]
    report.sections.append(
        Section(
            "storm",
            f"401 storm: {settings.threads} threads, every token revoked at once",
            ["client", "token requests", "resends", "final statuses", "exceptions"],
            rows,
            notes,
            results,
        )
    )
    for r in results:
        if r.kind == CRITEO:
            n = r.threads
            report.checks.append(
                Check(
                    "storm",
                    f"{r.name}: 1 token request, {n} resends, {n} x 200",
                    f"{r.token_requests} token requests, {r.resends} resends, "
                    f"{_counts(r.statuses)}; exceptions: {_counts(r.exceptions)}",
                    r.token_requests == 1
                    and r.resends == n
                    and r.statuses == {"200": n}
                    and not r.exceptions,
                )
            )


def run_processes_section(settings: Settings, report: Report) -> None:
    results: list[ProcessResult] = []
    skipped: str | None = None
    for kind in ("file", "redis"):
        try:
            results.append(
                run_processes(kind, settings.processes, settings.lifetime, settings.duration)
            )
        except UnavailableError as exc:
            skipped = str(exc)
    rows = [
        [
            f"{r.store} store",
            str(r.processes),
            str(r.token_requests),
            str(r.expected),
            f"{r.lifetimes:.2f}",
            str(r.tokens_used),
            f"{r.requests:,}",
            str(r.errors),
        ]
        for r in results
    ]
    if skipped is not None:
        rows.append(["redis store", str(settings.processes), "skipped", "", "", "", "", ""])
    notes = [
        f"{settings.processes} processes (fork), each with its own CriteoAuth and session on "
        f"the shared store, call FakeCriteo back to back for {settings.duration:g} s; tokens "
        f"of {settings.lifetime:g} s, renewed {results[0].margin:g} s before expiry",
        "expected = ceil(duration / (lifetime - margin)), as for one process",
    ]
    if skipped is not None:
        notes.append(f"Redis run skipped: {skipped}")
    report.sections.append(
        Section(
            "processes",
            f"Across processes: {settings.processes} processes sharing a token store",
            [
                "store",
                "processes",
                "token requests",
                "expected",
                "lifetimes",
                "tokens used",
                "requests",
                "errors",
            ],
            rows,
            notes,
            [r.data() for r in results],
        )
    )
    for r in results:
        report.checks.append(
            Check(
                "processes",
                f"{r.store} store: one token request per lifetime - margin, no error",
                f"{r.token_requests} token requests, expected {r.expected}; {r.errors} errors",
                r.exact,
            )
        )
    if skipped is not None:
        report.checks.append(
            Check("processes", "redis store: one token request per lifetime", skipped, None)
        )


# -- footprint -----------------------------------------------------------------------------


def run_imports(settings: Settings, report: Report) -> None:
    r = import_times(settings.import_rounds)
    rows = [
        ["python -c pass (interpreter start)", _num(r.interpreter_ms), "", ""],
        [
            "import requests",
            _num(r.requests_ms),
            _num(r.requests_import_ms),
            _num(r.requests_importtime_ms),
        ],
        [
            "import requests_criteo",
            _num(r.criteo_ms),
            _num(r.criteo_import_ms),
            _num(r.criteo_importtime_ms),
        ],
        [
            "requests_criteo ÷ requests",
            "",
            f"{r.criteo_import_ms / r.requests_import_ms:.2f}",
            f"{r.criteo_importtime_ms / r.requests_importtime_ms:.2f}",
        ],
    ]
    notes = [
        f"medians of {r.rounds} fresh interpreters each, interleaved; 'import' = wall time "
        "less the interpreter's start; -X importtime = the interpreter's cumulative figure "
        "for the top-level package",
        f"inside 'import requests_criteo', requests itself takes "
        f"{r.requests_within_criteo_ms:.1f} ms (-X importtime): requests-criteo and its "
        f"other dependencies (oauthlib, cachetools, filelock) add "
        f"{r.criteo_importtime_ms - r.requests_within_criteo_ms:.1f} ms",
    ]
    report.sections.append(
        Section(
            "imports",
            "Import time",
            ["run", "wall ms", "import ms", "-X importtime ms"],
            rows,
            notes,
            {
                **asdict(r),
                "requests_import_ms": r.requests_import_ms,
                "criteo_import_ms": r.criteo_import_ms,
            },
        )
    )


def run_tokens(settings: Settings, report: Report) -> None:
    r = token_memory(settings.tokens)
    rows = [
        ["per cached token, all told", _num(r.bytes_per_token, 0)],
        [f"  of which the Authorization header ({r.token_chars}-char token)", str(r.header_bytes)],
        ["  of which the Token object and the cache's bookkeeping", _num(r.bookkeeping_bytes, 0)],
    ]
    report.sections.append(
        Section(
            "tokens",
            "Memory per cached token",
            ["what", "bytes"],
            rows,
            [
                f"tracemalloc around putting {r.tokens:,} Tokens (access tokens made beforehand) "
                "into a requests_criteo.TokenCache"
            ],
            r,
        )
    )


def run_instructions(report: Report) -> None:
    from . import instructions

    if instructions.VALGRIND is None:
        report.checks.append(
            Check("instructions", "instruction counts", "skipped: valgrind is not installed", None)
        )
        return
    built = build_candidates(MEMORY_BASE, memory=True)
    names = [c.name for c in built if c.kind != CONTROL]
    for candidate in built:
        candidate.close()
    memory = instructions.instructions_per_request(names, "memory")
    with LoopbackServer() as server:
        loopback = instructions.instructions_per_request(names, "loopback", server.url)
    rows = []
    for name in names:
        row = [name]
        for counts in (memory, loopback):
            floor = counts[FLOOR]
            added = counts[name] - floor
            row += [
                _num(counts[name], 0),
                f"{counts[name] / floor:.4f}",
                "(floor)" if name == FLOOR else f"{added:+,.0f}",
            ]
        rows.append(row)
    report.sections.append(
        Section(
            "instructions",
            "Machine instructions per request (Valgrind)",
            [
                "candidate",
                "in memory",
                "÷ floor",
                "added",
                "loopback",
                "÷ floor",
                "added",
            ],
            rows,
            [
                "user-space instructions per request, counted by valgrind --tool=cachegrind: "
                f"each candidate alone in a fresh interpreter, {instructions.FEW} and "
                f"{instructions.MANY} requests after the warm-up; the difference divided by "
                f"{instructions.MANY - instructions.FEW} (PYTHONHASHSEED=0)",
                "in memory the same from run to run to within a few hundred instructions, on "
                "loopback within a few thousand (how many socket reads an answer takes "
                "depends on timing); kernel work and cache misses are not counted, so this "
                "is a cross-check of the timed tables, not throughput",
            ],
            {"memory": memory, "loopback": loopback},
        )
    )


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; the exit status is 1 with ``--check`` when a target is missed."""
    args = _parser().parse_args(argv)
    settings = Settings.from_args(args)
    # requests-oauthlib refuses http:// URLs unless told; the loopback runs are plain http.
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    report = Report(machine(sys.argv[1:] if argv is None else argv))
    print(text_machine(report.machine), flush=True)
    runs: dict[str, Callable[[], None]] = {
        "memory": lambda: run_memory(settings, report, args.profile),
        "loopback": lambda: run_loopback(settings, report),
        "lifetimes": lambda: run_lifetimes(settings, report),
        "storm": lambda: run_storm(settings, report),
        "processes": lambda: run_processes_section(settings, report),
        "imports": lambda: run_imports(settings, report),
        "tokens": lambda: run_tokens(settings, report),
        "instructions": lambda: run_instructions(report),
    }
    selected = args.only or list(SECTIONS)
    if args.instructions:
        selected = [*selected, "instructions"]
    started = time.monotonic()
    for name in SECTIONS + OPT_IN:
        if name not in selected:
            continue
        print(f"\n[running {name}...]", file=sys.stderr, flush=True)
        before = len(report.sections)
        section_started = time.monotonic()
        runs[name]()
        print(f"[{name}: {time.monotonic() - section_started:.1f} s]", file=sys.stderr)
        for section in report.sections[before:]:
            print("\n" + text_section(section), flush=True)
    report.seconds = time.monotonic() - started
    print("\n" + text_checks(report.checks))
    print(
        f"\n{len(report.checks)} targets, {len(report.missed)} missed; {report.seconds:.0f} s",
        flush=True,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(as_json(report) + "\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(markdown(report))
    if args.check and report.missed:
        for check in report.missed:
            print(f"missed: [{check.section}] {check.target}: {check.measured}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
