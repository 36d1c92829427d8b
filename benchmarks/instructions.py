"""Machine instructions per request, counted by Valgrind: the hot path without the noise.

What lives here: :func:`instructions_per_request`, which runs each candidate alone in a
fresh interpreter under ``valgrind --tool=cachegrind`` twice (a few requests, then many
more) and divides the difference in instructions executed by the difference in requests;
and the child's entry point (``python -m benchmarks.instructions MODE NAME COUNT [URL]``).

Why: wall-clock figures on a shared virtual machine move by a percent or two from run to
run, and depend on what else the process ran (see the ``--settle`` note). The number of
user-space instructions one request executes hardly does: in memory it repeats to within
a few hundred (of about a million), on loopback to within a few thousand (how many reads
a response takes depends on timing), so a difference of a fraction of a percent between
two clients in memory is real. It counts neither the kernel nor cache misses, and says
nothing of throughput on its own; it is a cross-check of the timed tables, not a
replacement. Opt-in (``--instructions``): about four minutes, and Valgrind must be
installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from .candidates import MEMORY_BASE, build_candidates
from .server import ROOT, child_env

__all__ = ["VALGRIND", "instructions_per_request", "main"]

VALGRIND = shutil.which("valgrind")
#: Requests made after the warm-up in the short and the long run.
FEW, MANY = 20, 220
_WARMUP = 30
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def main(argv: list[str] | None = None) -> None:
    """The child: build the candidates, warm *NAME* up, then make *COUNT* requests."""
    mode, name, count, *rest = sys.argv[1:] if argv is None else argv
    memory = mode == "memory"
    base = MEMORY_BASE if memory else rest[0]
    candidates = build_candidates(base, memory=memory)
    try:
        (candidate,) = [c for c in candidates if c.name == name]
        for _ in range(_WARMUP + int(count)):
            if candidate.call() != 200:
                raise SystemExit(f"{name} answered something else than 200")
    finally:
        for c in candidates:
            c.close()


def _count(mode: str, name: str, requests: int, url: str | None) -> int:
    assert VALGRIND is not None
    command = [
        VALGRIND,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        mode,
        name,
        str(requests),
        *([url] if url else []),
    ]
    env = child_env(PYTHONHASHSEED="0", OAUTHLIB_INSECURE_TRANSPORT="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {name} failed: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def instructions_per_request(
    names: list[str], mode: str, url: str | None = None
) -> dict[str, float]:
    """User-space instructions per request of each candidate (``mode``: memory, loopback)."""
    runs = [(name, n) for name in names for n in (FEW, MANY)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # two Valgrinds at a time
        counts = list(pool.map(lambda run: _count(mode, run[0], run[1], url), runs))
    by_run = dict(zip(runs, counts, strict=True))
    return {name: (by_run[name, MANY] - by_run[name, FEW]) / (MANY - FEW) for name in names}


if __name__ == "__main__":
    main()
