"""One request to Bling, done right: paced, classified, retried and re-authenticated.

Both API generations go through the same `Transport`; what differs between them is an
`ApiAuth` — how a request is signed (v3: a bearer token that can be refreshed; v2: the `apikey`
parameter) and how an answer is read (v3's `error` envelope; v2's `retorno.erros`, which Bling
sends with any status, 200 included). Every call of an account, in this order:

1. the process's IP guard (never near Bling's IP-ban thresholds), then the account's pacing
   slot (3 requests/s shared by every caller of the account, daily budget);
2. send, with every timeout set;
3. record the answer with the IP guard; a usable answer is returned;
4. a 429 pauses the account (`second`), stops it until Brasília midnight (`day`, raised) or
   blocks the IP (`ip-block`), and the request is retried after the pause;
5. a rejected access token is refreshed once (single-flight) and the request replayed once;
   a second rejection means the brand must connect again (v2 keys cannot be refreshed);
6. timeouts, connection errors, 5xx and truncated bodies are retried with capped, jittered
   backoff as `retry.should_retry` decides; anything else is raised as the error tree says.

Signed document links (the XML of a v3 note's detail, v2's `xml`) go through the same pacing
and retries with `fetch`, without credentials: the signature in the URL is the credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from blingsync.bling.auth import TokenManager
from blingsync.bling.errors import (
    AccessTokenRejected,
    BlingError,
    BlingUnavailable,
    InvalidResponse,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    from_transport_error,
    from_v2_response,
    from_v3_response,
)
from blingsync.bling.limits import AccountLimiter, Clock, IpGuard, Permit, SystemClock
from blingsync.bling.retry import RetryPolicy, backoff, never_sent, should_retry
from blingsync.bling.secrets import Secret, redact
from blingsync.domain import ApiGeneration


@dataclass
class CallStats:
    """What an account's calls cost, for benchmarks and the sync-run record."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    refreshes: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Signature:
    """What `ApiAuth.sign` adds to a request. `handle` identifies the credential used, so a
    refresh after a rejection replaces exactly that one (see `TokenManager.refresh`)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    handle: Secret | None = None

    def __repr__(self) -> str:  # every value here is a credential
        return f"Signature(headers={sorted(self.headers)}, params={sorted(self.params)})"


class ApiAuth(Protocol):
    """How one API generation signs requests and reads answers."""

    generation: ApiGeneration

    def secrets(self) -> tuple[Secret, ...]:
        """Values no error text may show (the key, the current token)."""
        ...

    async def sign(self) -> Signature: ...

    async def renew(self, handle: Secret | None) -> bool:
        """After a rejected credential: True when a fresh one now exists (replay once)."""
        ...

    def classify(self, status: int, body: bytes, headers: Mapping[str, str], *,
                 resource: str, account: str) -> BlingError | None:
        """The error in an answer, or None when the body is to be used (for v2 this includes
        cod 14, "nothing found", which the caller reads as the end of the pages)."""
        ...


@dataclass
class BearerAuth:
    """v3: `Authorization: Bearer <JWT>` with `enable-jwt: 1`, refreshed through the account's
    `TokenManager` (single-flight, persisted before use)."""

    tokens: TokenManager
    generation: ApiGeneration = ApiGeneration.V3

    def secrets(self) -> tuple[Secret, ...]:
        return ()  # tokens are recognised by shape (JWTs) and by name in query strings

    async def sign(self) -> Signature:
        token = await self.tokens.access_token()
        return Signature(
            headers={"authorization": f"Bearer {token.reveal()}", "enable-jwt": "1"},
            handle=token,
        )

    async def renew(self, handle: Secret | None) -> bool:
        await self.tokens.refresh(stale=handle)
        return True

    def classify(self, status: int, body: bytes, headers: Mapping[str, str], *,
                 resource: str, account: str) -> BlingError | None:
        if 200 <= status < 300:
            return None
        return from_v3_response(status, body, headers, resource=resource, account=account)


@dataclass
class ApiKeyAuth:
    """v2: the API user's key as the `apikey` parameter of every call (query string for GET,
    form field for PUT/POST, as Bling's v2 documentation shows)."""

    key: Secret
    generation: ApiGeneration = ApiGeneration.V2

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=****)"

    def secrets(self) -> tuple[Secret, ...]:
        return (self.key,)

    async def sign(self) -> Signature:
        return Signature(params={"apikey": self.key.reveal()}, handle=self.key)

    async def renew(self, handle: Secret | None) -> bool:
        return False  # a key cannot be refreshed: a rejected key is CredentialsInvalid

    def classify(self, status: int, body: bytes, headers: Mapping[str, str], *,
                 resource: str, account: str) -> BlingError | None:
        return from_v2_response(status, body, headers, resource=resource, account=account,
                                secrets=self.secrets())


