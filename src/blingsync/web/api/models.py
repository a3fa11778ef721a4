"""The REST API's request and response bodies. Each response model is exactly what the routes
return (FastAPI validates every answer against it, and schemathesis checks the published
schema against the answers), with examples for the documentation.

Nothing here can carry a secret: accounts come without credentials, sinks without their secret
(and with credentials in their URL masked), tokens without the token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from blingsync.bling.models import PermissionCheck
from blingsync.bling.secrets import redact_url
from blingsync.domain import ApiGeneration, InvoiceStatus, OrderStatus
from blingsync.store.browse import AccountHealth, Delivery, DeliveryState, OrderSummary, SinkSummary
from blingsync.store.records import (
    Account,
    AccountSettings,
    AccountState,
    EventType,
    OutboxEvent,
    RunOutcome,
    SinkKind,
    SyncRun,
)
from blingsync.web.api.order_schema import Order

MAX_ID = 2_147_483_647
"""Ids are 32-bit integers in the database; a larger one cannot name anything."""

Decimal = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$", examples=["1234.50"],
                               description="A decimal in fixed-point notation, as the NF-e writes it.")]

AccountName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                               pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A brand's name in blingsync: 1 to 100 characters, no control characters, trimmed."""

ApiKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                          pattern=r"^[\x21-\x7e]+$")]
"""A Bling API v2 key: printable ASCII without spaces."""

STATE_WORDS: dict[AccountState, str] = {
    AccountState.ACTIVE: "imported normally",
    AccountState.PAUSED: "paused by an operator: not imported until resumed",
    AccountState.NEEDS_REAUTH: "Bling asks for a new authorization: connect the account again (OAuth)",
    AccountState.INVALID_CREDENTIALS: "Bling refused the account's credentials: connect it again with "
                                      "valid ones",
    AccountState.MISSING_PERMISSIONS: "the Bling user or app lacks permissions blingsync needs: grant them "
                                      "in Bling, then check the account",
    AccountState.API_DISCONTINUED: "Bling discontinued API v2 for this account: connect it through OAuth "
                                   "(API v3)",
    AccountState.DAILY_LIMIT: "Bling's daily request limit for this account is used up: imports resume "
                              "when it renews",
}


# --- accounts ---------------------------------------------------------------------------------


class AccountSettingsOut(BaseModel):
    import_authorized: bool = Field(description="Also import notes at Autorizada (DANFE not printed yet).")
    import_nfce: bool = Field(description="Also import NFC-e.")
    initial_lookback_days: int = Field(description="How far back the first import reached.")
    poll_interval_s: int = Field(description="Seconds between two imports of the account.")
    write_back: bool = Field(description="Report the warehouse's shipments back to Bling.")
    write_back_situation: str | None = Field(
        description="The sales-order situation (by name) set in Bling on shipment.")


class SinkOut(BaseModel):
    """Where the account's events go. Never the secret; a URL with credentials comes masked."""

    kind: SinkKind = Field(description="webhook, smartgo or none (pull-only: read the events feed).")
    url: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why the relay switched the sink off (a 410 Gone…).")

    @classmethod
    def of(cls, sink: SinkSummary) -> SinkOut:
        return cls(kind=sink.kind, url=None if sink.url is None else redact_url(sink.url),
                   enabled=sink.enabled, disabled_reason=sink.disabled_reason)


class RunCountersOut(BaseModel):
    listed: int
    created: int
    updated: int
    unchanged: int
    skipped: int
    canceled: int
    quarantined: int


class RunOut(BaseModel):
    """One import pass over one sweep window."""

    id: int
    trigger: str = Field(description="manual, poll, webhook, api, demo.")
    tier: str | None
    window_from: datetime
    window_to: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome
    counters: RunCountersOut
    requests: int = Field(description="Requests made to Bling.")
    error: str | None

    @classmethod
    def of(cls, run: SyncRun) -> RunOut:
        c = run.counters
        return cls(id=run.id, trigger=run.trigger, tier=run.tier, window_from=run.window_from,
                   window_to=run.window_to, started_at=run.started_at, finished_at=run.finished_at,
                   outcome=run.outcome, requests=run.requests, error=run.error,
                   counters=RunCountersOut(listed=c.listed, created=c.created, updated=c.updated,
                                           unchanged=c.unchanged, skipped=c.skipped, canceled=c.canceled,
                                           quarantined=c.quarantined))


