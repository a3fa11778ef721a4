"""Shipments the warehouse reports: `POST /api/v1/orders/{order_id}/shipment` and
`GET /api/v1/orders/{order_id}/shipments` (docs/writeback.md).

A report is stored with, when the order's account writes back to Bling, its write-back queued
in the same transaction (`blingsync.store.shipments`); the write-back relay takes it to Bling
(`blingsync.delivery.writeback`). The answer never waits for Bling: 201 with the stored
shipment and its write-back's state, which `GET …/shipments` shows as it progresses.

Reporting the same shipment again (every field equal) answers 200 with the shipment stored the
first time and queues nothing: a warehouse that lost an answer can simply send again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from blingsync.service import Service
from blingsync.store.shipments import (
    CARRIER_LIMIT,
    TRACKING_CODE_LIMIT,
    TRACKING_URL_LIMIT,
    OrderCanceled,
    Shipment,
    ShipmentReport,
    ShipmentStatus,
    WritebackState,
)
from blingsync.web.api.auth import require_admin, require_read
from blingsync.web.api.problems import COMMON_RESPONSES, CONFLICT, NOT_FOUND, ApiRoute
from blingsync.web.deps import Wakeups
from blingsync.web.deps import service as service_dep
from blingsync.web.deps import wakeups as wakeups_dep

router = APIRouter(route_class=ApiRoute, tags=["shipments"])

CLOCK_SKEW: Final = timedelta(minutes=15)
"""How far in the future `shipped_at` may be (clocks differ a little); more is a mistake, most
often a local time sent with the wrong UTC offset."""
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

OrderId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The order's id in blingsync.")]


def _no_control_characters(value: str, name: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not contain control characters (line breaks, tabs, NUL)")
    if not value.strip():
        raise ValueError(f"{name} must not be blank")
    return value.strip()


class ShipmentIn(BaseModel):
    """What the warehouse reports when an order leaves (and later, as it travels)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "status": "shipped", "tracking_code": "AB123456789BR", "carrier": "Correios",
        "shipped_at": "2026-11-20T14:03:00-03:00",
        "tracking_url": "https://rastreamento.correios.com.br/app/index.php?objeto=AB123456789BR",
    }]})

    status: ShipmentStatus = Field(description=(
        "`shipped` (handed to the carrier), `in_transit`, `awaiting_pickup` (at a pickup point), "
        "`delivered`, `not_delivered` (a delivery attempt failed) or `returned` (back to the sender)."))
    tracking_code: str = Field(min_length=1, max_length=TRACKING_CODE_LIMIT,
                               description="The carrier's tracking code.")
    carrier: str = Field(min_length=1, max_length=CARRIER_LIMIT, description="The carrier's name.")
    shipped_at: AwareDatetime = Field(description=(
        "When the order left the warehouse, with its UTC offset; not in the future."))
    tracking_url: str | None = Field(default=None, min_length=1, max_length=TRACKING_URL_LIMIT,
                                     description="Where the recipient follows the shipment (http or https).")

    @field_validator("tracking_code", "carrier")
    @classmethod
    def _printable(cls, value: str, info: Any) -> str:
        return _no_control_characters(value, str(info.field_name))

    @field_validator("tracking_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _no_control_characters(value, "tracking_url")
        parts = urlsplit(value)  # ValueError for a malformed one (an unclosed IPv6 bracket)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("tracking_url must be an http(s) URL")
        return value


class WritebackOut(BaseModel):
    """Where the shipment's write-back to Bling stands."""

    event_id: int = Field(description="Its outbox event (`blingsync deliveries replay` takes this id).")
    state: WritebackState = Field(description="`pending` (queued or being retried), `delivered` or `dead`.")
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed, in words.")
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class ShipmentOut(BaseModel):
    """A stored shipment report."""

    id: int
    order_id: int
    account_id: int
    status: ShipmentStatus
    tracking_code: str
    carrier: str
    shipped_at: datetime
    tracking_url: str | None
    reported_at: datetime = Field(description="When blingsync received the report.")
    write_back: WritebackOut | None = Field(description=(
        "Its write-back to Bling; null when the account did not write back when it was reported."))


def _out(shipment: Shipment) -> ShipmentOut:
    report = shipment.report
    write_back = shipment.write_back
    return ShipmentOut(
        id=shipment.id, order_id=shipment.order_id, account_id=shipment.account_id, status=report.status,
        tracking_code=report.tracking_code, carrier=report.carrier, shipped_at=report.shipped_at,
        tracking_url=report.tracking_url, reported_at=shipment.reported_at,
        write_back=None if write_back is None else WritebackOut(
            event_id=write_back.event_id, state=write_back.state, attempts=write_back.attempts,
            last_error=write_back.last_error, next_attempt_at=write_back.next_attempt_at,
            delivered_at=write_back.delivered_at))


@router.post(
    "/orders/{order_id}/shipment", status_code=201, response_model=ShipmentOut,
    dependencies=[Depends(require_admin)],
    summary="Report a shipment of an order",
    responses={**COMMON_RESPONSES,
               200: {"model": ShipmentOut, "description": (
                   "The same report (every field equal) was stored before: that shipment; nothing "
                   "is queued again.")},
               201: {"description": "Stored; its write-back to Bling queued if the account writes back."},
               404: NOT_FOUND,
               409: {**CONFLICT, "description": "The order was canceled in Bling: it must not be shipped."}},
)
async def report_shipment(
    order_id: OrderId, body: ShipmentIn, response: Response,
    service: Annotated[Service, Depends(service_dep)], wakeups: Annotated[Wakeups, Depends(wakeups_dep)],
) -> ShipmentOut:
    """The warehouse reports that an order left (tracking code, carrier, when) or how its
    shipment goes on. When the order's account writes back to Bling (`blingsync writeback set
    ACCOUNT --on`), the note's logistics object gets the tracking code and situation and the
    linked sales order moves to the configured situation, shortly after this answer."""
    if body.shipped_at < EARLIEST:
        raise HTTPException(422, detail="body field shipped_at: must not be before 2000-01-01")
    if body.shipped_at > service.now() + CLOCK_SKEW:
        raise HTTPException(422, detail=(
            "body field shipped_at: is in the future; send when the order left, with its UTC offset "
            "(e.g. 2026-11-20T14:03:00-03:00)"))
    try:
        report = ShipmentReport(status=body.status, tracking_code=body.tracking_code, carrier=body.carrier,
                                shipped_at=body.shipped_at, tracking_url=body.tracking_url)
    except ValueError as exc:
        raise HTTPException(422, detail=f"request body: {exc}") from None
    try:
        recorded = await service.store.record_shipment(order_id, report)
    except OrderCanceled as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if not recorded.created:
        response.status_code = 200
    elif recorded.shipment.write_back is not None:
        wakeups.outbox()
    return _out(recorded.shipment)


@router.get(
    "/orders/{order_id}/shipments", response_model=list[ShipmentOut], dependencies=[Depends(require_read)],
    summary="An order's shipment reports", responses={**COMMON_RESPONSES, 404: NOT_FOUND},
)
async def list_shipments(order_id: OrderId,
                         service: Annotated[Service, Depends(service_dep)]) -> list[ShipmentOut]:
    """Every report of the order, oldest first, each with its write-back's state."""
    return [_out(shipment) for shipment in await service.store.shipments(order_id)]
