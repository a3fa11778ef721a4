"""What the store hands out and takes in: plain records, no SQLAlchemy objects (a session never
escapes the store, so a caller cannot lazy-load half a row after its transaction ended)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from blingsync.bling.auth import StoredTokens
from blingsync.bling.secrets import Secret, redact_url
from blingsync.domain import (
    ApiGeneration,
    ExpeditionOrder,
    InvoiceStatus,
    OrderLinks,
    OrderStatus,
)


class AccountState(StrEnum):
    """Why an account is (not) being imported; the UI shows `reason` beside it."""

    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REAUTH = "needs_reauth"
    INVALID_CREDENTIALS = "invalid_credentials"
    MISSING_PERMISSIONS = "missing_permissions"
    API_DISCONTINUED = "api_discontinued"
    DAILY_LIMIT = "daily_limit"


@dataclass(frozen=True)
class SweepTier:
    """One tier of the tiered sweeps (DESIGN.md, import algorithm step 1): every `every`, list
    the notes emitted in the last `lookback` before the tier's cursor."""

    name: str
    lookback: timedelta
    every: timedelta


DEFAULT_TIERS: Final = (
    SweepTier("recent", timedelta(days=2), timedelta(0)),
    SweepTier("week", timedelta(days=7), timedelta(hours=1)),
    SweepTier("month", timedelta(days=31), timedelta(days=1)),
)


@dataclass(frozen=True)
class AccountSettings:
    """Per-account import settings (JSON in `accounts.settings`)."""

    import_authorized: bool = False  # also import notes at Autorizada (DANFE not printed yet)
    import_nfce: bool = False
    initial_lookback_days: int = 30  # how far back the first import reaches
    poll_interval_s: int = 60
    write_back: bool = False  # report the warehouse's shipments back to Bling (logistics, order situation)
    write_back_situation: str | None = None  # the sales-order situation, by name, set on shipment
    stale_authorized_hours: int = 24  # "Autorizada, DANFE not printed yet" is reported after this
    tiers: tuple[SweepTier, ...] = DEFAULT_TIERS


@dataclass(frozen=True)
class V3Credentials:
    # The secret stays out of the repr: records end up in logs and tracebacks.
    client_id: str
    client_secret: str = field(repr=False)
    tokens: StoredTokens | None = None  # Secret values: masked in any repr


@dataclass(frozen=True)
class V2Credentials:
    api_key: str = field(repr=False)


Credentials = V3Credentials | V2Credentials


@dataclass(frozen=True)
class NewAccount:
    name: str
    generation: ApiGeneration
    credentials: Credentials
    bling_url: str  # v3 base (OAuth below it)
    bling_v2_url: str
    document: str | None = None  # the company's CNPJ, from `company()` when known
    settings: AccountSettings = field(default_factory=AccountSettings)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    generation: ApiGeneration
    bling_url: str
    bling_v2_url: str
    document: str | None
    settings: AccountSettings
    state: AccountState
    state_reason: str | None
    created_at: datetime
    updated_at: datetime
    company_id: str | None = None  # Bling's companyId (API v3), what its webhooks carry


@dataclass(frozen=True)
class ImportedNote:
    """One note ready to be stored: what Bling says of it plus the order read from its XML."""

    kind: str  # "nfe" | "nfce"
    bling_id: int
    situation: InvoiceStatus
    order: ExpeditionOrder
    xml: bytes
    links: OrderLinks


class SaveResult(StrEnum):
    CREATED = "created"  # new order, event order.created
    UPDATED = "updated"  # content changed, version + 1, event order.updated
    CANCELED = "canceled"  # status ready → canceled, event order.canceled
    UNCHANGED = "unchanged"  # nothing the warehouse must hear about; no event
    NOT_FOUND = "not_found"  # cancel_order: the note was never imported


@dataclass(frozen=True)
class SaveOutcome:
    result: SaveResult
    order_id: int | None
    version: int | None


@dataclass(frozen=True)
class KnownNote:
    order_id: int
    access_key: str
    situation: InvoiceStatus
    status: OrderStatus
    version: int


class EventType(StrEnum):
    CREATED = "order.created"
    UPDATED = "order.updated"
    CANCELED = "order.canceled"
    SHIPMENT = "bling.shipment"  # a shipment written back to Bling (outbox channel "bling")


