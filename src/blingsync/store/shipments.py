"""The warehouse's shipment reports (`shipments`) and the write-back events they queue.

`Store` inherits `ShipmentStore`, so these are ordinary store methods, one transaction each.

Why it is shaped this way:

* **The report and its write-back exist together or not at all.** `record_shipment` stores the
  row and, when the account writes back to Bling, the outbox event of channel `bling` in one
  transaction: a crash between the two cannot leave a shipment that never reaches Bling, nor an
  event for a shipment that was never stored.
* **The same report twice is one shipment.** A warehouse retries a request whose answer it lost;
  a report equal in every field to one already stored for the order returns that one (and
  queues nothing), so Bling is written to once per report. A report that differs in anything
  (a corrected carrier, a new status) is a new shipment and a new write-back.
* **The event names the note, not the Bling sales order.** Which sales order and which
  logistics objects belong to the note is Bling's to say at delivery time
  (`blingsync.delivery.writeback`); the configured situation is read then too, so fixing it
  fixes the events waiting.
* **The order row is locked first** (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on
  SQLite): two identical reports at the same instant store one row, and a shipment never
  slips in beside the cancellation of its order.

The records are plain dataclasses defined here, beside the only code that builds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Row, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from blingsync.domain import OrderStatus
from blingsync.store.codec import canonical_json, settings_from_json
from blingsync.store.errors import OrderNotFound, StoreError
from blingsync.store.outbox import CHANNEL_BLING
from blingsync.store.part import StorePart
from blingsync.store.records import EventType
from blingsync.store.tables import accounts, orders, outbox, shipments

SHIPMENT_EVENT: Final = EventType.SHIPMENT.value
"""The outbox type of a shipment's write-back to Bling (channel `bling`)."""

TRACKING_CODE_LIMIT: Final = 100  # the column's width
CARRIER_LIMIT: Final = 200
TRACKING_URL_LIMIT: Final = 255
"""Bling's text fields take 255 characters (as the simulator emulates; the OpenAPI document states
no limit): a longer URL would make the write-back fail, so it is refused when reported."""


class ShipmentStatus(StrEnum):
    """Where the shipment is, in the warehouse's words. Each maps to one situation of a Bling
    logistics object's tracking (`blingsync.delivery.writeback.TRACKING_SITUATIONS`)."""

    SHIPPED = "shipped"  # handed to the carrier (Bling: Postado)
    IN_TRANSIT = "in_transit"  # on its way (Em andamento)
    AWAITING_PICKUP = "awaiting_pickup"  # waiting at a pickup point (Aguardando retirada)
    DELIVERED = "delivered"  # the recipient has it (Entregue)
    NOT_DELIVERED = "not_delivered"  # a delivery attempt failed (Não entregue)
    RETURNED = "returned"  # on its way back, or back, to the sender (Não entregue)


def _printable(value: str, name: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{name} is at most {limit} characters, got {len(value)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not contain control characters (line breaks, tabs, NUL)")
    return value


@dataclass(frozen=True)
class ShipmentReport:
    """What the warehouse reports about one shipment of an order. Checked on construction:
    texts trimmed, printable and within their limits, `shipped_at` aware, the URL http(s)."""

    status: ShipmentStatus
    tracking_code: str
    carrier: str
    shipped_at: datetime
    tracking_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ShipmentStatus(self.status))
        object.__setattr__(self, "tracking_code",
                           _printable(self.tracking_code, "tracking_code", TRACKING_CODE_LIMIT))
        object.__setattr__(self, "carrier", _printable(self.carrier, "carrier", CARRIER_LIMIT))
        if self.shipped_at.tzinfo is None or self.shipped_at.utcoffset() is None:
            raise ValueError("shipped_at must carry its UTC offset (e.g. 2026-11-20T14:03:00-03:00)")
        object.__setattr__(self, "shipped_at", self.shipped_at.astimezone(UTC))
        if self.tracking_url is not None:
            url = _printable(self.tracking_url, "tracking_url", TRACKING_URL_LIMIT)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("tracking_url must be an http(s) URL")
            object.__setattr__(self, "tracking_url", url)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "tracking_code": self.tracking_code, "carrier": self.carrier,
                "shipped_at": self.shipped_at.isoformat(), "tracking_url": self.tracking_url}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShipmentReport:
        return cls(status=ShipmentStatus(data["status"]), tracking_code=data["tracking_code"],
                   carrier=data["carrier"], shipped_at=datetime.fromisoformat(data["shipped_at"]),
                   tracking_url=data.get("tracking_url"))


