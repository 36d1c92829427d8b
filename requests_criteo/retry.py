"""The retry policy for Criteo: urllib3's ``Retry`` taught Criteo's rate-limit headers.

What lives here: :class:`CriteoRetry`. It is what the token endpoint's retries follow,
and a policy a user can mount with any ``HTTPAdapter``. What does not: the loop around
the token request (:mod:`requests_criteo._token`).

Criteo answers an exceeded rate limit with 429 and ``x-ratelimit-reset`` (the Unix time
at which a call may be made again); ``Retry-After`` is not documented but accepted when
present. Every wait is capped, and a header that is garbage, negative or absurd can
neither crash the policy nor make it wait forever.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable, Collection
from email.utils import mktime_tz, parsedate_tz
from itertools import takewhile
from typing import Any

from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from ._waits import pause

__all__ = ["CriteoRetry"]

log = logging.getLogger("requests_criteo")

_DIGITS = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*")


class CriteoRetry(Retry):
    """urllib3 ``Retry`` that understands Criteo's 429s and sleeps through a seam.

    A 429 is retried whatever the method (the call was not executed); 502, 503, 504 and
    read errors only for idempotent methods (urllib3's ``allowed_methods``); failed
    connections always (nothing was sent). The wait is ``Retry-After`` or
    ``x-ratelimit-reset`` when usable, else exponential backoff with jitter (0.5 s, 1 s,
    2 s... plus up to 0.5 s); every wait is at most ``retry_after_max`` seconds, is logged
    at INFO and is announced to watchers (the command line's countdown). After ``total``
    retries the last response is returned as it is. ``sleep`` and ``wall_clock`` are
    injectable so tests never sleep::

        retry = CriteoRetry(total=4, backoff_factor=0.5, backoff_jitter=0.5)
        session.mount("https://api.criteo.com/", HTTPAdapter(max_retries=retry))

    :param sleep: called with the seconds to wait (``time.sleep`` by default).
    :param wall_clock: the Unix time now (``time.time``), to read ``x-ratelimit-reset``.
    :param on_429: told of each 429 before the wait for its retry (the adapter pauses its
        rate limiter there); ``None`` by default.
    """

    def __init__(
        self,
        total: bool | int | None = 4,
        *,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] | None = None,
        on_429: Callable[[BaseHTTPResponse], None] | None = None,
        status_forcelist: Collection[int] | None = frozenset({429, 502, 503, 504}),
        backoff_factor: float = 0.5,
        backoff_jitter: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: int = 60,
        raise_on_status: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            total=total,
            status_forcelist=status_forcelist,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_jitter,
            backoff_max=backoff_max,
            retry_after_max=retry_after_max,
            raise_on_status=raise_on_status,
            **kwargs,
        )
        self.sleep_func = sleep if sleep is not None else time.sleep
        self.wall_clock = wall_clock if wall_clock is not None else time.time
        self.on_429 = on_429

    def new(self, **kw: Any) -> CriteoRetry:
        kw.setdefault("sleep", self.sleep_func)
        kw.setdefault("wall_clock", self.wall_clock)
        kw.setdefault("on_429", self.on_429)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # 429 means "not executed": safe to send again whatever the method.
        if status_code == 429 and self.status_forcelist and 429 in self.status_forcelist:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def get_backoff_time(self) -> float:
        """Exponential backoff: ``backoff_factor * 2 ** (n - 1)`` plus jitter, capped.

        Unlike urllib3's default, the first retry waits too: Criteo asks clients that hit
        its limits to back off, not to come straight back.
        """
        consecutive = len(
            list(takewhile(lambda h: h.redirect_location is None, reversed(self.history)))
        )
        if consecutive == 0:
            return 0.0
        value = float(self.backoff_factor) * 2.0 ** (consecutive - 1)
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter  # noqa: S311 - jitter, not crypto
        return max(0.0, min(float(self.backoff_max), value))

    def parse_retry_after(self, retry_after: str) -> float:
        """Seconds to wait for a ``Retry-After`` value; garbage gives 0 (use backoff)."""
        if _DIGITS.fullmatch(retry_after):
            seconds = float(retry_after)
        else:
            parsed = parsedate_tz(retry_after)
            if parsed is None:
                return 0.0
            try:
                seconds = mktime_tz(parsed) - self.wall_clock()
            except (OverflowError, ValueError):
                return 0.0
        return self._clamp(seconds)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """The wait the server asked for: ``Retry-After``, else ``x-ratelimit-reset``."""
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            seconds = self.parse_retry_after(retry_after)
            if seconds > 0:
                return seconds
        reset = response.headers.get("x-ratelimit-reset")
        if reset is not None and response.status == 429:
            try:
                at = float(reset.strip())
            except ValueError:
                return None
            if math.isfinite(at):
                seconds = self._clamp(at - self.wall_clock())
                if seconds > 0:
                    return seconds
        return None

    def reset_at(self, response: BaseHTTPResponse) -> float | None:
        """The Unix time *response* asked to wait until (capped as :meth:`get_retry_after`
        caps it), or ``None``: what a 429 tells a rate limiter to pause until."""
        seconds = self.get_retry_after(response)
        return self.wall_clock() + seconds if seconds else None

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        seconds = self.get_retry_after(response)
        if seconds:
            log.info("Criteo asked to wait: retrying in %.2f s (HTTP %s)", seconds, response.status)
            pause(seconds, f"Criteo asked to wait (HTTP {response.status})", self.sleep_func)
            return True
        return False

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait before the next attempt: as Criteo asked, or else the backoff (logged)."""
        if response is not None and response.status == 429 and self.on_429 is not None:
            self.on_429(response)
        if (
            response is not None
            and self.respect_retry_after_header
            and self.sleep_for_retry(response)
        ):
            return
        seconds = self.get_backoff_time()
        if seconds > 0:
            log.info("retrying in %.2f s", seconds)
            after = f"HTTP {response.status}" if response is not None else "a failed attempt"
            pause(seconds, f"retrying after {after}", self.sleep_func)

    def _clamp(self, seconds: float) -> float:
        if not math.isfinite(seconds) or seconds < 0:
            return 0.0
        return min(seconds, float(self.retry_after_max))
