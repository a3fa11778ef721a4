"""What the command line (and later the web app and the workers) do with accounts: connect
one, check it, import it. One `Service` per process: it owns the store, the process's limiter
registry (so every client of one Bling account shares its 3 requests/s) and one HTTP client per
Bling base URL (kept-alive connections).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, StoredTokens, TokenManager, TokenStore
from blingsync.bling.client import BlingClient, connect_v2, connect_v3
from blingsync.bling.errors import BlingError
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import CompanyInfo, PermissionCheck
from blingsync.bling.retry import DEFAULT_TIMEOUT
from blingsync.bling.secrets import Secret
from blingsync.config import Settings, v2_url_for
from blingsync.domain import ApiGeneration
from blingsync.store import Store
from blingsync.store.crypto import SecretBox
from blingsync.store.records import (
    Account,
    AccountSettings,
    AccountState,
    Credentials,
    NewAccount,
    V2Credentials,
    V3Credentials,
)
from blingsync.sync.importer import Importer, ImportReport, ProgressSink

PARALLEL_ACCOUNTS = 16
"""Accounts imported at once by one process. Each is paced at its own 3 requests/s, so this
bounds only the process's memory and database connections, not Bling's load."""

SKIPPED_STATES = frozenset({
    AccountState.PAUSED, AccountState.NEEDS_REAUTH, AccountState.INVALID_CREDENTIALS,
    AccountState.API_DISCONTINUED,
})
"""States in which a sync of every account leaves the account alone: only the user can fix
them (reconnect, new key, resume), and trying would only repeat the same error."""


class ServiceError(Exception):
    """A request the service cannot carry out; the message says why in plain words."""


@dataclass(frozen=True)
class Connected:
    """What `connect` learned about a new account before it is stored."""

    credentials: Credentials
    permissions: list[PermissionCheck]
    company: CompanyInfo | None

    @property
    def missing(self) -> list[PermissionCheck]:
        return [check for check in self.permissions if not check.granted]


@dataclass(frozen=True)
class SyncOutcome:
    account: Account
    report: ImportReport | None  # None: skipped
    skipped_because: str | None = None


class Service:
    def __init__(self, store: Store, settings: Settings, *,
                 registry: LimiterRegistry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry or LimiterRegistry()
        self._transport = transport
        self.now = now
        self._http: dict[str, httpx.AsyncClient] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, warn: Callable[[str], None],
                   registry: LimiterRegistry | None = None,
                   transport: httpx.AsyncBaseTransport | None = None,
                   now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> AsyncIterator[Service]:
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir, warn)
        store = await Store.open(settings.database_url, box=box)
        if registry is None:
            registry = LimiterRegistry(settings=LimiterSettings(per_second=settings.requests_per_second))
        service = cls(store, settings, registry=registry, transport=transport, now=now)
        try:
            yield service
        finally:
            await service.aclose()

    async def aclose(self) -> None:
        for http in self._http.values():
            await http.aclose()
        self._http.clear()
        await self.store.close()

    def http(self, base_url: str) -> httpx.AsyncClient:
        """One kept-alive client per Bling base URL, timeouts always set."""
        http = self._http.get(base_url)
        if http is None:
            http = httpx.AsyncClient(base_url=base_url, timeout=DEFAULT_TIMEOUT,
                                     transport=self._transport)
            self._http[base_url] = http
        return http

    # --- clients ------------------------------------------------------------------------------

    def _client(self, name: str, generation: ApiGeneration, bling_url: str, bling_v2_url: str,
                credentials: Credentials, tokens: TokenStore) -> BlingClient:
        if generation is ApiGeneration.V2:
            if not isinstance(credentials, V2Credentials):
                raise ServiceError(f"account {name}: stored credentials are not an API key")
            return connect_v2(name, Secret(credentials.api_key), self.http(bling_v2_url), self.registry)
        if not isinstance(credentials, V3Credentials):
            raise ServiceError(f"account {name}: stored credentials are not an OAuth app")
        app = OAuthApp(credentials.client_id, Secret(credentials.client_secret), bling_url)
        manager = TokenManager(name, app, tokens, self.http(bling_url), budget=self.registry.ip_guard,
                               lock=self.store.refresh_lock())
        return connect_v3(name, manager, self.http(bling_url), self.registry)

    async def client(self, account: Account) -> BlingClient:
        credentials = await self.store.credentials(account.id)
        return self._client(account.name, account.generation, account.bling_url, account.bling_v2_url,
                            credentials, self.store.token_store())

    # --- accounts -----------------------------------------------------------------------------

    async def connect(
        self, name: str, *, api_key: str | None = None, client_id: str | None = None,
        client_secret: str | None = None, refresh_token: str | None = None, code: str | None = None,
        bling_url: str | None = None, bling_v2_url: str | None = None,
    ) -> tuple[NewAccount, Connected]:
        """Validate new credentials against Bling (a token exchange or refresh for OAuth, the
        permission probes for both) without storing anything yet. Raises `BlingError` when
        Bling refuses them (its message says what to do)."""
        url = (bling_url or self.settings.bling_url).rstrip("/")
        v2_url = (bling_v2_url or (self.settings.bling_v2_url if bling_url is None
                                   else v2_url_for(url))).rstrip("/")
        tokens = MemoryTokenStore()
        credentials: Credentials
        if api_key is not None:
            generation, credentials = ApiGeneration.V2, V2Credentials(api_key.strip())
        elif client_id and client_secret and (refresh_token or code):
            generation = ApiGeneration.V3
            app = OAuthApp(client_id, Secret(client_secret), url)
            manager = TokenManager(name, app, tokens, self.http(url), budget=self.registry.ip_guard)
            if code is not None:
                await manager.exchange_code(code)
            else:
                assert refresh_token is not None  # noqa: S101 - checked above
                await tokens.save(name, StoredTokens(Secret(""), Secret(refresh_token), 0.0))
                await manager.refresh()
            credentials = V3Credentials(client_id, client_secret, None)
        else:
            raise ServiceError("give either --api-key, or --client-id and --client-secret with "
                               "--refresh-token or --code")
        client = self._client(name, generation, url, v2_url, credentials, tokens)
        permissions = await client.check_permissions()
        company: CompanyInfo | None = None
        if generation is ApiGeneration.V3:
            with contextlib.suppress(BlingError):
                company = await client.company()
            stored = await tokens.load(name)
            assert isinstance(credentials, V3Credentials)  # noqa: S101 - built above
            credentials = V3Credentials(credentials.client_id, credentials.client_secret, stored)
        new = NewAccount(name=name, generation=generation, credentials=credentials, bling_url=url,
                         bling_v2_url=v2_url, document=company.cnpj if company else None,
                         settings=AccountSettings())
        return new, Connected(credentials, permissions, company)

    async def add(self, new: NewAccount, connected: Connected) -> Account:
        account = await self.store.add_account(new)
        if connected.missing:
            labels = ", ".join(check.label for check in connected.missing)
            await self.store.set_account_state(
                account.id, AccountState.MISSING_PERMISSIONS,
                f"Bling does not allow blingsync to read: {labels}")
            account = await self.store.account_by_id(account.id)
        return account

    async def check(self, account: Account) -> list[PermissionCheck]:
        """Probe the account's permissions again and record the result in its state."""
        client = await self.client(account)
        checks = await client.check_permissions()
        missing = [check.label for check in checks if not check.granted]
        if missing:
            await self.store.set_account_state(
                account.id, AccountState.MISSING_PERMISSIONS,
                "Bling does not allow blingsync to read: " + ", ".join(missing))
        elif account.state in (AccountState.MISSING_PERMISSIONS, AccountState.INVALID_CREDENTIALS,
                               AccountState.NEEDS_REAUTH):
            await self.store.set_account_state(account.id, AccountState.ACTIVE, None)
        return checks

    # --- imports ------------------------------------------------------------------------------

    async def sync(self, names: Sequence[str] = (), *, since: datetime | None = None,
                   trigger: str = "manual", progress: ProgressSink | None = None,
                   parallel: int = PARALLEL_ACCOUNTS) -> list[SyncOutcome]:
        """One import pass over the named accounts (every account when none is named; those
        that only the user can fix are left out then, with the reason). Accounts run side by
        side, each at its own 3 requests/s; the outcomes come back in the accounts' order."""
        accounts = ([await self.store.account(name) for name in names] if names
                    else await self.store.accounts())
        gate = asyncio.Semaphore(max(1, parallel))

        async def one(account: Account) -> SyncOutcome:
            if account.state is AccountState.PAUSED or (not names and account.state in SKIPPED_STATES):
                return SyncOutcome(account, None, account.state_reason or account.state.value)
            async with gate:
                client = await self.client(account)
                report = await Importer(self.store, client, account, progress=progress,
                                        now=self.now).run(trigger=trigger, since=since)
                return SyncOutcome(await self.store.account_by_id(account.id), report)

        return list(await asyncio.gather(*(one(account) for account in accounts)))
