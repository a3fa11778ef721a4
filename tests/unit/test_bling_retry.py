"""`should_retry`, the one retry decision, and its backoff: every status and exception class."""

from __future__ import annotations

import random

import httpx
import pytest

from blingsync.bling.retry import (
    DEFAULT_TIMEOUT,
    RETRYABLE_STATUSES,
    RetryPolicy,
    backoff,
    should_retry,
)

POLICY = RetryPolicy(rng=random.Random(0))
REQUEST = httpx.Request("GET", "https://api.bling.com.br/Api/v3/nfe")


def _status_error(status: int) -> httpx.HTTPStatusError:
    return httpx.HTTPStatusError("x", request=REQUEST, response=httpx.Response(status, request=REQUEST))


@pytest.mark.parametrize(("status", "retry"), [
    (100, False), (200, False), (201, False), (204, False), (301, False), (302, False), (304, False),
    (400, False), (401, False), (402, False), (403, False), (404, False), (405, False), (408, False),
    (409, False), (410, False), (413, False), (415, False), (422, False), (451, False),
    (429, True),
    (500, True), (502, True), (503, True), (504, True),
    (501, False), (505, False), (511, False),
])
def test_statuses(status: int, retry: bool) -> None:
    assert should_retry(1, status=status, policy=POLICY) is retry
    assert should_retry(1, error=_status_error(status), policy=POLICY) is retry  # same verdict


RETRIED_ERRORS: list[BaseException] = [
    httpx.ConnectTimeout("t", request=REQUEST),
    httpx.ReadTimeout("t", request=REQUEST),
    httpx.WriteTimeout("t", request=REQUEST),
    httpx.PoolTimeout("t", request=REQUEST),
    httpx.ConnectError("c", request=REQUEST),
    httpx.ReadError("r", request=REQUEST),
    httpx.WriteError("w", request=REQUEST),
    httpx.CloseError("c", request=REQUEST),
    httpx.RemoteProtocolError("server disconnected", request=REQUEST),
    httpx.ProxyError("p", request=REQUEST),
]

NOT_RETRIED_ERRORS: list[BaseException] = [
    httpx.LocalProtocolError("ours", request=REQUEST),
    httpx.UnsupportedProtocol("ftp", request=REQUEST),
    httpx.DecodingError("gzip", request=REQUEST),
    httpx.TooManyRedirects("loop", request=REQUEST),
    httpx.InvalidURL("bad"),
    httpx.StreamConsumed(),
    ValueError("a bug of ours"),
    KeyError("data"),
    RuntimeError("boom"),
    TimeoutError("not httpx's"),
]


@pytest.mark.parametrize("error", RETRIED_ERRORS, ids=lambda e: type(e).__name__)
def test_transient_transport_errors_are_retried(error: BaseException) -> None:
    assert should_retry(1, error=error, policy=POLICY)


@pytest.mark.parametrize("error", NOT_RETRIED_ERRORS, ids=lambda e: type(e).__name__)
def test_other_exceptions_are_not(error: BaseException) -> None:
    assert not should_retry(1, error=error, policy=POLICY)


def test_nothing_to_judge_is_not_retried() -> None:
    assert not should_retry(1, policy=POLICY)


@pytest.mark.parametrize(("error", "retry"), [
    (httpx.ConnectError("c", request=REQUEST), True),  # never reached Bling
    (httpx.ConnectTimeout("t", request=REQUEST), True),
    (httpx.PoolTimeout("t", request=REQUEST), True),
    (httpx.ReadTimeout("t", request=REQUEST), False),  # Bling may have created it already
    (httpx.WriteTimeout("t", request=REQUEST), False),
    (httpx.ReadError("r", request=REQUEST), False),
    (httpx.RemoteProtocolError("x", request=REQUEST), False),
])
def test_non_idempotent_requests_retry_only_what_never_reached_bling(
        error: BaseException, retry: bool) -> None:
    assert should_retry(1, error=error, idempotent=False, policy=POLICY) is retry


@pytest.mark.parametrize(("status", "retry"), [(429, True), (500, False), (502, False), (503, False),
                                               (504, False), (400, False)])
def test_non_idempotent_statuses(status: int, retry: bool) -> None:
    assert should_retry(1, status=status, idempotent=False, policy=POLICY) is retry


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert [should_retry(a, status=503, policy=policy) for a in range(1, 7)] == [
        True, True, True, True, False, False]
    assert not should_retry(5, error=httpx.ReadTimeout("t", request=REQUEST), policy=policy)
    assert not should_retry(1, status=503, policy=RetryPolicy(max_attempts=1))


def test_a_malformed_200_is_retried_twice_at_most() -> None:
    assert should_retry(1, status=200, malformed=True, policy=POLICY)
    assert should_retry(2, status=200, malformed=2, policy=POLICY)  # e.g. after a 503, or twice
    assert not should_retry(3, status=200, malformed=3, policy=POLICY)
    assert not should_retry(5, malformed=1, policy=POLICY)  # attempts still bound it
    assert not should_retry(1, malformed=1, policy=RetryPolicy(malformed_retries=0))


def test_every_status_has_a_verdict_and_only_the_listed_ones_retry() -> None:
    retried = {s for s in range(100, 600) if should_retry(1, status=s, policy=POLICY)}
    assert retried == set(RETRYABLE_STATUSES) == {429, 500, 502, 503, 504}


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, rng=random.Random(42))
    for attempt in range(1, 40):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff(attempt, policy) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in samples)
        assert max(samples) > 0.8 * ceiling  # the whole range is used, not a fixed delay
    assert max(backoff(10_000, policy) for _ in range(100)) <= 30.0  # no overflow, still capped
    assert backoff(0, policy) <= 0.5
    zero = RetryPolicy(base_delay=0.0)
    assert backoff(3, zero) == 0.0


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = [backoff(n, RetryPolicy(rng=random.Random(7))) for n in range(1, 6)]
    b = [backoff(n, RetryPolicy(rng=random.Random(7))) for n in range(1, 6)]
    assert a == b


def test_total_backoff_of_one_call_is_bounded() -> None:
    policy = RetryPolicy()
    worst = sum(min(policy.max_delay, policy.base_delay * 2 ** (a - 1))
                for a in range(1, policy.max_attempts))
    assert worst == 0.5 + 1 + 2 + 4  # four retries, at most 7.5 s of waiting


def test_policy_is_validated_and_frozen() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
    with pytest.raises(ValueError, match="malformed"):
        RetryPolicy(malformed_retries=-1)
    with pytest.raises(AttributeError):
        POLICY.max_attempts = 9  # type: ignore[misc]
    assert RetryPolicy() == RetryPolicy(rng=random.Random(1))  # the rng is not part of equality


def test_every_timeout_is_set() -> None:
    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read, DEFAULT_TIMEOUT.write,
            DEFAULT_TIMEOUT.pool) == (5.0, 30.0, 30.0, 5.0)


def test_a_garbled_answer_to_a_create_is_not_retried() -> None:
    """The request reached Bling (it answered): repeating a create could duplicate it."""
    assert should_retry(1, status=200, malformed=1, idempotent=True, policy=POLICY) is True
    assert should_retry(1, status=201, malformed=1, idempotent=False, policy=POLICY) is False
