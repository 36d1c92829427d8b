"""How ``criteo-auth request`` keeps to Criteo's rate budgets: ``--redis`` and ``--per-minute``.

What lives here: the limiters that ``request`` builds from its options. What does not:
pacing itself (:class:`~requests_criteo.RedisRateLimiter`), or showing the wait (the
command line shows every wait the library makes on stderr, pacing waits among them).

One run makes one call, so a limiter of the run's own would never wait: the budget that
matters is the one every run and every worker of the app draw from, which lives in Redis.
With ``--redis``, each run takes its turn in that budget (named after the token URL and
client id, as :class:`~requests_criteo.RedisRateLimiter` does by default), so a shell
loop or ``xargs -P 8`` of ``criteo-auth request`` stays within Criteo's limits.
"""

from __future__ import annotations

import math
from typing import Any

from ._cli_tokens import UsageError
from ._source import AUTHORIZATION_CODE
from .auth import CriteoAuth

__all__ = ["pacing"]

# Criteo's documented budgets, calls a minute (CRITEO.md, "Rate limits").
_APP, _REPORTING, _ACCOUNT = 250, 40, 10


def pacing(redis_url: str | None, per_minute: float | None, auth: CriteoAuth) -> dict[str, Any]:
    """The adapter's rate-limit options for ``--redis`` *redis_url* and ``--per-minute``.

    Client-credentials tokens: *per_minute* (250 by default) for ordinary paths and 40 (or
    *per_minute*, if lower) for reporting paths. Authorization-code tokens (``--store``):
    *per_minute* (10 by default) for the consenting account.
    """
    if redis_url is None:
        if per_minute is not None:
            raise UsageError("--per-minute paces runs through a shared budget: give --redis too")
        return {}
    if per_minute is not None and not (per_minute > 0 and math.isfinite(per_minute)):
        raise UsageError(f"--per-minute must be a positive number, got {per_minute:g}")
    try:
        from .redis_ratelimit import RedisRateLimiter
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if auth.grant == AUTHORIZATION_CODE:
        return {"rate_limit": RedisRateLimiter(redis_url, per_minute or _ACCOUNT, per_account=True)}
    ordinary = per_minute or _APP
    return {
        "rate_limit": RedisRateLimiter(redis_url, ordinary),
        "reporting_rate_limit": RedisRateLimiter(redis_url, min(ordinary, _REPORTING)),
    }
