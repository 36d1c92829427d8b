"""RedisRateLimiter: one Criteo rate budget for a fleet of workers on many machines.

What lives here: :class:`RedisRateLimiter`, a :class:`~requests_criteo.RateLimiter` whose
turns are handed out by Redis, and its fallback to pacing within the process while Redis
is unreachable. What does not: the waiting, logging and announcing of a wait (inherited
from :class:`~requests_criteo.RateLimiter`), retrying 429s (:mod:`.retry`). Needs the
``redis`` extra: ``pip install "requests-criteo[redis]"``.

The turns are the local limiter's (the generic cell rate algorithm with ``burst=1``: one
call every ``60 / per_minute`` seconds, no burst even in the first minute), computed by one
atomic Lua script on the Redis server. One key, ``<prefix>rate:<hash>``, holds the
theoretical arrival time: each call takes the slot ``max(now, tat)``, moves ``tat`` one
interval on, and sleeps until its slot. Turns are thus given in the order Redis runs the
scripts (first come, first served), and no worker polls. ``now`` is Redis's own clock
(``TIME``), so machines whose clocks disagree still space their calls evenly. A pause after
a 429 (:meth:`RedisRateLimiter.pause_until`) runs the same script to move ``tat`` on to
the pause's end, never back, so it holds the whole fleet. The key expires once the budget
is idle.

``<hash>`` is a SHA-256 of the budget's name and rate: no secret, no client id. A budget's
name is the limiter's ``name``, else the token URL and client id of the auth whose calls it
paces (Criteo counts per app), with the account's name after it for a ``per_account``
limiter (:meth:`RedisRateLimiter.for_credentials`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from functools import partial

from ._redis import UNREACHABLE, OnRedis, Outage, redis
from .ratelimit import RateLimiter

__all__ = ["RedisRateLimiter"]

#: The budget of a limiter without a name that is used on its own, not through an adapter.
_UNNAMED = "requests-criteo"

# KEYS[1]: the theoretical arrival time, in microseconds of Redis's clock.
# ARGV[1]: the interval between two turns, in microseconds.
# ARGV[2], for a pause only: its end, in microseconds of Unix time (Redis's TIME is Unix
# time). A pause takes no turn: it moves the next free slot on to its end, never back.
# Returns the microseconds this call waits for its turn, as a string (a Lua number would be
# cut to a 64-bit integer reply).
_TURN = """
local now_s, now_us = unpack(redis.call('TIME'))
local now = tonumber(now_s) * 1000000 + tonumber(now_us)
local interval = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local tat = slot + interval
if ARGV[2] then
  tat = math.max(slot, tonumber(ARGV[2]))
