"""OAuth2 for API v3: the authorization-code exchange and the refresh-token rotation, done so
that a brand's connection survives races and restarts.

Bling rotates the refresh token on every refresh and the old one dies at once. Integrations die
silently when two workers refresh the same account together (one of them gets `invalid_grant`
and throws the connection away) or when a process crashes between receiving the new refresh
token and saving it. Hence, per account:

- refreshes are single-flight: a lock (in-process by default; the store provides one that spans
  processes) lets one refresh run, and the others reuse its result;
- under that lock the stored tokens are read again first: another process may have refreshed
  already, and then no token call is made at all;
- the new tokens are persisted through the `TokenStore` *before* they are returned for use;
- every token call first asks the IP guard, so the 20-calls-per-minute IP block is never near;
- `invalid_grant` means the brand must connect Bling again: `ReauthorizationNeeded`, no retry.

What a failed token call may be retried after (`TOKEN_POLICY`, each attempt paced by the IP
guard's token budget):

- a refresh: after timeouts, connection errors, 429 and 500/502/503/504. The hard case is an
  answer lost after Bling received the refresh: Bling has rotated the refresh token and the new
  one died with the answer. Retrying with the old one costs nothing (it either still works or
  gets `invalid_grant`), and when it gets `invalid_grant` the error says the answer was lost —
  nothing on our side can recover a token we never received, so the brand must connect again;
- an authorization-code exchange: only when the request provably never left (connect errors,
  pool timeouts) or was refused by the rate limit. A code is single-use, and Bling *revokes the
  brand's access* when a used code is presented again, so a lost answer is not retried: the
  brand is asked to connect again, which is what a retry would have forced anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx

from blingsync.bling.errors import (
    InvalidResponse,
    RateLimited,
    ReauthorizationNeeded,
    from_transport_error,
    from_v3_response,
)
from blingsync.bling.retry import RetryPolicy, backoff, never_sent, should_retry
from blingsync.bling.secrets import Secret, redact

TOKEN_POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0)
"""Token calls: at most 4 (well inside the 20-per-minute IP rule), 1–10 s apart."""

REFRESH_MARGIN = 300.0
"""Refresh this many seconds before the access token expires, so no call meets an expired one."""


@dataclass(frozen=True)
class StoredTokens:
    """What the store keeps for a v3 account. `expires_at` is epoch seconds."""

    access_token: Secret
    refresh_token: Secret
    expires_at: float
    scope: tuple[int, ...] = ()

    def fresh(self, now: float, margin: float = REFRESH_MARGIN) -> bool:
        return now < self.expires_at - margin


class TokenStore(Protocol):
    """Where an account's tokens live (the database, once the store exists)."""

    async def load(self, account: str) -> StoredTokens | None: ...

    async def save(self, account: str, tokens: StoredTokens) -> None: ...


class RefreshLock(Protocol):
    """Mutual exclusion of refreshes for one account. The in-process default is enough for one
    process; the store supplies one that spans processes (e.g. a PostgreSQL advisory lock)."""

    def hold(self, account: str) -> contextlib.AbstractAsyncContextManager[None]: ...


class TokenCallBudget(Protocol):
    """Paces calls to /oauth/token (Bling blocks the IP at 20 calls in 60 s)."""

    async def acquire_token_call(self) -> None: ...


@dataclass
class LocalRefreshLock:
    """One asyncio lock per account (and event loop), for the processes that are alone on
    their accounts. Every `TokenManager` of the process shares `PROCESS_REFRESH_LOCK` unless
    given another, so two managers of one account cannot refresh together either."""

    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = field(
        default_factory=weakref.WeakKeyDictionary)

    @contextlib.asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), {})
        lock = per_loop.setdefault(account, asyncio.Lock())
        async with lock:
            yield


PROCESS_REFRESH_LOCK = LocalRefreshLock()
"""The default lock of every `TokenManager` in this process."""


@dataclass
class MemoryTokenStore:
    """Tokens in memory: for the demo, tests and one-off commands."""

    tokens: dict[str, StoredTokens] = field(default_factory=dict)

    async def load(self, account: str) -> StoredTokens | None:
        return self.tokens.get(account)

    async def save(self, account: str, tokens: StoredTokens) -> None:
        self.tokens[account] = tokens


@dataclass(frozen=True)
class OAuthApp:
    """The app registered in Bling's developer portal."""

    client_id: str
    client_secret: Secret
    base_url: str = "https://api.bling.com.br/Api/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/oauth/authorize"


class NoBudget:
    """A budget that never waits (for tests that count token calls themselves)."""

    async def acquire_token_call(self) -> None:
        return None