class Counts(BaseModel):
    pending: int = Field(description="Neither delivered nor dead: waiting for (another) attempt.")
    dead: int = Field(description="Given up after the retry horizon: replay them once the cause is fixed.")


class OrderCounts(BaseModel):
    ready: int
    canceled: int


class HealthOut(BaseModel):
    """Whether the account needs attention, and why, in words."""

    ok: bool = Field(description="True when `problems` is empty.")
    problems: list[str] = Field(description="What needs attention, one sentence each.")
    state: AccountState
    reason: str = Field(description="The state in words, or what made the account leave `active`.")
    last_run: RunOut | None = Field(description="The latest import pass (null: never imported).")
    orders: OrderCounts
    deliveries: Counts = Field(description="Events for the account's sink (and the pull feed).")
    writebacks: Counts = Field(description="Shipments waiting to be written back to Bling.")
    quarantined: int = Field(description="Notes that could not be imported (retried with backoff).")
    sink: SinkOut | None = Field(description="Where events go; null: no sink yet, events wait in the feed.")

    @classmethod
    def of(cls, account: Account, health: AccountHealth) -> HealthOut:
        problems: list[str] = []
        if account.state is not AccountState.ACTIVE:
            problems.append(f"{account.state.value}: {account.state_reason or STATE_WORDS[account.state]}")
        run = health.last_run
        if run is not None and run.outcome in (RunOutcome.FAILED, RunOutcome.INTERRUPTED):
            problems.append(f"the last import {run.outcome.value}" + (f": {run.error}" if run.error else ""))
        if health.dead:
            problems.append(f"{health.dead} dead deliveries: fix the receiver, then replay them")
        if health.writebacks_dead:
            problems.append(f"{health.writebacks_dead} write-backs to Bling gave up: replay them")
        if health.quarantined:
            problems.append(f"{health.quarantined} notes could not be imported (quarantined)")
        if health.sink is not None and not health.sink.enabled:
            problems.append("the sink is switched off" + (
                f": {health.sink.disabled_reason}" if health.sink.disabled_reason else ""))
        return cls(
            ok=not problems, problems=problems, state=account.state,
            reason=account.state_reason or STATE_WORDS[account.state],
            last_run=None if run is None else RunOut.of(run),
            orders=OrderCounts(ready=health.orders_ready, canceled=health.orders_canceled),
            deliveries=Counts(pending=health.pending, dead=health.dead),
            writebacks=Counts(pending=health.writebacks_pending, dead=health.writebacks_dead),
            quarantined=health.quarantined,
            sink=None if health.sink is None else SinkOut.of(health.sink))