end
local px = math.min(math.ceil((tat - now) / 1000) + 1000, 2 ^ 53)
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', px))
return string.format('%.0f', slot - now)
"""


class RedisRateLimiter(OnRedis, RateLimiter):
    """At most *per_minute* calls a minute for an app (or an account), shared by every process
    that uses the same Redis, on any machine.

    ::

        limiter = RedisRateLimiter("redis://redis.internal:6379/0", 250)
        session = requests_criteo.session(client_id, client_secret, rate_limit=limiter)

    Criteo counts per application, so by default the budget is named after the token URL
    and client id of the auth whose calls the limiter paces: every worker of one app shares
    it, and one limiter given to sessions of two apps gives each app its own. The reporting
    endpoints have their own 40 a minute: limiters of different rates never share a key,
    so ``rate_limit`` and ``reporting_rate_limit`` need no names of their own.

    :param url_or_client: a ``redis://`` URL, or a ``redis.Redis`` client of your own
        (then its timeouts are yours to bound).
    :param per_minute: calls allowed per minute, fleet-wide.
    :param name: the budget's name (not a secret; hashed into the key), for a budget shared
        by more than one app; by default the app's token URL and client id (used alone,
        through :meth:`acquire` and no adapter, a limiter without a name draws from the
        budget named ``"requests-criteo"``).
    :param per_account: one fleet-wide budget of *per_minute* for each account (the
        ``account=`` of the auth): Criteo allows authorization-code apps 10 calls a minute
        per consenting account.
    :param prefix: the namespace of the key.
    :param socket_timeout: seconds for each Redis operation (URL form only): with Redis
        frozen, a call waits this long at most before pacing on its own.
    :param retry_interval: seconds between probes of Redis during an outage.
    :param clock: a monotonic clock, for the fallback's turns and the INFO summaries.
    :param sleep: how to wait; tests inject one that records instead.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        per_minute: float = 250,
        *,
        name: str | None = None,
        per_account: bool = False,
        prefix: str = "requests_criteo:",
        socket_timeout: float = 1.0,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_minute, per_account=per_account, clock=clock, sleep=sleep)
        self._connect(url_or_client, socket_timeout)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError("name must be a non-empty string, or None (the app's own)")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        if socket_timeout <= 0 or retry_interval < 0:
            raise ValueError("socket_timeout must be positive, retry_interval not negative")
        self.name, self.prefix = name, prefix
        self.socket_timeout, self.retry_interval = float(socket_timeout), float(retry_interval)
        budget = f"{_UNNAMED if name is None else name}\n{self.per_minute!r}".encode()
        self.key = f"{prefix}rate:{hashlib.sha256(budget).hexdigest()[:40]}"
        self._turn = self.client.register_script(_TURN)
        self._outage = Outage(
            self.retry_interval,
            "Redis rate limiter",
            f"pacing this process alone at {self.per_minute:g} calls a minute until it "
            "answers again",
            "the fleet shares its rate budget again",
        )

    _options = (
        "per_minute",
        "name",
        "per_account",
        "prefix",
        "socket_timeout",
        "retry_interval",
        "clock",
        "sleep",
    )

    def __repr__(self) -> str:
        each = ", per_account=True" if self.per_account else ""
        return (
            f"RedisRateLimiter({self._place()}, per_minute={self.per_minute:g}, "
            f"name={self.name!r}{each})"
        )

    def _after_fork(self) -> None:
        # Another thread of the parent may have held either lock; redis-py's pool opens new
        # connections in a child by itself.
        self._outage.after_fork()
        super()._after_fork()

    def for_credentials(self, token_url: str, client_id: str, account: str) -> RateLimiter:
        """The limiter that paces the calls made with these credentials, fleet-wide.

        What an adapter asks of the limiter it is given. The budget's name is this
        limiter's *name*, else the token URL and client id; for a ``per_account`` limiter,
        followed by *account*. This limiter itself when that is its own name; else a
        limiter on the same Redis connection, made on first use and the same from then on.
        """
        # Names made here are JSON lists, which no two settings write alike.
        name = self.name if self.name is not None else json.dumps([token_url, client_id])
        if self.per_account:
            name = json.dumps([name, account])
        if name == self.name:
            return self
        return self._budget(name, partial(self._named, name))

    def _named(self, name: str) -> RedisRateLimiter:
        """A limiter of the budget *name*, sharing this one's connection and outage."""
        budget = RedisRateLimiter(
            self.client,
            self.per_minute,
            name=name,
            prefix=self.prefix,
            retry_interval=self.retry_interval,
            clock=self.clock,
            sleep=self.sleep,
        )
        # Pickled by this limiter's URL; one warning per outage of the one connection.
        budget._url, budget._outage = self._url, self._outage
        budget.socket_timeout = self.socket_timeout
        return budget

    @property
    def available(self) -> bool:
        """Whether the limiter is using Redis (``False`` during an outage)."""
        return self._outage.available

    def reserve(self) -> float:
        """Take the fleet's next turn; return the seconds to wait for it (0 if it is now).

        While Redis is unreachable, the turn is this process's own, at the same rate.
        """
        wait_us = self._on_redis()
        if wait_us is None:
            return super().reserve()
        return max(0.0, wait_us / 1e6)

    def pause_until(self, unix_time: float) -> None:
        """Hold every later turn of the fleet, on any machine, until *unix_time* at least.

        What the adapter does when Criteo answers 429 with a time to wait for. As with the
        local limiter, a pause never shortens a longer one, and the turns after it are
        spaced evenly, the first at its end. This process's own turns are paused too, so
        that the pause holds if Redis becomes unreachable before it ends.
        """
        self._on_redis(round(unix_time * 1e6))
        super().pause_until(unix_time)

    def _on_redis(self, *pause: int) -> int | None:
        """Run the script (a turn, or with *pause* a pause); ``None`` while Redis is down."""
        if not self._outage.usable():
            return None
        try:
            wait_us = self._turn(keys=[self.key], args=[round(self.interval * 1e6), *pause])
        except UNREACHABLE as exc:
            self._outage.failed(exc)
            return None
        self._outage.answered()
        return int(wait_us)