def _document_link_error(status: int, body: bytes, headers: Mapping[str, str], *,
                         resource: str, account: str) -> BlingError | None:
    """A signed document link's answer. Its refusals are plain text ("Assinatura inválida ou
    expirada"): 403/404/410 mean the link is gone (read the note again for a new one), not a
    missing permission; 429 and 5xx are read like the API's."""
    if 200 <= status < 300:
        return None
    if status in (403, 404, 410):
        return NotFound(account=account, status=status, resource=resource,
                        detail="the document link is invalid or has expired")
    return from_v3_response(status, body, headers, resource=resource, account=account)


Classifier = Callable[..., BlingError | None]


@dataclass
class Transport:
    account: str
    http: httpx.AsyncClient
    auth: ApiAuth
    limiter: AccountLimiter
    guard: IpGuard
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    stats: CallStats = field(default_factory=CallStats)
    totals: CallStats | None = None
    """The process's running totals for this account (shared by all its clients, for /metrics),
    counted with `stats`."""

    def __repr__(self) -> str:
        return f"Transport(account={self.account!r}, api={self.auth.generation.value})"

    def _tally(self, what: str) -> None:
        """Count one `what` (a `CallStats` counter) in this client's stats and the process's."""
        for stats in self._ledgers():
            setattr(stats, what, getattr(stats, what) + 1)

    def _tally_status(self, status: int) -> None:
        for stats in self._ledgers():
            stats.by_status[status] = stats.by_status.get(status, 0) + 1

    def _ledgers(self) -> tuple[CallStats, ...]:
        return (self.stats,) if self.totals is None else (self.stats, self.totals)

    @property
    def generation(self) -> ApiGeneration:
        return self.auth.generation

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """The decoded JSON body of a usable answer (None for an empty one, e.g. 204)."""
        _, decoded = await self._call(method, path, resource=resource, params=params,
                                      json_body=json_body, form=form, idempotent=idempotent,
                                      signed=True, classify=self.auth.classify)
        return decoded

    async def fetch(self, url: str, *, resource: str) -> bytes:
        """The body of a signed document link (no credentials sent; paced and retried)."""
        content, _ = await self._call("GET", url, resource=resource, params=None, json_body=None,
                                      form=None, idempotent=True, signed=False,
                                      classify=_document_link_error, want_json=False)
        if not content:
            raise InvalidResponse(account=self.account, api=self.generation,
                                  detail="the document link answered an empty body")
        return content

    async def _call(
        self,
        method: str,
        url: str,
        *,
        resource: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        form: Mapping[str, str] | None,
        idempotent: bool,
        signed: bool,
        classify: Classifier,
        want_json: bool = True,
    ) -> tuple[bytes, Any]:
        """The raw body of a usable answer and, when `want_json`, its decoded JSON (None for
        an empty body, e.g. a 204)."""
        attempt = 0
        malformed = 0
        replayed = False
        while True:
            attempt += 1
            try:
                response, handle, permit = await self._send(method, url, params, json_body, form,
                                                            signed)
            except RateLimited as exc:  # from the token endpoint, while signing
                if exc.period == "ip-block":
                    self.guard.block(exc.retry_after or 600.0)
                raise
            except httpx.HTTPError as exc:
                if should_retry(attempt, error=exc, idempotent=idempotent, policy=self.policy):
                    await self._wait_before_retry(attempt)
                    continue
                if not idempotent and not never_sent(exc):
                    raise self._outcome_unknown(method, url, f"{type(exc).__name__}") from None
                raise from_transport_error(exc, account=self.account, api=self.generation,
                                           secrets=self.auth.secrets()) from None
            status = response.status_code
            content = response.content
            decoded: Any = None
            broken = False
            if want_json and 200 <= status < 300 and content:
                try:
                    decoded = json.loads(content)
                except ValueError:
                    broken = True
                    malformed += 1
            if broken:
                if should_retry(attempt, status=status, malformed=malformed,
                                idempotent=idempotent, policy=self.policy):
                    await self._wait_before_retry(attempt)
                    continue
                if not idempotent:
                    raise self._outcome_unknown(method, url, f"HTTP {status} with a body that is "
                                                             "not JSON", status=status)
                raise InvalidResponse(
                    account=self.account, status=status, api=self.generation,
                    excerpt=redact(response.text, *self.auth.secrets())[:200],
                    detail=f"{method} {redact(url)} answered a body that is not JSON",
                ) from None
            error = classify(status, content, response.headers, resource=resource,
                             account=self.account)
            if error is None:
                if want_json and decoded is None and content and not 200 <= status < 300:
                    decoded = _json_or_none(content)  # v2's cod 14 may come with a 404
                return content, decoded
            if isinstance(error, AccessTokenRejected) and signed and not replayed:
                replayed = True
                if await self.auth.renew(handle):
                    attempt -= 1  # a refresh-and-replay is not a failed attempt
                    self._tally("refreshes")
                    continue
            if isinstance(error, RateLimited):
                self._tally("rate_limited")
                self._obey(error, permit)
                if error.period == "day":
                    raise error
            # v2 may refuse for the rate limit with any status: judge it as the 429 it means.
            judged = 429 if isinstance(error, RateLimited) else status
            if should_retry(attempt, status=judged, idempotent=idempotent, policy=self.policy):
                if not isinstance(error, RateLimited):
                    await self._wait_before_retry(
                        attempt, error.retry_after if isinstance(error, BlingUnavailable) else None)
                continue
            if not idempotent and isinstance(error, BlingUnavailable):
                raise self._outcome_unknown(method, url, f"HTTP {status}", status=status) from None
            raise error

    async def _send(
        self, method: str, url: str, params: Mapping[str, Any] | None, json_body: Any,
        form: Mapping[str, str] | None, signed: bool,
    ) -> tuple[httpx.Response, Secret | None, Permit]:
        signature = await self.auth.sign() if signed else Signature()
        query: dict[str, Any] = dict(params or {})
        data: dict[str, str] | None = None
        if form is not None:
            data = {**form, **signature.params}  # v2 writes carry the key in the form body
        else:
            query.update(signature.params)
        await self.guard.acquire()
        async with self.limiter.slot() as permit:
            self._tally("requests")
            try:
                response = await self.http.request(
                    method, url, params=query or None, json=json_body, data=data,
                    headers=signature.headers,
                )
            except httpx.HTTPError:
                self.guard.record(None)
                raise
        self.guard.record(response.status_code)
        self._tally_status(response.status_code)
        return response, signature.handle, permit

    def _obey(self, error: RateLimited, permit: Permit) -> None:
        if error.period == "second":
            self.limiter.pause(error.retry_after or 1.0, refused=permit)
        elif error.period == "day" and error.resume_at is not None:
            self.limiter.stop_until(error.resume_at)
        elif error.period == "ip-block":
            self.guard.block(error.retry_after or 600.0)

    def _outcome_unknown(self, method: str, url: str, what: str, *,
                         status: int | None = None) -> OutcomeUnknown:
        return OutcomeUnknown(account=self.account, api=self.generation, status=status,
                              detail=f"{method} {redact(url)}: {what}",
                              secrets=self.auth.secrets())

    async def _wait_before_retry(self, attempt: int, retry_after: float | None = None) -> None:
        """Capped, jittered backoff; at least what Bling asked for in `Retry-After` (capped by
        the policy's longest wait: the attempts stay bounded in time)."""
        self._tally("retries")
        wait = backoff(attempt, self.policy)
        if retry_after:
            wait = max(wait, min(retry_after, self.policy.max_delay))
        await self.clock.sleep(wait)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
