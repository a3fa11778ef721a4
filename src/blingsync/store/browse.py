"""Reads for the REST API: an order's summary, the events feed, the deliveries, the accounts'
health. (The order list and search is `blingsync.store.dashboard`'s, shared with the dashboard;
the order summary it lists is defined here.)

`Store` inherits `BrowseStore`, so these are ordinary store methods.

Every list here pages by **keyset on the row id** (`id > after`, ordered by id, `LIMIT n`),
never by offset: ids are handed out increasing and never reused, so a page boundary is a fixed
point in the table. Rows inserted while a client pages through land beyond the boundary, where
the client reaches them; no row is seen twice and none that existed is skipped, which an
`OFFSET` cannot promise. The events feed adds the outbox's own guarantee that ids become visible
in id order (see `blingsync.store.repo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Row, func, select
from sqlalchemy.sql.elements import ColumnElement

from blingsync.domain import InvoiceStatus, OrderStatus
from blingsync.store.account_views import queue_and_runs
from blingsync.store.errors import OrderNotFound
from blingsync.store.outbox import (
    CHANNEL_SINK,
    CHANNELS,
    EVENT_DEAD,
    EVENT_PENDING,
    EVENT_UNDELIVERED,
    outbox_event,
)
from blingsync.store.part import StorePart
from blingsync.store.records import OutboxEvent, SinkKind, SyncRun
from blingsync.store.tables import accounts, orders, outbox, sinks


class DeliveryState(StrEnum):
    PENDING = "pending"  # neither delivered nor dead: a relay will (still) try it
    DEAD = "dead"  # tried past the retry horizon: waits for an operator's replay


@dataclass(frozen=True)
class OrderSummary:
    """An order as a list shows it: the columns copied out of its content for listing and
    searching, without reading the content itself."""

    id: int
    account_id: int
    account: str
    kind: str
    status: OrderStatus
    situation: InvoiceStatus
    model: int
    series: int
    number: int
    access_key: str
    issued_at: datetime
    recipient_name: str | None
    recipient_document: str | None
    total_value: Decimal
    version: int
    created_at: datetime
    updated_at: datetime
    canceled_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """An outbox event as the deliveries list shows it: the event and its channel."""

    event: OutboxEvent
    channel: str

    @property
    def state(self) -> DeliveryState | None:
        if self.event.delivered_at is not None:
            return None
        return DeliveryState.DEAD if self.event.dead_at is not None else DeliveryState.PENDING


@dataclass(frozen=True)
class SinkSummary:
    """An account's sink without its secret (and with its URL as stored: the caller redacts)."""

    kind: SinkKind
    url: str | None
    enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True)
class AccountHealth:
    """What an operator looks at first for one account: its orders, its deliveries (pending and
    dead, sink events and write-backs to Bling apart), its quarantine and its latest import."""

    account_id: int
    orders_ready: int = 0
    orders_canceled: int = 0
    pending: int = 0
    dead: int = 0
    writebacks_pending: int = 0
    writebacks_dead: int = 0
    quarantined: int = 0
    last_run: SyncRun | None = None
    sink: SinkSummary | None = None



SUMMARY_COLUMNS: Final = (
    orders.c.id, orders.c.account_id, accounts.c.name.label("account_name"), orders.c.kind, orders.c.status,
    orders.c.situation, orders.c.model, orders.c.series, orders.c.number, orders.c.access_key,
    orders.c.issued_at, orders.c.recipient_name, orders.c.recipient_document, orders.c.total_value,
    orders.c.version, orders.c.created_at, orders.c.updated_at, orders.c.canceled_at,
)
"""The columns of an `OrderSummary` (with `orders` joined to `accounts`): see `order_summary_of`."""