class AccountOut(BaseModel):
    """A brand's Bling account, without its credentials."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 1, "name": "Loja Exemplo", "api": "v3", "document": "12345678000195",
        "company_id": "d8d8a6d4f3b54c7e9a1e0f6c2b7a9e11", "state": "active", "reason": "imported normally",
        "created_at": "2026-11-20T13:00:00Z", "updated_at": "2026-11-20T13:00:00Z",
        "settings": {"import_authorized": False, "import_nfce": False, "initial_lookback_days": 30,
                     "poll_interval_s": 60, "write_back": False, "write_back_situation": None},
        "health": {"ok": True, "problems": [], "state": "active", "reason": "imported normally",
                   "last_run": None, "orders": {"ready": 12, "canceled": 1},
                   "deliveries": {"pending": 0, "dead": 0}, "writebacks": {"pending": 0, "dead": 0},
                   "quarantined": 0, "sink": {"kind": "webhook", "url": "https://wms.example/hooks/bling",
                                              "enabled": True, "disabled_reason": None}},
    }]})

    id: int
    name: str
    api: ApiGeneration = Field(description="v3 (OAuth) or v2 (API key).")
    document: str | None = Field(description="The company's CNPJ, digits only, once Bling told it.")
    company_id: str | None = Field(description="Bling's companyId (API v3): what its webhooks carry.")
    state: AccountState
    reason: str = Field(description="The state in words.")
    created_at: datetime
    updated_at: datetime
    settings: AccountSettingsOut
    health: HealthOut

    @classmethod
    def of(cls, account: Account, health: AccountHealth | None = None) -> AccountOut:
        s = account.settings
        return cls(
            id=account.id, name=account.name, api=account.generation, document=account.document,
            company_id=account.company_id, state=account.state,
            reason=account.state_reason or STATE_WORDS[account.state],
            created_at=account.created_at, updated_at=account.updated_at,
            settings=AccountSettingsOut(
                import_authorized=s.import_authorized, import_nfce=s.import_nfce,
                initial_lookback_days=s.initial_lookback_days, poll_interval_s=s.poll_interval_s,
                write_back=s.write_back, write_back_situation=s.write_back_situation),
            health=HealthOut.of(account, health or AccountHealth(account.id)))


class AccountList(BaseModel):
    data: list[AccountOut] = Field(description="Every account, by name.")


class PermissionOut(BaseModel):
    resource: str = Field(description="What the import reads (nfe, nfce, …).")
    label: str = Field(description="The permission as Bling's screens name it.")
    granted: bool

    @classmethod
    def of(cls, check: PermissionCheck) -> PermissionOut:
        return cls(resource=check.resource, label=check.label, granted=check.granted)


class ImportOptions(BaseModel):
    """How a new account is imported (changeable later)."""

    import_nfce: bool = Field(default=False, description="Also import NFC-e.")
    import_authorized: bool = Field(default=False, description="Also import notes at Autorizada.")
    initial_lookback_days: int = Field(default=30, ge=1, le=3650,
                                       description="How far back the first import reaches.")

    def settings(self) -> AccountSettings:
        return AccountSettings(import_nfce=self.import_nfce, import_authorized=self.import_authorized,
                               initial_lookback_days=self.initial_lookback_days)


class ApiKeyConnect(ImportOptions):
    """Connect an account with an API v2 key (what the help article has a brand create)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "api_key", "name": "Loja Exemplo", "api_key": "0123456789abcdef0123456789abcdef01234567"},
    ]})

    method: Literal["api_key"]
    name: AccountName
    api_key: ApiKey = Field(description="The Bling API user's key. Stored encrypted, never shown again.")


class OAuthConnect(ImportOptions):
    """Start Bling's OAuth connect flow for a new account: the answer is a one-time link the
    brand opens in a browser; the account exists once it authorised blingsync in Bling."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "oauth", "name": "Loja Exemplo"},
    ]})

    method: Literal["oauth"]
    name: AccountName


AccountCreate = Annotated[ApiKeyConnect | OAuthConnect, Field(discriminator="method")]


class AccountCreated(BaseModel):
    """An account connected with an API key, and its first permission check."""

    account: AccountOut
    permissions: list[PermissionOut]
    missing: list[str] = Field(description="Labels of the permissions to grant in Bling (empty: none).")


class ConnectLinkOut(BaseModel):
    """A one-time link to Bling's OAuth consent for the account; hand it to the brand."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account": "Loja Exemplo", "url": "https://blingsync.example/oauth/bling/start?ticket=…",
        "expires_at": "2026-11-20T14:00:00Z"}]})

    account: str
    url: str
    expires_at: datetime


class CheckOut(BaseModel):
    """A permission check of an account, and the state it left the account in."""

    ok: bool = Field(description="Every permission granted and the credentials accepted.")
    error: str | None = Field(description="Why Bling refused the credentials (then `permissions` is empty).")
    permissions: list[PermissionOut]
    missing: list[str]
    account: AccountOut


