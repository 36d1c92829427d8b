"""What a token request is, whatever carries it: the attempts, the retries, the deadline.

What lives here: :class:`TokenRequest`, the rules of one token request written once as a
plan (a generator) that says what to do next — :class:`Send` an attempt, :class:`Wait`
before the next one, :class:`Call` a blocking function (a store's read or write) — and is
told what came of it (:class:`Reply`, :class:`Failed`); and :func:`drive`, which carries a
plan out in the calling thread. What does not: the carrying itself, which each HTTP
library's glue does (:mod:`._token` with requests, :mod:`.httpx` with httpx, which drives
the same plans from async code), or judging an answer (:mod:`._answer`).

Why a plan rather than a method per transport: the rules (which answers are retried,
after how long, within which deadline, what an error says, what is read of an answer)
must be the same for requests and for httpx, sync or async. Written once here, the two
transports only send the form and hand the answer back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse

from ._answer import judge
from ._cache import Token
from ._text import Answer, Secret, Secrets
from ._waits import pause
from .exceptions import CriteoAuthError, TokenRequestError
from .retry import CriteoRetry

__all__ = ["Call", "Failed", "Plan", "Reply", "Send", "Step", "TokenRequest", "Wait", "drive"]

log = logging.getLogger("requests_criteo")

#: The headers of every token request, besides the User-Agent.
FORM_HEADERS = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Send:
    """Post the urlencoded form *body*, within *timeout* ``(connect, read)`` and *remaining*
    seconds in all; answer with a :class:`Reply`, a :class:`Failed` or the error to raise."""

    body: str
    timeout: tuple[float, float]
    remaining: float


@dataclass(frozen=True)
class Wait:
    """Wait *seconds* before the next attempt (*reason* is shown to a person)."""

    seconds: float
    reason: str
    sleep: Callable[[float], None]


@dataclass(frozen=True)
class Call:
    """Call ``function(*args)``, which may block on a file, a lock or the network."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Reply:
    """The token endpoint's answer: its status, headers and body (read within the cap)."""

    status: int
    headers: Mapping[str, str]
    answer: Answer


@dataclass(frozen=True)
class Failed:
    """No answer: what failed, and whether the request surely never reached the server."""

    failure: str
    never_sent: bool


def not_connected(why: str, *, never_sent: bool = True) -> Failed:
    """No connection to the token endpoint; *why*: ``"within 3 s"``, ``"(ConnectError)"``."""
    return Failed(f"could not connect to the token endpoint {why}", never_sent)


def no_answer(read_timeout: float) -> Failed:
    return Failed(f"connected to the token endpoint, no answer within {read_timeout:g} s", False)


def past_deadline(deadline: float) -> TokenRequestError:
    """An attempt still under way at the deadline: given up, not retried."""
    return TokenRequestError(
        f"the token endpoint did not answer within the {deadline:g} s deadline"
    )


def cut_off(name: str) -> Failed:
    """Connected, then the connection failed (*name*: the error's class)."""
    return Failed(f"connected to the token endpoint, then the connection failed ({name})", False)


Step = Send | Wait | Call
#: What a plan is told after a step: the outcome of a Send, the result of a Call, or None.
Plan = Generator[Step, Any, Token]


@dataclass(frozen=True)
class _Retryable:
    """An attempt worth another: what went wrong, as the message and the policy need it."""

    failure: str
    status: int | None = None
    headers: Mapping[str, str] | None = None