class BrowseStore(StorePart):
    """The methods of `Store` for browsing (mixed in; see the module docstring)."""

    # --- orders -------------------------------------------------------------------------------

    async def order_summary(self, order_id: int) -> OrderSummary:
        async with self._read() as conn:
            row = (await conn.execute(select(*SUMMARY_COLUMNS)
                                      .join(accounts, accounts.c.id == orders.c.account_id)
                                      .where(orders.c.id == order_id))).first()
        if row is None:
            raise OrderNotFound(f"no order with id {order_id}")
        return order_summary_of(row)

    # --- events -------------------------------------------------------------------------------

    async def feed_events(self, *, after_id: int = 0, limit: int = 100,
                          account_id: int | None = None) -> list[OutboxEvent]:
        """The pull feed: sink events after `after_id`, in id order, delivered or not (a pull
        consumer keeps its own position; what a relay did is irrelevant to it)."""
        if limit <= 0:
            return []
        statement = select(outbox).where(outbox.c.id > after_id, outbox.c.channel == CHANNEL_SINK)
        if account_id is not None:
            statement = statement.where(outbox.c.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(statement.order_by(outbox.c.id).limit(limit))).all()
        return [outbox_event(row) for row in rows]

    async def deliveries(self, *, state: DeliveryState | None = None, account_id: int | None = None,
                         channel: str | None = None, after_id: int = 0, limit: int = 100) -> list[Delivery]:
        """Undelivered events (pending and dead, or only `state`), by id after `after_id`."""
        if limit <= 0:
            return []
        if channel is not None and channel not in CHANNELS:
            raise ValueError(f"unknown outbox channel {channel!r}; expected one of {sorted(CHANNELS)}")
        which = {None: EVENT_UNDELIVERED, DeliveryState.PENDING: EVENT_PENDING,
                 DeliveryState.DEAD: EVENT_DEAD}[state]
        statement = select(outbox).where(outbox.c.id > after_id, which)
        if account_id is not None:
            statement = statement.where(outbox.c.account_id == account_id)
        if channel is not None:
            statement = statement.where(outbox.c.channel == channel)
        async with self._read() as conn:
            rows = (await conn.execute(statement.order_by(outbox.c.id).limit(limit))).all()
        return [Delivery(outbox_event(row), row.channel) for row in rows]

    async def delivery(self, event_id: int) -> Delivery | None:
        async with self._read() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.id == event_id))).first()
        return None if row is None else Delivery(outbox_event(row), row.channel)

    # --- account health -----------------------------------------------------------------------

    async def account_health(self, account_ids: Sequence[int] | None = None) -> dict[int, AccountHealth]:
        """Health of the given accounts (every account when None), a fixed number of grouped
        queries however many accounts there are."""
        def only(column: Any) -> list[ColumnElement[bool]]:
            return [] if account_ids is None else [column.in_(list(account_ids))]

        found: dict[int, dict[str, Any]] = {}

        def put(account_id: int, **values: Any) -> None:
            found.setdefault(int(account_id), {}).update(values)

        async with self._read() as conn:
            ids = await conn.scalars(select(accounts.c.id).where(*only(accounts.c.id)))
            for account_id in ids:
                put(account_id)
            status_counts = await conn.execute(
                select(orders.c.account_id, orders.c.status, func.count())
                .where(*only(orders.c.account_id)).group_by(orders.c.account_id, orders.c.status))
            for account_id, status, count in status_counts:
                key = "orders_ready" if status == OrderStatus.READY.value else "orders_canceled"
                put(account_id, **{key: int(count)})
            for account_id, values in (await queue_and_runs(conn, account_ids)).items():
                put(account_id, **values)
            sink_rows = await conn.execute(
                select(sinks.c.account_id, sinks.c.kind, sinks.c.url, sinks.c.enabled,
                       sinks.c.disabled_reason).where(*only(sinks.c.account_id)))
            for row in sink_rows:
                put(row.account_id, sink=SinkSummary(SinkKind(row.kind), row.url, bool(row.enabled),
                                                     row.disabled_reason))
        return {account_id: AccountHealth(account_id, **values)
                for account_id, values in sorted(found.items())}


def order_summary_of(row: Row[Any, *tuple[Any, ...]]) -> OrderSummary:
    """The `OrderSummary` of a row selecting `SUMMARY_COLUMNS`."""
    return OrderSummary(
        id=row.id, account_id=row.account_id, account=row.account_name, kind=row.kind,
        status=OrderStatus(row.status), situation=InvoiceStatus(row.situation), model=row.model,
        series=row.series, number=row.number, access_key=row.access_key, issued_at=row.issued_at,
        recipient_name=row.recipient_name, recipient_document=row.recipient_document,
        total_value=row.total_value, version=row.version, created_at=row.created_at,
        updated_at=row.updated_at, canceled_at=row.canceled_at)
