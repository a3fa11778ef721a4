"""`/api/v1/orders`: list with filters and search (cursor pages), one order as the order JSON,
and the note's XML as imported.

The list is the dashboard's order search (`Store.find_orders`, the query behind Pedidos): the
same filters and the same search box give the same orders in the same order, here a cursor
page at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from blingsync.domain import BRASILIA, OrderStatus
from blingsync.orderjson import order_json
from blingsync.service import Service
from blingsync.store.dashboard import OrderKey, OrderSearch, OrderSort
from blingsync.web import deps
from blingsync.web.api import cursors
from blingsync.web.api.auth import require_read
from blingsync.web.api.models import MAX_ID, OrderPage, OrderSummaryOut
from blingsync.web.api.order_schema import Order
from blingsync.web.api.problems import NOT_FOUND, ApiRoute

router = APIRouter(prefix="/orders", tags=["orders"], dependencies=[Depends(require_read)],
                   route_class=ApiRoute)

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The order's id.", examples=[1])]
ServiceDep = Annotated[Service, Depends(deps.service)]


def _day_start(day: date) -> datetime:
    """The start of `day` in Brasília (Bling's calendar), in UTC."""
    return datetime.combine(day, time(), BRASILIA).astimezone(UTC)


def _day_end(day: date) -> datetime | None:
    """The start of the day after `day`; None after the last day a date can hold (no bound)."""
    return None if day == date.max else _day_start(day + timedelta(days=1))


@router.get("", response_model=OrderPage)
async def list_orders(
    service: ServiceDep,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                            description="Only this account's orders.")] = None,
    status: Annotated[OrderStatus | None, Query(description="ready or canceled.")] = None,
    issued_from: Annotated[date | None, Query(
        description="Issued on or after this day (Brasília time), YYYY-MM-DD.",
        examples=["2026-11-01"])] = None,
    issued_to: Annotated[date | None, Query(
        description="Issued on or before this day (Brasília time), YYYY-MM-DD.",
        examples=["2026-11-30"])] = None,
    q: Annotated[str | None, Query(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Search: a note number, a chave (spaces allowed), the recipient's CPF/CNPJ (any "
                    "punctuation), an item's SKU, or part of the recipient's name (case and accents "
                    "ignored; a text of only digits, spaces and . / - is never matched against names).",
        examples=["Maria"])] = None,
    sort: Annotated[Literal["-issued_at", "issued_at", "-id", "id"], Query(
        description="-id: last imported first (default; a client that polls for new orders and "
                    "stops at one it knows wants this order: a note issued days ago can be imported "
                    "now); id: first imported first; -issued_at: newest issued first; issued_at: oldest "
                    "issued first (orders issued at the same instant follow their ids).")] = "-id",
    limit: Annotated[int, Query(ge=1, le=500, description="Orders per page.")] = 50,
    cursor: Annotated[str | None, Query(
        max_length=200, description="`next_cursor` of the previous page (same filters and sort).")] = None,
) -> OrderPage:
    """Orders, last imported first by default, a page at a time. Pages follow a cursor, not an
    offset: orders imported while you page never make you see one twice or miss one."""
    if issued_from is not None and issued_to is not None and issued_from > issued_to:
        raise HTTPException(422, detail=f"issued_from {issued_from} is after issued_to {issued_to}")
    newest_first = sort.startswith("-")
    order_sort = OrderSort.IMPORTED if sort.lstrip("-") == "id" else OrderSort.ISSUED
    filters: dict[str, Any] = {"account_id": account_id, "status": status, "issued_from": issued_from,
                               "issued_to": issued_to, "q": q}
    past = None
    if cursor is not None:
        try:
            past = cursors.decode(cursor, sort=sort, filters=filters)
        except cursors.CursorInvalid as exc:
            raise HTTPException(422, detail=str(exc)) from None
    search = OrderSearch(
        account_id=account_id, status=status,
        issued_from=None if issued_from is None else _day_start(issued_from),
        issued_before=None if issued_to is None else _day_end(issued_to),
        q=q)
    found = await service.store.find_orders(search, sort=order_sort, newest_first=newest_first, past=past,
                                            limit=limit + 1)
    page = found[:limit]
    next_cursor = (cursors.encode(OrderKey(page[-1].issued_at, page[-1].id), sort=sort, filters=filters)
                   if len(found) > limit else None)
    return OrderPage(data=[OrderSummaryOut.of(order) for order in page], next_cursor=next_cursor)


@router.get("/{order_id}", response_model=Order, responses={404: NOT_FOUND})
async def show_order(order_id: OrderId, service: ServiceDep) -> Order:
    """The whole order, as the warehouse receives it (schema: `Order`, docs/order-json.md)."""
    return Order(order_json(await service.store.order(order_id)))


@router.get(
    "/{order_id}/xml", response_class=Response, responses={
        200: {"description": "The NF-e XML as Bling gave it at the order's latest version.",
              "content": {"application/xml": {"schema": {"type": "string"}}}},
        404: NOT_FOUND,
    })
async def order_xml(order_id: OrderId, service: ServiceDep) -> Response:
    """The note's XML, byte for byte as imported (checked against its stored SHA-256)."""
    summary = await service.store.order_summary(order_id)
    xml = await service.store.document(order_id)
    return Response(content=xml, media_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{summary.access_key}-nfe.xml"'})