class TokenManager:
    """Access tokens for one v3 account, refreshed single-flight and persisted before use."""

    def __init__(
        self,
        account: str,
        app: OAuthApp,
        store: TokenStore,
        http: httpx.AsyncClient,
        *,
        lock: RefreshLock | None = None,
        budget: TokenCallBudget | None = None,
        now: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN,
        policy: RetryPolicy = TOKEN_POLICY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.account = account
        self.app = app
        self.store = store
        self.http = http
        self.lock: RefreshLock = lock or PROCESS_REFRESH_LOCK
        self.budget: TokenCallBudget = budget or NoBudget()
        self._now = now
        self.margin = margin
        self.policy = policy
        self._sleep = sleep
        self.token_calls = 0

    def __repr__(self) -> str:
        return f"TokenManager(account={self.account!r}, client_id={self.app.client_id!r})"

    async def access_token(self) -> Secret:
        """A usable access token, refreshing first when it is about to expire."""
        tokens = await self.store.load(self.account)
        if tokens is None:
            raise ReauthorizationNeeded(account=self.account)
        if tokens.fresh(self._now(), self.margin):
            return tokens.access_token
        return (await self.refresh(stale=tokens.access_token)).access_token

    async def refresh(self, stale: Secret | None = None) -> StoredTokens:
        """Refresh once for everyone: callers that saw `stale` (the token that failed or expired)
        wait for the one refresh in flight and get its result."""
        async with self.lock.hold(self.account):
            current = await self.store.load(self.account)
            if current is None:
                raise ReauthorizationNeeded(account=self.account)
            if (stale is None or current.access_token != stale) and current.fresh(
                self._now(), self.margin
            ):
                return current  # someone else refreshed while we waited for the lock
            form = {"grant_type": "refresh_token",
                    "refresh_token": current.refresh_token.reveal()}
            try:
                tokens = await self._token_call(form, previous=current)
            except ReauthorizationNeeded:
                # Someone outside this lock (a misconfigured worker, a lock that expired) may
                # have rotated the token meanwhile: their stored tokens are then the answer.
                latest = await self.store.load(self.account)
                if latest is not None and latest.refresh_token != current.refresh_token:
                    return latest
                raise
            await self.store.save(self.account, tokens)
            return tokens

    async def exchange_code(self, code: str) -> StoredTokens:
        """Turn an authorization code (valid 60 s, single use) into tokens, stored."""
        async with self.lock.hold(self.account):
            tokens = await self._token_call({"grant_type": "authorization_code", "code": code})
            await self.store.save(self.account, tokens)
            return tokens

    async def _token_call(
        self, form: dict[str, str], previous: StoredTokens | None = None
    ) -> StoredTokens:
        refreshing = form["grant_type"] == "refresh_token"
        attempt = 0
        maybe_received = False  # an earlier attempt may have reached Bling unanswered
        while True:
            attempt += 1
            await self.budget.acquire_token_call()
            self.token_calls += 1
            try:
                response = await self.http.post(
                    self.app.token_url,
                    data=form,
                    auth=(self.app.client_id, self.app.client_secret.reveal()),
                    headers={"accept": "1.0", "enable-jwt": "1"},
                )
            except httpx.HTTPError as exc:
                if should_retry(attempt, error=exc, idempotent=refreshing, policy=self.policy):
                    maybe_received = maybe_received or not never_sent(exc)
                    await self._sleep(backoff(attempt, self.policy))
                    continue
                raise from_transport_error(exc, account=self.account) from None
            if response.status_code == 200:
                return self._parse(response, previous)
            error = from_v3_response(response.status_code, response.content, response.headers,
                                     resource="oauth", account=self.account)
            if isinstance(error, ReauthorizationNeeded) and maybe_received:
                raise ReauthorizationNeeded(
                    account=self.account, status=error.status, bling_type=error.bling_type,
                    bling_message=error.bling_message,
                    detail="an earlier refresh reached Bling but its answer was lost, and Bling "
                           "had already replaced the refresh token",
                ) from None
            if isinstance(error, RateLimited) and error.period in ("day", "ip-block"):
                raise error
            if should_retry(attempt, status=response.status_code, idempotent=refreshing,
                            policy=self.policy):
                maybe_received = maybe_received or response.status_code != 429
                wait = backoff(attempt, self.policy)
                if isinstance(error, RateLimited) and error.retry_after:
                    wait = max(wait, min(error.retry_after, self.policy.max_delay))
                await self._sleep(wait)
                continue
            raise error

    def _parse(self, response: httpx.Response, previous: StoredTokens | None) -> StoredTokens:
        """Strict only about what cannot be done without (the access token): Bling has already
        rotated the refresh token when this runs, so an odd optional field must not lose it."""
        try:
            body = response.json()
            access = str(body["access_token"])
            if not access:
                raise ValueError("empty access token")
            refresh = body.get("refresh_token")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidResponse(
                account=self.account, excerpt=redact(response.text)[:200],
                detail="the token endpoint answered without a usable access token",
            ) from None
        if not refresh:
            # Some Bling answers omit a new refresh token: the old one stays valid then.
            if previous is None:
                raise InvalidResponse(account=self.account,
                                      detail="the token endpoint sent no refresh token")
            refresh_secret = previous.refresh_token
        else:
            refresh_secret = Secret(str(refresh))
        return StoredTokens(Secret(access), refresh_secret, self._now() + _lifetime(body),
                            _scope(body))


UNKNOWN_LIFETIME = 3600.0
"""Seconds an access token is taken to live when the answer does not say (Bling says 21600):
short enough that a wrong guess costs only an early refresh."""


def _lifetime(body: dict[str, object]) -> float:
    raw = body.get("expires_in", body.get("token_validate"))
    try:
        lifetime = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return UNKNOWN_LIFETIME
    return lifetime if lifetime > 0 else UNKNOWN_LIFETIME


def _scope(body: dict[str, object]) -> tuple[int, ...]:
    """`"98309 318257570"` → (98309, 318257570); parts that are not numbers are left out."""
    return tuple(int(part) for part in str(body.get("scope") or "").split() if part.isdigit())


def with_expiry(tokens: StoredTokens, expires_at: float) -> StoredTokens:
    """A copy with another expiry (tests and the admin 'force refresh' use it)."""
    return replace(tokens, expires_at=expires_at)
