"""One interface for a Bling account, whichever API generation it is connected with.

The importer, the write-back and the permission screen talk to a `BlingClient` and never ask
whether the brand connected through Bling's login (API v3, OAuth2) or pasted an API key (API v2):
`connect_v3` and `connect_v2` build the right one. What one generation cannot do raises a clear
error instead of pretending: logistics objects and company data exist only in v3 (`NeedsApiV3`).

Both share the same machinery (`transport.Transport`): per-account pacing at Bling's 3 requests/s
shared by every caller of that account in the process, the daily budget, the IP guard, one retry
policy, and the error tree of `errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

import httpx

from blingsync.bling.auth import NoBudget, TokenManager
from blingsync.bling.limits import Clock, LimiterRegistry, SystemClock
from blingsync.bling.models import (
    CompanyInfo,
    LogisticsObject,
    NoteDetail,
    NoteKind,
    NoteRef,
    NoteSummary,
    NoteType,
    OrderRef,
    OrderSituation,
    PermissionCheck,
    SalesOrderDetail,
    SalesOrderSummary,
    SkipUnreadable,
)
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import Secret
from blingsync.bling.transport import ApiKeyAuth, BearerAuth, CallStats, Transport
from blingsync.bling.v2 import V2Client
from blingsync.bling.v3 import V3Client
from blingsync.bling.writes import TrackingChange
from blingsync.domain import ApiGeneration, InvoiceStatus


class BlingClient(Protocol):
    """Everything blingsync asks of one Bling account."""

    @property
    def account(self) -> str: ...

    @property
    def generation(self) -> ApiGeneration: ...

    @property
    def stats(self) -> CallStats: ...

    def iter_notes(
        self,
        status: InvoiceStatus,
        *,
        issued_from: datetime,
        issued_to: datetime,
        kind: NoteKind = NoteKind.NFE,
        tipo: NoteType = NoteType.SAIDA,
        skip: SkipUnreadable | None = None,
    ) -> AsyncIterator[NoteSummary]:
        """Every note in `status` emitted in the window (aware datetimes), each once, through
        every page of every period, a month at a time (`base.LISTING_SPAN`). With `skip`, a
        note that cannot be read is reported there instead of ending the listing."""
        ...

    async def get_note(self, ref: NoteRef) -> NoteDetail: ...

    async def get_note_xml(self, note: NoteRef | NoteSummary | NoteDetail) -> bytes:
        """The authorised `nfeProc` XML (NF-e or NFC-e)."""
        ...

    def iter_orders(
        self,
        *,
        situation_ids: Sequence[int] = (),
        changed_from: datetime | None = None,
        changed_to: datetime | None = None,
        skip: SkipUnreadable | None = None,
    ) -> AsyncIterator[SalesOrderSummary]:
        """Sales orders in any of `situation_ids` (all when empty) altered in the window
        (`changed_to` alone is refused; without `changed_from` every order)."""
        ...

    async def get_order(self, ref: OrderRef) -> SalesOrderDetail: ...

    async def change_order_situation(self, ref: OrderRef, situation_id: int) -> None: ...

    async def order_situations(self) -> list[OrderSituation]:
        """The situations of the sales module of this account (ids differ per account)."""
        ...

    async def get_logistics_object(self, object_id: int) -> LogisticsObject: ...

    async def create_logistics_object(
        self, change: TrackingChange, *, sales_order_id: int | None = None,
        note_id: int | None = None, service_id: int | None = None,
    ) -> int:
        """A new logistics object for an order or note; its id."""
        ...

    async def update_logistics_object(self, object_id: int, change: TrackingChange) -> None:
        """Apply `change` to an existing object (read, merged, written whole)."""
        ...

    async def company(self) -> CompanyInfo: ...

    async def check_permissions(self) -> list[PermissionCheck]:
        """Probe each resource the importer needs with its cheapest call."""
        ...


def connect_v3(
    account: str,
    tokens: TokenManager,
    http: httpx.AsyncClient,
    registry: LimiterRegistry,
    *,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    totals: CallStats | None = None,
) -> BlingClient:
    """A v3 client. `http` has the v3 base URL (`…/Api/v3`) and its timeouts set; `tokens`
    manages the account's OAuth tokens; `registry` holds the process's limiter per account and
    its IP guard, so every client of one account shares one pace. A `tokens` manager made
    without a token-call budget gets the registry's IP guard as its budget. `totals`, when given,
    counts this client's calls too (the process's running totals for the account)."""
    if isinstance(tokens.budget, NoBudget):
        tokens.budget = registry.ip_guard
    transport = Transport(account, http, BearerAuth(tokens), registry.for_account(account),
                          registry.ip_guard, policy or RetryPolicy(), clock or SystemClock(), totals=totals)
    return V3Client(transport)


def connect_v2(
    account: str,
    api_key: Secret,
    http: httpx.AsyncClient,
    registry: LimiterRegistry,
    *,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    totals: CallStats | None = None,
) -> BlingClient:
    """A v2 client. `http` has the v2 base URL (`…/Api/v2`); `api_key` is the API user's key;
    `totals`, as for `connect_v3`."""
    transport = Transport(account, http, ApiKeyAuth(api_key), registry.for_account(account),
                          registry.ip_guard, policy or RetryPolicy(), clock or SystemClock(), totals=totals)
    return V2Client(transport)