@dataclass(frozen=True)
class OutboxEvent:
    id: int  # increasing: the order of events per order and the feed's cursor
    account_id: int
    order_id: int
    type: EventType
    order_version: int
    idempotency_key: str  # f"{access_key}-v{version}-{type}": stable across retries, re-runs, re-adds
    payload: dict[str, object]  # the order JSON at that version
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    dead_at: datetime | None
    # Delivery state (migration 0002), defaulted so that older callers keep building events.
    leased_until: datetime | None = None  # claimed by a relay until then
    replayed_at: datetime | None = None  # an operator's replay: the retry horizon restarts here
    last_attempt_ms: int | None = None

    @property
    def pending(self) -> bool:
        """Neither delivered nor dead: a relay will (still) try it, or a pull consumer reads it."""
        return self.delivered_at is None and self.dead_at is None


@dataclass(frozen=True)
class QuarantineEntry:
    """A note that could not be imported, and why in words (English; `reason_code` says it as
    a `sync.reasons.QuarantineCode` the dashboard translates)."""

    kind: str
    bling_id: int
    reason: str
    number: int | None = None
    access_key: str | None = None
    payload: bytes | None = None  # the raw XML or JSON that failed, capped by the caller
    reason_code: str | None = None


@dataclass(frozen=True)
class QuarantinedNote:
    account_id: int
    kind: str
    bling_id: int
    number: int | None
    access_key: str | None
    reason: str
    payload: bytes | None
    attempts: int
    first_seen: datetime
    last_seen: datetime
    next_attempt_at: datetime
    reason_code: str | None = None  # None: stored before the codes (migration 0006)


@dataclass(frozen=True)
class UnimportedNote:
    """A note seen in Bling but not imported, and why (the help article's most common surprise:
    an Autorizada note whose DANFE was never printed)."""

    kind: str
    bling_id: int
    number: int
    situation: InvoiceStatus
    issued_at: datetime
    reason: str
    access_key: str | None = None
    reason_code: str | None = None  # sync.reasons.UnimportedCode; None: stored before the codes


class RunOutcome(StrEnum):
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # the window completed, some notes quarantined
    FAILED = "failed"  # stopped early: the cursor did not move
    INTERRUPTED = "interrupted"  # found `running` by a later run: the process died


@dataclass(frozen=True)
class RunCounters:
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # already stored at this situation: no detail call
    canceled: int = 0
    quarantined: int = 0


@dataclass(frozen=True)
class SyncRun:
    id: int
    account_id: int
    trigger: str  # "manual" | "poll" | "webhook" | "demo"
    tier: str | None
    window_from: datetime
    window_to: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome
    counters: RunCounters
    requests: int
    error: str | None
    error_code: str | None = None  # sync.reasons: a RunCode or a Bling error's code; None: none stored


class SinkKind(StrEnum):
    """Where an account's events go (`blingsync.delivery.sinks`)."""

    WEBHOOK = "webhook"  # a signed POST per event (Standard Webhooks)
    SMARTGO = "smartgo"  # the SmartGo WMS gateway
    NONE = "none"  # pull-only: the warehouse reads the events feed; nothing is pushed


PUSH_KINDS: Final = frozenset({SinkKind.WEBHOOK, SinkKind.SMARTGO})
"""The kinds a relay delivers to; a `none` sink's events are only read through the feed."""


@dataclass(frozen=True)
class SinkConfig:
    """One account's sink as stored. The secret (the webhook's `whsec_…` signing secret, the
    SmartGo api_key) travels as a `Secret` and is sealed at rest; `options` holds the kind's
    other, non-secret settings (SmartGo's doc_depositante, say)."""

    kind: SinkKind
    url: str | None = None
    secret: Secret | None = None
    options: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    disabled_reason: str | None = None  # why a relay switched it off (a 410 Gone, …)
    created_at: datetime | None = None  # filled when read from the store
    updated_at: datetime | None = None

    def __repr__(self) -> str:
        # The URL may carry a token in its query or user-info: shown redacted, like the secret.
        url = None if self.url is None else redact_url(self.url)
        return (f"SinkConfig(kind={self.kind.value!r}, url={url!r}, secret={self.secret!r}, "
                f"enabled={self.enabled!r}, disabled_reason={self.disabled_reason!r})")
