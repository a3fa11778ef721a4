"""`blingsync orders …`: the imported expedition orders, listed, shown, exported."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table

from blingsync.commands.common import EXIT_USAGE, console, fail, with_service
from blingsync.domain import OrderStatus, StoredOrder
from blingsync.orderjson import order_json
from blingsync.service import Service
from blingsync.store import OrderNotFoundError

app = typer.Typer(help="The imported expedition orders.", no_args_is_help=True)

PAGE = 500


class Format(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


CSV_COLUMNS = (
    "id", "account", "status", "access_key", "number", "series", "issued_at", "total_value",
    "recipient_name", "recipient_document", "recipient_email", "recipient_phone",
    "street", "street_number", "complement", "district", "city", "city_code", "state", "postal_code",
    "carrier_name", "carrier_document", "freight_mode", "store_order_number",
    "volumes", "gross_weight_kg",
    "item_line", "sku", "ean", "description", "quantity", "unit", "unit_value", "item_total_value",
)
"""One row per item line, the order's columns repeated: what a spreadsheet or a WMS import
sheet wants (an order without items still gets one row)."""


async def _all(service: Service, account: str | None,
               status: OrderStatus | None) -> AsyncIterator[StoredOrder]:
    if account is not None:
        await service.store.account(account)  # a clear "no such account" instead of nothing
    after = 0
    while True:
        page = await service.store.orders(account=account, status=status, after_id=after, limit=PAGE)
        for order in page:
            yield order
        if len(page) < PAGE:
            return
        after = page[-1].id


def csv_rows(data: dict[str, Any]) -> Iterator[list[object]]:
    address = data["delivery_address"] or {}
    recipient, carrier = data["recipient"], data["carrier"] or {}
    head = [
        data["id"], data["account"], data["status"], data["access_key"], data["number"], data["series"],
        data["issued_at"], data["total_value"], recipient["name"], recipient["document"],
        recipient["email"], recipient["phone"], address.get("street"), address.get("number"),
        address.get("complement"), address.get("district"), address.get("city"),
        address.get("city_code"), address.get("state"), address.get("postal_code"),
        carrier.get("name"), carrier.get("document"), data["freight_mode"], data["store_order_number"],
        sum(v["quantity"] or 0 for v in data["volumes"]), data["gross_weight_kg"],
    ]
    items = data["items"] or [None]
    for item in items:
        if item is None:
            yield [*head, *[None] * 8]
        else:
            yield [*head, item["line"], item["sku"], item["ean"], item["description"], item["quantity"],
                   item["unit"], item["unit_value"], item["total_value"]]


def _status(value: str | None) -> OrderStatus | None:
    if value is None:
        return None
    try:
        return OrderStatus(value)
    except ValueError:
        fail(f"--status {value!r}: use ready or canceled", EXIT_USAGE)


@app.command("list")
def list_(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    status: Annotated[str | None, typer.Option(help="ready or canceled.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many (newest).")] = 50,
) -> None:
    """The newest orders, one line each."""
    wanted = _status(status)

    async def work(service: Service) -> None:
        newest: list[StoredOrder] = []
        async for order in _all(service, account, wanted):
            newest.append(order)
            if len(newest) > limit:
                newest.pop(0)
        table = Table(title=f"Orders ({len(newest)} shown)")
        for column in ("id", "account", "status", "NF-e", "issued", "recipient", "city/UF", "items",
                       "total", "chave"):
            table.add_column(column, overflow="fold")
        for stored in reversed(newest):
            o = stored.order
            place = o.delivery_address
            table.add_row(
                str(stored.id), stored.account,
                "[green]ready[/]" if stored.status is OrderStatus.READY else "[red]canceled[/]",
                f"{o.number}/{o.series}", f"{o.issued_at:%Y-%m-%d %H:%M}", o.recipient.name or "",
                f"{place.city}/{place.state}" if place else "", str(len(o.items)), f"{o.total_value}",
                o.access_key)
        console.print(table)

    with_service(ctx, work)


@app.command()
def show(
    ctx: typer.Context,
    order: Annotated[str, typer.Argument(help="Order id, or the note's 44-digit chave.")],
    account: Annotated[str | None, typer.Option(help="The account (needed with a chave "
                                                     "when two accounts share it).")] = None,
) -> None:
    """One order's JSON, as the warehouse receives it."""

    async def work(service: Service) -> None:
        stored = await _find(service, order, account)
        console.print_json(json.dumps(order_json(stored), ensure_ascii=False))

    with_service(ctx, work)


async def _find(service: Service, ref: str, account: str | None) -> StoredOrder:
    digits = ref.strip()
    if digits.isdigit() and len(digits) == 44:
        if account is not None:
            return await service.store.order_by_key(account, digits)
        matches = []
        for acc in await service.store.accounts():
            try:
                matches.append(await service.store.order_by_key(acc.name, digits))
            except OrderNotFoundError:
                continue
        if not matches:
            raise OrderNotFoundError(f"no order with chave {digits}")
        if len(matches) > 1:
            fail(f"chave {digits} is in several accounts; add --account", EXIT_USAGE)
        return matches[0]
    if not digits.isdigit():
        fail(f"{ref!r} is neither an order id nor a 44-digit chave", EXIT_USAGE)
    return await service.store.order(int(digits))


@app.command()
def export(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    status: Annotated[str | None, typer.Option(help="ready or canceled.")] = None,
    format_: Annotated[Format, typer.Option("--format", help="json, ndjson or csv.")] = Format.JSON,
    output: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Every matching order in the order JSON (see docs/order-json.md), or CSV one row per item."""
    wanted = _status(status)

    async def work(service: Service) -> int:
        stream: TextIO = sys.stdout if output is None else output.open("w", encoding="utf-8", newline="")
        try:
            return await _write(service, stream, account, wanted, format_)
        finally:
            if output is not None:
                stream.close()

    count = with_service(ctx, work)
    if output is not None:
        console.print(f"{count} orders written to {output}")


async def _write(service: Service, out: TextIO, account: str | None, status: OrderStatus | None,
                 format_: Format) -> int:
    count = 0
    writer = csv.writer(out) if format_ is Format.CSV else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    elif format_ is Format.JSON:
        out.write("[")
    async for stored in _all(service, account, status):
        data = order_json(stored)
        if writer is not None:
            writer.writerows(csv_rows(data))
        elif format_ is Format.NDJSON:
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
        else:
            out.write(("," if count else "") + "\n" + json.dumps(data, ensure_ascii=False))
        count += 1
    if format_ is Format.JSON:
        out.write("\n]\n" if count else "]\n")
    return count