class TokenRequest:
    """The token requests of one token URL: retried on 429, 5xx and failed connections.

    :param url: the validated token URL.
    :param timeout: ``(connect, read)`` seconds for one attempt.
    :param deadline: seconds for the whole request, retries and waits included.
    :param retry: the policy for 429, 5xx and connection errors.
    :param clock: a monotonic clock for the deadline.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: tuple[float, float],
        deadline: float,
        retry: CriteoRetry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry
        self.clock = clock

    def plan(
        self,
        body: str,
        *,
        secrets: Sequence[str],
        timer: Callable[[], float],
        retry: bool = True,
    ) -> Plan:
        """The steps that post the form *body* and return the token of the answer.

        :param secrets: the values in *body* that must never appear in an error.
        :param timer: the cache's clock, read before sending so that the token's schedule
            errs on the early side.
        :param retry: ``False`` for requests that must not be sent twice (a single-use
            authorization code, a rotating refresh token): only a 429, which Criteo did
            not execute, and a connection that could not be made are retried.
        """
        # Wrapped so that a traceback's frame locals show "[secure]", not the secret.
        body, hidden = Secret(body), Secrets(secrets)
        start = self.clock()
        # Any method may be retried (a token request changes nothing on the server), and a
        # 500 too: a token endpoint that fails once is worth a second try.
        forcelist = frozenset(self.retry.status_forcelist or ()) | {500}
        policy = self.retry.new(allowed_methods=None, status_forcelist=forcelist)
        attempts = 0
        while True:
            remaining = self.deadline - (self.clock() - start)
            if remaining <= 0:
                raise TokenRequestError(
                    f"no token after {attempts} attempts within the {self.deadline:g} s deadline"
                )
            attempts += 1
            sent_at = timer()
            timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
            # The answer is never a local here or in a driver: a traceback's frame locals
            # would show it, and a redirect's Location may echo the form.
            step = Send(body, timeout, remaining)
            settled = _settle((yield step), sent_at, hidden, policy, retry)
            if isinstance(settled, Token):
                log.debug("token obtained from %s, lifetime %g s", self.url, settled.lifetime)
                return settled
            if isinstance(settled, CriteoAuthError):
                raise settled  # outside any except block: nothing chains to the form
            policy, wait = self._back_off(policy, settled, attempts, start)
            if wait > 0:
                why = f"retrying the token request ({settled.failure})"
                yield Wait(wait, why, policy.sleep_func)

    def _back_off(
        self, policy: CriteoRetry, retryable: _Retryable, attempts: int, start: float
    ) -> tuple[CriteoRetry, float]:
        """The policy for the next attempt and the wait before it; raise when there is none."""
        answer = None  # the answer as urllib3's Retry reads one, whatever the transport
        if retryable.status is not None:
            answer = HTTPResponse(headers=retryable.headers, status=retryable.status)
        asked = policy.get_retry_after(answer) if answer is not None else None
        error = None if answer is not None else ConnectionError(retryable.failure)
        try:
            policy = policy.increment(method="POST", url=self.url, response=answer, error=error)
        except (MaxRetryError, ConnectionError):  # ConnectionError: the error, with total=False
            wait, why = None, ""
        else:
            wait = policy.get_backoff_time() if asked is None else asked
            why = f": the next one would pass the {self.deadline:g} s deadline"
        if wait is None or wait >= self.deadline - (self.clock() - start):
            raise TokenRequestError(  # here, not in the except block: no __context__
                f"{retryable.failure}; gave up after {attempts} attempts{why}",
                status_code=retryable.status,
            )
        log.info(
            "token request failed (%s); attempt %d in %.2f s", retryable.failure, attempts + 1, wait
        )
        return policy, wait


def _settle(
    outcome: Reply | Failed | CriteoAuthError,
    sent_at: float,
    secrets: Sequence[str],
    policy: CriteoRetry,
    retry: bool,
) -> Token | CriteoAuthError | _Retryable:
    """What one attempt comes to: a token, the error to raise, or a reason to retry."""
    if isinstance(outcome, CriteoAuthError):
        return outcome
    if isinstance(outcome, Failed):
        if not retry and not outcome.never_sent:
            return TokenRequestError(outcome.failure)
        return _Retryable(outcome.failure)
    status = outcome.status
    if status >= 400 and policy.is_retry("POST", status) and (retry or status == 429):
        failure = f"the token endpoint answered HTTP {status}"
        return _Retryable(failure, status=status, headers=outcome.headers)
    return judge(outcome.answer, status, sent_at, secrets)


def drive(plan: Plan, send: Callable[[Send], Reply | Failed | CriteoAuthError]) -> Token:
    """Carry *plan* out in this thread: *send* makes each attempt; waits and calls block."""
    step = next(plan)
    while True:
        try:
            step = plan.send(_carry(step, send))
        except StopIteration as done:
            token: Token = done.value
            return token


def _carry(step: Step, send: Callable[[Send], Reply | Failed | CriteoAuthError]) -> Any:
    """Do *step* in this thread; what to tell the plan."""
    if isinstance(step, Send):
        return send(step)
    if isinstance(step, Wait):
        pause(step.seconds, step.reason, step.sleep)
        return None
    return step.function(*step.args)
