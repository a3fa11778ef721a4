"""When to try a Bling request again, and how long to wait first.

There is one decision function, :func:`should_retry`, so that every call site agrees on what is
transient. Retrying the wrong things is how integrations get their IP banned (Bling blocks an IP
after 300 error answers in 10 s): a 4xx other than 429 will fail the same way every time, so it is
never retried; timeouts, dropped connections and 5xx usually go away, so they are retried a
bounded number of times, with capped exponential backoff and full jitter so that many callers who
failed together do not come back together.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
"""Every timeout set: no request can hang for ever. Connecting and waiting for a pooled
connection should be quick (5 s); Bling can be slow to produce a large page or a document (30 s)."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""429: refused by the rate limit, not processed (the limiter decides how long to wait).
500/502/503/504: Bling or its proxy failing, usually for a moment. Other 5xx (501 Not
Implemented, 505 HTTP Version Not Supported, …) state a permanent fact and are not retried."""

_RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # ConnectError, ReadError, WriteError, CloseError
    httpx.RemoteProtocolError,  # the server closed or garbled the connection mid-answer
    httpx.ProxyError,
)

_NEVER_SENT: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Failures that prove the request never reached Bling: the only ones a non-idempotent request
(a POST that creates something) may be retried after, besides 429 (refused, not processed)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how far apart, a failed request is tried again.

    `max_attempts` counts every attempt including the first (5: the first try and 4 retries).
    The wait before retry *n* is uniform in ``[0, min(max_delay, base_delay · 2^(n−1))]`` — AWS's
    "full jitter" (with AWS's retry index starting at 0): 0.5 s, 1 s, 2 s, 4 s … ceilings, never
    above 30 s. `malformed_retries`: how many 200 answers with a truncated or unreadable body one
    call may see and still retry (see :func:`should_retry`). `rng` is injectable for tests.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    malformed_retries: int = 2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays cannot be negative")
        if self.malformed_retries < 0:
            raise ValueError("malformed_retries cannot be negative")


def _status_of(error: BaseException) -> int | None:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code
    return None


def should_retry(attempt: int, *, status: int | None = None, error: BaseException | None = None,
                 malformed: int = 0, idempotent: bool = True, policy: RetryPolicy) -> bool:
    """Whether to try again after attempt number `attempt` (1 for the first) failed.

    Give what the attempt ended with: the HTTP `status` of its answer, or the `error` it raised
    (an :class:`httpx.HTTPStatusError` is judged by its status), or `malformed` — the count of
    answers of this call, this one included, that came back 200 with a truncated or unparsable
    body (``malformed=True`` means the first).

    * Retried: timeouts, connection errors (connect, read, write, close, remote protocol, proxy),
      500/502/503/504, and 429 (the account limiter says how long to wait; a ``period: "day"`` 429
      goes through :meth:`AccountLimiter.stop_until`, after which the retry's ``acquire`` raises
      ``DailyBudgetExhausted`` with the time to resume — so retrying it is harmless and surfaces
      the right error).
    * A malformed 200 of an idempotent request is retried twice at most (`malformed_retries`):
      a cut body is almost always the connection, not Bling, and one retry usually cures it; a
      third broken answer in a row means the answer itself is broken, and hammering would not
      help.
    * Never: any other 4xx (400, 401 — the auth layer refreshes and replays itself —, 403, 404,
      408, 409, 410, 422…), 1xx/2xx/3xx, any other exception (a bug of ours is not transient),
      and once `attempt` ≥ `policy.max_attempts`.
    * ``idempotent=False`` (a POST that creates something): only failures that prove Bling never
      got the request (connect errors and timeouts, pool timeouts) and 429 — a read timeout or a
      502 may hide a request that was carried out, and repeating it would create a duplicate.
    """
    if attempt >= policy.max_attempts:
        return False
    if malformed:
        # A garbled answer is still an answer: the request reached Bling and may have been
        # carried out, so a request that creates something is not sent again.
        return idempotent and malformed <= policy.malformed_retries
    if error is not None:
        from_error = _status_of(error)
        if from_error is not None:
            status = from_error
        elif isinstance(error, _RETRYABLE_ERRORS):
            return idempotent or isinstance(error, _NEVER_SENT)
        else:
            return False
    if status is None:
        return False
    if status == 429:
        return True
    return idempotent and status in RETRYABLE_STATUSES


def never_sent(error: BaseException) -> bool:
    """Whether a transport failure proves the request never reached the server (so repeating it
    cannot repeat its effect)."""
    return isinstance(error, _NEVER_SENT)


def backoff(attempt: int, policy: RetryPolicy) -> float:
    """Seconds to wait before retrying after attempt `attempt` (1 for the first) failed:
    uniform in ``[0, min(max_delay, base_delay · 2^(attempt−1))]``."""
    exponent = min(max(attempt, 1) - 1, 60)  # 2^60 · base is past any cap; avoids overflow
    ceiling = min(policy.max_delay, policy.base_delay * math.ldexp(1.0, exponent))
    return policy.rng.uniform(0.0, ceiling)

