"""What the command line (and later the web app and the workers) do with accounts: connect
one, check it, import it. One `Service` per process: it owns the store, the process's limiter
registry (so every client of one Bling account shares its 3 requests/s) and one HTTP client per
Bling base URL (kept-alive connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from blingsync.bling.auth import OAuthApp, StoredTokens, TokenManager
from blingsync.bling.client import BlingClient, connect_v2, connect_v3
from blingsync.bling.errors import ApiDiscontinued, BlingError, CredentialsInvalid, ReauthorizationNeeded
from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.bling.models import CompanyInfo, PermissionCheck
from blingsync.bling.retry import DEFAULT_TIMEOUT
from blingsync.bling.secrets import Secret
from blingsync.bling.transport import CallStats
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
from blingsync.sync.importer import Importer, ImportReport, ProgressSink, account_state_for

PARALLEL_ACCOUNTS = 16
"""Accounts imported at once by one process. Each is paced at its own 3 requests/s, so this
bounds only the process's memory and database connections, not Bling's load."""

SKIPPED_STATES = frozenset({
    AccountState.PAUSED, AccountState.NEEDS_REAUTH, AccountState.INVALID_CREDENTIALS,
    AccountState.API_DISCONTINUED,
})
"""States in which a sync of every account leaves the account alone: only the user can fix
them (reconnect, new key, resume), and trying would only repeat the same error."""


log = logging.getLogger(__name__)


def _credentials(api_key: str | None, client_id: str | None, client_secret: str | None,
                 refresh_token: str | None, code: str | None) -> tuple[ApiGeneration, Credentials]:
    """Credentials as given on the command line or a form; a refresh token is stored as an
    expired token pair, so the first call refreshes (and stores the rotated one) before use."""
    if api_key is not None and not (client_id or client_secret or refresh_token or code):
        return ApiGeneration.V2, V2Credentials(api_key.strip())
    if api_key is None and client_id and client_secret and bool(refresh_token) != bool(code):
        seed = StoredTokens(Secret(""), Secret(refresh_token.strip()), 0.0) if refresh_token else None
        return ApiGeneration.V3, V3Credentials(client_id.strip(), client_secret.strip(), seed)
    raise ServiceError("give either --api-key, or --client-id and --client-secret with "
                       "--refresh-token or --code")


def _cause(error: ServiceError) -> str:
    """What Bling answered under a failed check, in the user's words (or the error's own)."""
    cause = error.__cause__
    return cause.user_message if isinstance(cause, BlingError) else str(error)


def _in_words(exc: BaseException) -> str:
    """An unexpected failure, for the summary (the traceback is in the log)."""
    if isinstance(exc, BlingError):
        return exc.user_message
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class ServiceError(Exception):
    """A request the service cannot carry out; the message says why in plain words."""


class CodeNotExchanged(ServiceError):
    """An OAuth authorization code could not be exchanged for tokens (Bling unreachable, slow or
    failing): nothing usable came of it, so nothing of the attempt is kept (a new account is
    removed, a reconnected one gets its old credentials back). A code works once and for minutes:
    the way on is a new one."""


@dataclass(frozen=True)
class Added:
    """A stored account and what its first check found."""

    account: Account
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
        self.bling_calls: dict[str, CallStats] = {}
        """What this process's clients sent to Bling per account name, whatever sent it (imports,
        webhook re-checks, write-backs, checks): the running totals `/metrics` shows."""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, warn: Callable[[str], None],
                   registry: LimiterRegistry | None = None,
                   transport: httpx.AsyncBaseTransport | None = None,
                   now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> AsyncIterator[Service]:
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir, warn)
        store = await Store.open(settings.database_url, box=box, clock=now)  # one notion of now
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

    def _token_manager(self, name: str, credentials: V3Credentials, bling_url: str) -> TokenManager:
        """Tokens kept in the store (encrypted, saved before use), refreshed under the store's
        lock, which other processes on the same database respect too."""
        app = OAuthApp(credentials.client_id, Secret(credentials.client_secret), bling_url)
        return TokenManager(name, app, self.store.token_store(), self.http(bling_url),
                            budget=self.registry.ip_guard, lock=self.store.refresh_lock())

    async def client(self, account: Account) -> BlingClient:
        credentials = await self.store.credentials(account.id)
        if account.generation is ApiGeneration.V2:
            if not isinstance(credentials, V2Credentials):
                raise ServiceError(f"account {account.name}: stored credentials are not an API key")
            return connect_v2(account.name, Secret(credentials.api_key), self.http(account.bling_v2_url),
                              self.registry, totals=self._calls_of(account.name))
        if not isinstance(credentials, V3Credentials):
            raise ServiceError(f"account {account.name}: stored credentials are not an OAuth app")
        return connect_v3(account.name, self._token_manager(account.name, credentials, account.bling_url),
                          self.http(account.bling_url), self.registry, totals=self._calls_of(account.name))

    def _calls_of(self, name: str) -> CallStats:
        return self.bling_calls.setdefault(name, CallStats())

    # --- accounts -----------------------------------------------------------------------------

    async def add_account(
        self, name: str, *, api_key: str | None = None, client_id: str | None = None,
        client_secret: str | None = None, refresh_token: str | None = None, code: str | None = None,
        bling_url: str | None = None, bling_v2_url: str | None = None,
        settings: AccountSettings | None = None,
    ) -> Added:
        """Store a new account, then prove its credentials with Bling (a token exchange or
        refresh for OAuth, one probe per permission for both).

        Stored *first*, because a refresh rotates the token: the new refresh token must be in
        the database before it is used, or a failure after the refresh would lose the only
        valid one. Credentials that Bling refuses remove the account again (nothing valid was
        lost); any other failure leaves it stored and says how to finish (`accounts check`)."""
        url = (bling_url or self.settings.bling_url).rstrip("/")
        v2_url = (bling_v2_url or (self.settings.bling_v2_url if bling_url is None
                                   else v2_url_for(url))).rstrip("/")
        generation, credentials = _credentials(api_key, client_id, client_secret, refresh_token, code)
        account = await self.store.add_account(NewAccount(
            name=name, generation=generation, credentials=credentials, bling_url=url,
            bling_v2_url=v2_url, settings=settings or AccountSettings()))
        try:
            return await self._prove(account, credentials, code)
        except (CredentialsInvalid, ReauthorizationNeeded, ApiDiscontinued):
            await self.store.remove_account(account.name)
            raise
        except ServiceError as error:
            if code is None or await self._has_tokens(account.id):
                raise
            # A stored account without tokens could never be finished by `accounts check`.
            await self.store.remove_account(account.name)
            raise CodeNotExchanged(
                f"account {account.name} was not added: {_cause(error)} An authorization code "
                f"works once and for a few minutes; get a new one (`blingsync accounts connect "
                f"{account.name}`) and try again.") from error

    async def reconnect(
        self, name: str, *, api_key: str | None = None, client_id: str | None = None,
        client_secret: str | None = None, refresh_token: str | None = None, code: str | None = None,
    ) -> Added:
        """New credentials for an existing account (a revoked app, a new key, or a move from an
        API v2 key to OAuth), keeping its orders, cursors and settings. Credentials that Bling
        refuses put the old ones back."""
        account = await self.store.account(name)
        old = await self.store.credentials(account.id)
        _, credentials = _credentials(api_key, client_id, client_secret, refresh_token, code)
        await self.store.save_credentials(account.id, credentials)
        account = await self.store.account_by_id(account.id)
        try:
            return await self._prove(account, credentials, code)
        except (CredentialsInvalid, ReauthorizationNeeded, ApiDiscontinued):
            await self.store.save_credentials(account.id, old)
            raise
        except ServiceError as error:
            if code is None or await self._has_tokens(account.id):
                raise
            await self.store.save_credentials(account.id, old)  # the old connection is all there is
            raise CodeNotExchanged(
                f"account {account.name} keeps its old connection: {_cause(error)} An authorization "
                f"code works once and for a few minutes; get a new one (`blingsync accounts connect "
                f"{account.name} --reconnect`) and try again.") from error

    async def _has_tokens(self, account_id: int) -> bool:
        """Whether the account holds OAuth tokens (a code exchange went through)."""
        credentials = await self.store.credentials(account_id)
        return isinstance(credentials, V3Credentials) and credentials.tokens is not None

    async def _prove(self, account: Account, credentials: Credentials, code: str | None) -> Added:
        """Exchange the code (if any), probe every permission, read the company, and record the
        outcome in the account's state."""
        try:
            client = await self.client(account)
            if code is not None and isinstance(credentials, V3Credentials):
                await self._token_manager(account.name, credentials, account.bling_url).exchange_code(
                    code.strip())
            permissions = await client.check_permissions()
        except (CredentialsInvalid, ReauthorizationNeeded, ApiDiscontinued):
            raise
        except BlingError as error:
            raise ServiceError(
                f"account {account.name} is stored, but its check could not finish: "
                f"{error.user_message} Run `blingsync accounts check {account.name}` to finish it."
            ) from error
        company: CompanyInfo | None = None
        if account.generation is ApiGeneration.V3:
            with contextlib.suppress(BlingError):
                company = await client.company()
        if company is not None:
            await self.store.set_account_document(account.id, company.cnpj, company.id)
        missing = [check.label for check in permissions if not check.granted]
        if missing:
            await self.store.set_account_state(
                account.id, AccountState.MISSING_PERMISSIONS,
                "Bling does not allow blingsync to read: " + ", ".join(missing))
        else:
            await self.store.set_account_state(account.id, AccountState.ACTIVE, None)
        return Added(await self.store.account_by_id(account.id), permissions, company)

    async def check(self, account: Account) -> list[PermissionCheck]:
        """Probe the account's permissions again and record the result in its state (a refusal
        of the credentials is raised)."""
        client = await self.client(account)
        checks = await client.check_permissions()
        await self._record_checks(account, checks)
        await self._learn_company(account, client)
        return checks

    async def _record_checks(self, account: Account, checks: Sequence[PermissionCheck]) -> None:
        """A check's outcome as the account's state; a paused account stays paused (the
        operator's pause outranks whatever the check finds)."""
        if account.state is AccountState.PAUSED:
            return
        missing = [check.label for check in checks if not check.granted]
        if missing:
            await self.store.set_account_state(
                account.id, AccountState.MISSING_PERMISSIONS,
                "Bling does not allow blingsync to read: " + ", ".join(missing))
        elif account.state in RECHECKED_STATES:
            await self.store.set_account_state(account.id, AccountState.ACTIVE, None)

    async def _learn_company(self, account: Account, client: BlingClient) -> None:
        """Record Bling's companyId (API v3), which webhooks are routed by: accounts connected
        before it was kept learn it at their next check."""
        if account.generation is not ApiGeneration.V3:
            return
        with contextlib.suppress(BlingError):
            company = await client.company()
            if company.id != account.company_id:
                await self.store.set_account_document(account.id, company.cnpj, company.id)

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
                try:
                    client = await self.client(account)
                    report = await Importer(self.store, client, account, progress=progress,
                                            now=self.now).run(trigger=trigger, since=since)
                except Exception as exc:
                    log.exception("account %s: the import failed", account.name)
                    report = ImportReport(account.name, error=_in_words(exc))
                return SyncOutcome(await self.store.account_by_id(account.id), report)

        return list(await asyncio.gather(*(one(account) for account in accounts)))

    # --- what the REST API does with accounts -------------------------------------------------

    async def pause(self, account_id: int) -> Account:
        """Stop importing the account until it is resumed (its deliveries go on)."""
        await self.store.set_account_state(account_id, AccountState.PAUSED, None)
        return await self.store.account_by_id(account_id)

    async def resume(self, account_id: int) -> Account:
        """Import the account again; an error state is cleared too, and the next import checks
        again whatever caused it (as `accounts resume` does)."""
        await self.store.set_account_state(account_id, AccountState.ACTIVE, None)
        return await self.store.account_by_id(account_id)

    async def remove(self, account_id: int) -> Account:
        """Delete the account with its credentials, orders, events and history."""
        account = await self.store.account_by_id(account_id)
        await self.store.remove_account(account.name)
        return account

    async def check_account(self, account_id: int) -> AccountCheck:
        """Probe the account's permissions and record what was found in its state, including a
        refusal of its credentials (which `check` raises instead). A paused account stays
        paused: the operator's pause outranks whatever the check finds. Errors that say nothing
        about the account (Bling unavailable) are raised."""
        account = await self.store.account_by_id(account_id)
        client = await self.client(account)
        paused = account.state is AccountState.PAUSED
        try:
            checks = await client.check_permissions()
        except BlingError as error:
            state = account_state_for(error)
            if state is None:
                raise
            if not paused:
                await self.store.set_account_state(account.id, state, error.user_message)
            return AccountCheck(await self.store.account_by_id(account.id), [], error.user_message, error)
        await self._record_checks(account, checks)
        await self._learn_company(account, client)
        return AccountCheck(await self.store.account_by_id(account.id), checks, None)

    async def sync_account(self, account_id: int, *, trigger: str = "api") -> SyncOutcome:
        """One import pass of one account, now (the REST API's "sync now" when no scheduler
        runs beside it). A paused account is skipped, with the reason."""
        account = await self.store.account_by_id(account_id)
        [outcome] = await self.sync([account.name], trigger=trigger)
        return outcome


RECHECKED_STATES = frozenset({
    AccountState.MISSING_PERMISSIONS, AccountState.INVALID_CREDENTIALS, AccountState.NEEDS_REAUTH,
    AccountState.API_DISCONTINUED,
})
"""States a successful permission check clears: each was a refusal the check just saw lifted."""


@dataclass(frozen=True)
class AccountCheck:
    """A permission check of a stored account: the account as it is afterwards, each permission
    found, or, when Bling refused the credentials, why (then `permissions` is empty)."""

    account: Account
    permissions: list[PermissionCheck]
    error: str | None = None
    cause: BlingError | None = None  # the refusal `error` words, for its code (the dashboard's pt-BR)

    @property
    def missing(self) -> list[PermissionCheck]:
        return [check for check in self.permissions if not check.granted]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing
