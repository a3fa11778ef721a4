"""One request to Bling v3, done right: paced, classified, retried and re-authenticated.

Every call of an account goes through `V3Transport.request`, in this order:

1. the process's IP guard (never near Bling's IP-ban thresholds), then the account's pacing
   slot (3 requests/s shared by every caller of the account, daily budget);
2. send, with every timeout set;
3. record the answer with the IP guard; a 2xx is returned;
4. a 429 pauses the account (`second`), stops it until Brasília midnight (`day`) or blocks the
   IP (`ip-block`), and the request is retried after the pause;
5. a 401 refreshes the access token once (single-flight) and replays the request once; a
   second 401 means the brand must connect again;
6. timeouts, connection errors, 5xx and truncated bodies are retried with capped, jittered
   backoff as `retry.should_retry` decides; anything else is raised as the error tree says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from blingsync.bling.auth import TokenManager
from blingsync.bling.errors import (
    AccessTokenRejected,
    InvalidResponse,
    RateLimited,
    from_transport_error,
    from_v3_response,
)
from blingsync.bling.limits import AccountLimiter, Clock, IpGuard, Permit, SystemClock
from blingsync.bling.retry import RetryPolicy, backoff, should_retry
from blingsync.bling.secrets import Secret, redact


@dataclass
class CallStats:
    """What an account's calls cost, for benchmarks and the sync-run record."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    refreshes: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass
class V3Transport:
    account: str
    http: httpx.AsyncClient
    tokens: TokenManager
    limiter: AccountLimiter
    guard: IpGuard
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    stats: CallStats = field(default_factory=CallStats)

    def __repr__(self) -> str:
        return f"V3Transport(account={self.account!r})"

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """The decoded JSON body of a successful answer (None for 204)."""
        attempt = 0
        malformed = 0
        replayed = False
        while True:
            attempt += 1
            try:
                response, token, permit = await self._send(method, path, params, json_body)
            except httpx.HTTPError as exc:
                if should_retry(attempt, error=exc, idempotent=idempotent, policy=self.policy):
                    await self._wait_before_retry(attempt)
                    continue
                raise from_transport_error(exc, account=self.account) from None
            status = response.status_code
            if 200 <= status < 300:
                if status == 204 or not response.content:
                    return None
                try:
                    return json.loads(response.content)
                except ValueError:
                    malformed += 1
                    if should_retry(attempt, status=status, malformed=malformed,
                                    idempotent=idempotent, policy=self.policy):
                        await self._wait_before_retry(attempt)
                        continue
                    raise InvalidResponse(
                        account=self.account, status=status,
                        excerpt=redact(response.text)[:200],
                        detail=f"{method} {path} answered a body that is not JSON",
                    ) from None
            error = from_v3_response(status, response.content, response.headers,
                                     resource=resource, account=self.account)
            if isinstance(error, AccessTokenRejected) and not replayed:
                replayed = True
                attempt -= 1  # a refresh-and-replay is not a failed attempt
                self.stats.refreshes += 1
                await self.tokens.refresh(stale=token)
                continue
            if isinstance(error, RateLimited):
                self.stats.rate_limited += 1
                self._obey(error, permit)
                if error.period == "day":
                    raise error
            if should_retry(attempt, status=status, idempotent=idempotent, policy=self.policy):
                if not isinstance(error, RateLimited):
                    await self._wait_before_retry(attempt)
                continue
            raise error

    async def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any
    ) -> tuple[httpx.Response, Secret, Permit]:
        token = await self.tokens.access_token()
        await self.guard.acquire()
        async with self.limiter.slot() as permit:
            self.stats.requests += 1
            try:
                response = await self.http.request(
                    method, path, params=params, json=json_body,
                    headers={"authorization": f"Bearer {token.reveal()}", "enable-jwt": "1"},
                )
            except httpx.HTTPError:
                self.guard.record(None)
                raise
        self.guard.record(response.status_code)
        self.stats.by_status[response.status_code] = (
            self.stats.by_status.get(response.status_code, 0) + 1
        )
        return response, token, permit

    def _obey(self, error: RateLimited, permit: Permit) -> None:
        if error.period == "second":
            self.limiter.pause(error.retry_after or 1.0, refused=permit)
        elif error.period == "day" and error.resume_at is not None:
            self.limiter.stop_until(error.resume_at)
        elif error.period == "ip-block":
            self.guard.block(error.retry_after or 600.0)

    async def _wait_before_retry(self, attempt: int) -> None:
        self.stats.retries += 1
        await self.clock.sleep(backoff(attempt, self.policy))