@dataclass(frozen=True)
class NoteRefData:
    """The Bling note an order came from, as the write-back needs to find it again."""

    kind: str  # "nfe" | "nfce"
    bling_id: int
    access_key: str
    number: int


@dataclass(frozen=True)
class ShipmentWriteback:
    """The payload of a `bling.shipment` event: the report and the note it concerns."""

    shipment_id: int
    order_id: int
    report: ShipmentReport
    reported_at: datetime
    note: NoteRefData

    def as_json(self) -> dict[str, Any]:
        return {"shipment_id": self.shipment_id, "order_id": self.order_id, **self.report.as_json(),
                "reported_at": self.reported_at.isoformat(),
                "note": {"kind": self.note.kind, "bling_id": self.note.bling_id,
                         "access_key": self.note.access_key, "number": self.note.number}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShipmentWriteback:
        """Raises ValueError (or KeyError, TypeError) for a payload this version cannot read."""
        note = data["note"]
        reported_at = datetime.fromisoformat(data["reported_at"])
        if reported_at.tzinfo is None:
            raise ValueError("reported_at has no UTC offset")
        return cls(shipment_id=int(data["shipment_id"]), order_id=int(data["order_id"]),
                   report=ShipmentReport.from_json(data), reported_at=reported_at,
                   note=NoteRefData(kind=str(note["kind"]), bling_id=int(note["bling_id"]),
                                    access_key=str(note["access_key"]), number=int(note["number"])))


class WritebackState(StrEnum):
    PENDING = "pending"  # queued or being retried
    DELIVERED = "delivered"  # Bling has it
    DEAD = "dead"  # given up: see last_error, replay with `blingsync deliveries replay`


@dataclass(frozen=True)
class WritebackStatus:
    """Where a shipment's write-back to Bling stands (its outbox event)."""

    event_id: int
    state: WritebackState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Shipment:
    """A stored report. `write_back` is None when the account did not write back to Bling
    when it was reported."""

    id: int
    account_id: int
    order_id: int
    report: ShipmentReport
    reported_at: datetime
    write_back: WritebackStatus | None = None


@dataclass(frozen=True)
class RecordedShipment:
    shipment: Shipment
    created: bool  # False: the same report was stored before; nothing was queued again


class OrderCanceled(StoreError):
    """A shipment reported for an order that was canceled in Bling: the goods must not leave."""

    def __init__(self, order_id: int, number: int) -> None:
        super().__init__(f"order {order_id} (NF-e {number}) was canceled in Bling; a canceled order "
                         "cannot be shipped, so the report was not stored")
        self.order_id = order_id


def shipment_event_key(access_key: str, shipment_id: int) -> str:
    """The write-back's idempotency key: one per shipment, stable across retries and replays
    (unique per account, like every outbox key)."""
    return f"{access_key}-shipment-{shipment_id}"


def _shipment(row: Row[Any], write_back: WritebackStatus | None) -> Shipment:
    return Shipment(id=row.id, account_id=row.account_id, order_id=row.order_id,
                    report=ShipmentReport.from_json(json.loads(row.payload)), reported_at=row.reported_at,
                    write_back=write_back)


def _status(row: Row[Any]) -> WritebackStatus:
    if row.delivered_at is not None:
        state = WritebackState.DELIVERED
    elif row.dead_at is not None:
        state = WritebackState.DEAD
    else:
        state = WritebackState.PENDING
    return WritebackStatus(event_id=row.id, state=state, attempts=row.attempts, last_error=row.last_error,
                           next_attempt_at=row.next_attempt_at, delivered_at=row.delivered_at)


class ShipmentStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""

    async def record_shipment(self, order_id: int, report: ShipmentReport) -> RecordedShipment:
        """Store the report (or find the identical one stored before) and, when the order's
        account writes back to Bling, queue its write-back, in one transaction. Raises
        `OrderNotFound` and `OrderCanceled`."""
        payload = canonical_json(report.as_json())
        async with self._write() as conn:
            order = (await conn.execute(
                select(orders.c.id, orders.c.account_id, orders.c.status, orders.c.access_key,
                       orders.c.version, orders.c.kind, orders.c.bling_id, orders.c.number)
                .where(orders.c.id == order_id).with_for_update())).first()
            if order is None:
                raise OrderNotFound(f"no order with id {order_id}")
            if OrderStatus(order.status) is OrderStatus.CANCELED:
                raise OrderCanceled(order_id, order.number)
            same = (await conn.execute(select(shipments).where(
                shipments.c.order_id == order_id, shipments.c.status == report.status.value,
                shipments.c.tracking_code == report.tracking_code, shipments.c.payload == payload,
            ).order_by(shipments.c.id).limit(1))).first()
            if same is not None:
                statuses = await self._writebacks(conn, order.account_id, order.access_key, [same.id])
                return RecordedShipment(_shipment(same, statuses.get(same.id)), created=False)
            settings = settings_from_json(await conn.scalar(
                select(accounts.c.settings).where(accounts.c.id == order.account_id)) or "{}")
            now = self._now()
            result = await conn.execute(insert(shipments).values(
                account_id=order.account_id, order_id=order_id, status=report.status.value,
                tracking_code=report.tracking_code, carrier=report.carrier, shipped_at=report.shipped_at,
                reported_at=now, payload=payload).returning(shipments.c.id))
            shipment_id = int(result.scalar_one())
            write_back: WritebackStatus | None = None
            if settings.write_back:
                event = ShipmentWriteback(
                    shipment_id=shipment_id, order_id=order_id, report=report, reported_at=now,
                    note=NoteRefData(kind=order.kind, bling_id=order.bling_id, access_key=order.access_key,
                                     number=order.number))
                write_back = await self._queue_writeback(conn, order.account_id, order.version, event, now)
        return RecordedShipment(Shipment(id=shipment_id, account_id=order.account_id, order_id=order_id,
                                         report=report, reported_at=now, write_back=write_back),
                                created=True)

    async def _queue_writeback(self, conn: AsyncConnection, account_id: int, order_version: int,
                               event: ShipmentWriteback, now: datetime) -> WritebackStatus:
        """The outbox row of a write-back; last in its transaction, under the outbox lock on
        PostgreSQL (see `blingsync.store.repo`: event ids become visible in id order)."""
        if self._postgres:
            from blingsync.store.repo import OUTBOX_LOCK  # repo imports this module

            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK})
        result = await conn.execute(insert(outbox).values(
            account_id=account_id, order_id=event.order_id, type=SHIPMENT_EVENT, channel=CHANNEL_BLING,
            order_version=order_version,
            idempotency_key=shipment_event_key(event.note.access_key, event.shipment_id),
            payload=json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":")),
            created_at=now, attempts=0, next_attempt_at=now, last_error=None, delivered_at=None,
            dead_at=None).returning(outbox.c.id))
        return WritebackStatus(event_id=int(result.scalar_one()), state=WritebackState.PENDING, attempts=0,
                               last_error=None, next_attempt_at=now, delivered_at=None)

    async def shipments(self, order_id: int) -> list[Shipment]:
        """The order's shipment reports, oldest first, each with its write-back's state.
        Raises `OrderNotFound`."""
        async with self._read() as conn:
            order = (await conn.execute(select(orders.c.account_id, orders.c.access_key)
                                        .where(orders.c.id == order_id))).first()
            if order is None:
                raise OrderNotFound(f"no order with id {order_id}")
            rows = (await conn.execute(select(shipments).where(shipments.c.order_id == order_id)
                                       .order_by(shipments.c.id))).all()
            statuses = await self._writebacks(conn, order.account_id, order.access_key, [r.id for r in rows])
        return [_shipment(row, statuses.get(row.id)) for row in rows]

    @staticmethod
    async def _writebacks(conn: AsyncConnection, account_id: int, access_key: str,
                          shipment_ids: list[int]) -> dict[int, WritebackStatus]:
        if not shipment_ids:
            return {}
        keys = {shipment_event_key(access_key, sid): sid for sid in shipment_ids}
        rows = (await conn.execute(select(outbox).where(
            outbox.c.account_id == account_id, outbox.c.channel == CHANNEL_BLING,
            outbox.c.idempotency_key.in_(list(keys))))).all()
        return {keys[row.idempotency_key]: _status(row) for row in rows}