class SyncStarted(BaseModel):
    """A "sync now" accepted: the import runs in the background."""

    account_id: int
    mode: Literal["scheduler", "background", "already_running"] = Field(
        description="scheduler: handed to `blingsync serve`'s scheduler; background: this process "
                    "imports it now; already_running: an import of this account started here before "
                    "and is still running.")
    message: str


# --- orders -----------------------------------------------------------------------------------


class OrderSummaryOut(BaseModel):
    """An order as lists show it; the whole order is `GET /orders/{id}`."""

    id: int
    account_id: int
    account: str
    kind: Literal["nfe", "nfce"]
    status: OrderStatus
    situation: InvoiceStatus
    model: int
    series: int
    number: int
    access_key: str = Field(description="The chave de acesso (44 characters).")
    issued_at: datetime
    recipient_name: str | None
    recipient_document: str | None
    total_value: Decimal
    version: int
    created_at: datetime
    updated_at: datetime
    canceled_at: datetime | None

    @classmethod
    def of(cls, order: OrderSummary) -> OrderSummaryOut:
        return cls(
            id=order.id, account_id=order.account_id, account=order.account,
            kind="nfce" if order.kind == "nfce" else "nfe", status=order.status, situation=order.situation,
            model=order.model, series=order.series, number=order.number, access_key=order.access_key,
            issued_at=order.issued_at, recipient_name=order.recipient_name,
            recipient_document=order.recipient_document, total_value=format(order.total_value, "f"),
            version=order.version, created_at=order.created_at, updated_at=order.updated_at,
            canceled_at=order.canceled_at)


class OrderPage(BaseModel):
    data: list[OrderSummaryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and sort) for the next page; null: this was "
                    "the last.")


# --- events and deliveries --------------------------------------------------------------------


class EventOut(BaseModel):
    """One change of one order, as the warehouse must apply it. Apply each `idempotency_key`
    once: the feed is at-least-once."""

    id: int = Field(description="Increasing; the feed's position (`after`).")
    idempotency_key: str = Field(description="Unique per change: `{chave}-v{version}-{type}`.")
    type: EventType
    account_id: int
    order_id: int
    version: int = Field(description="The order's version after this change.")
    created_at: datetime
    payload: Order = Field(description="The order at that version.")

    @classmethod
    def of(cls, event: OutboxEvent) -> EventOut:
        return cls(id=event.id, idempotency_key=event.idempotency_key, type=event.type,
                   account_id=event.account_id, order_id=event.order_id, version=event.order_version,
                   created_at=event.created_at, payload=Order(event.payload))


class EventPage(BaseModel):
    data: list[EventOut]
    next_after: int = Field(description="Pass as `after` for the next page (the last id read, or the "
                                        "`after` given when the page is empty).")
    has_more: bool = Field(description="The page was full: more events may follow at once.")


class DeliveryOut(BaseModel):
    """An outbox event that was not delivered (yet), without its payload."""

    id: int
    account_id: int
    order_id: int
    channel: Literal["sink", "bling"] = Field(
        description="sink: to the account's sink; bling: a write-back of a shipment to Bling.")
    type: str = Field(description="order.created, order.updated, order.canceled, or a write-back's type.")
    version: int
    idempotency_key: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None = Field(description="The last attempt's failure (never a secret).")
    last_attempt_ms: int | None
    dead_at: datetime | None
    replayed_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        event = delivery.event
        return cls(
            id=event.id, account_id=event.account_id, order_id=event.order_id,
            channel="bling" if delivery.channel == "bling" else "sink", type=str(event.type.value),
            version=event.order_version, idempotency_key=event.idempotency_key,
            state=delivery.state or DeliveryState.PENDING, attempts=event.attempts,
            created_at=event.created_at, next_attempt_at=event.next_attempt_at, last_error=event.last_error,
            last_attempt_ms=event.last_attempt_ms, dead_at=event.dead_at, replayed_at=event.replayed_at)


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_after: int
    has_more: bool
